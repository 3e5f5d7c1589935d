"""The committed contract artifacts are exactly what the sources compile to."""

from node.chain.build import DEPLOYED, load_artifact, stale_artifacts


def test_committed_artifacts_match_a_fresh_compile():
    assert stale_artifacts() == []


def test_every_deployed_contract_has_abi_and_bytecode():
    for name in DEPLOYED:
        artifact = load_artifact(name)
        assert artifact["abi"] and artifact["bytecode"].startswith("0x6")


def test_every_function_of_the_markets_abi_is_routed_to_a_module_and_every_contract_fits_75_percent_of_eip170():
    from eth_utils import function_signature_to_4byte_selector

    from node.chain.build import SIZE_TARGET, canonical_type, merged_abi, runtime_sizes
    from node.chain.connection import Chain
    from node.chain.market import Market

    market = Market.deploy(Chain.embedded(), 10_000, 10_000)
    router_only = {"moduleOf"}
    for entry in load_artifact("EnergyMarket")["abi"]:
        if entry["type"] != "function" or entry["name"] in router_only:
            continue
        types = ",".join(canonical_type(arg) for arg in entry["inputs"])
        selector = function_signature_to_4byte_selector(f"{entry['name']}({types})")
        assert int(market.market.functions.moduleOf(selector).call(), 16) != 0, entry["name"]
    assert all(size <= SIZE_TARGET for size in runtime_sizes().values()), runtime_sizes()
    assert merged_abi([[{"type": "function", "name": "selectors", "inputs": []}]]) == []

