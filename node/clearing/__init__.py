"""One interval's clearing: its committed, content-addressed inputs; the optimiser or the
auction run within what participants signed (a pure function, rerun by the auditor);
the result in the chain's integers, priced so that money is conserved to the unit.

Imports the optimizer, node.intent and the settlement encoding of node.chain.
"""
