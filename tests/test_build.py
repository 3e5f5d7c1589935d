"""The committed contract artifacts are exactly what the sources compile to."""

from node.chain.build import DEPLOYED, load_artifact, stale_artifacts


def test_committed_artifacts_match_a_fresh_compile():
    assert stale_artifacts() == []


def test_every_deployed_contract_has_abi_and_bytecode():
    for name in DEPLOYED:
        artifact = load_artifact(name)
        assert artifact["abi"] and artifact["bytecode"].startswith("0x6")
