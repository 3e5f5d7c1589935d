"""py-evm hashes every trie node with eth-hash's keccak; GridLedger has it use
safe-pysha3 (7x faster than pycryptodome, which eth-hash would otherwise pick first),
which must give the same digests, and leaves a backend the user chose alone."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given, strategies as st

from eth_hash.backends import pycryptodome, pysha3

CHOSEN = ("import node; from eth_utils import keccak; keccak(b''); import eth_hash.auto as a; "
          "print(type(a.keccak.hasher.__self__).__name__)")


@given(st.binary(max_size=2048))
def test_both_backends_give_the_same_digest(data: bytes):
    assert pysha3.keccak256(data) == pycryptodome.keccak256(data)


def test_importing_gridledger_picks_pysha3_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    run = lambda env: subprocess.run([sys.executable, "-c", CHOSEN], env=env, capture_output=True, text=True, check=True)
    assert run(env).stdout.strip() == "PySha3Backend"
    assert run(env | {"ETH_HASH_BACKEND": "pycryptodome"}).stdout.strip() == "CryptodomeBackend"
