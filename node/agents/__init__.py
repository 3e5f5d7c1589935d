"""Bidding agents: each home's signed orders for an auction market, made from its data.

An agent turns a home's metered energy, battery, HVAC and scheduled jobs into one
EIP-712 order per interval, signed with the home's key and submitted to the same
order book as a person's order; after the oracle settles, the outcome goes back to the
agent (indoor temperature, state of charge, what the supplier settles outside).
`schedule` places deferrable jobs within their signed windows.

May import node.data, node.intent and optimizer; nothing above (the oracle and the
simulation drive the agents, not the other way round).
"""
