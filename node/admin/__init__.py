"""Admin and grid-operator actions: transactions signed by the role holder's own key,
checked and relayed to the market (the relay holds no key).
"""
