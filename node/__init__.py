"""GridLedger's node: everything between a community's data and the chain, and back.

The packages follow the data flow; each may import only the ones above it here:

    errors, units, faults   the exception family, the chain's units, crash points for tests
    parallel                independent jobs on local worker processes or a Dask cluster
    data/  metrics/         a community and its metered energy; the KPIs of a run, defined once
    intent/                 what participants sign: EIP-712 orders and mandates, keystores, the order book
    agents/                 bidding agents: each home's signed orders made from its data and devices
    chain/                  the EVM: connection, journal, compile, the market contract, its events
    clearing/               one interval: committed inputs -> optimiser or auction -> settlement (integers)
    index/                  the local query store of the chain's events and the committed inputs
    oracle/  audit/  admin/ the daemon that settles; the auditor that re-checks; role holders' transactions
    simulation/             a community's market set up and its data replayed through the oracle
    research/  envs/        experiments (scenarios x seeds); learning environments on the real market
    cli/                    the ``gridledger`` command (on top of everything, webui included)

``tests/test_layout.py`` holds the code to this map: no import against it, no cycle.
"""

import importlib.util as _util
import os as _os

# eth-hash takes pycryptodome before safe-pysha3 when both are installed (eth-tester's
# py-evm extra installs both), and py-evm hashes every trie node it reads or writes:
# pysha3 hashes 64 bytes in 0.6 us against 4.0. The digests are the same; an
# ETH_HASH_BACKEND the user set wins.
if _util.find_spec("sha3") is not None:
    _os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
