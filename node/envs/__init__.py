"""Learning environments that step the real market: a Gymnasium environment for one
home (node.envs.home.HomeEnv, registered as ``GridLedger/Home-v0``) and a PettingZoo
Parallel environment with one agent per home (node.envs.community.CommunityEnv).

Each step is one market interval: the agents' orders are signed with the homes' keys,
the oracle clears the double auction and settles it on an embedded chain. Above
node.simulation; gymnasium and pettingzoo are the optional ``[research]`` extra, imported
only by the module that needs each.
"""
