"""A share owner whose wallet cannot pay the storage fee is left out of the interval (issue
12, shared batteries): like a home whose wallet runs dry (tests/test_wallet_runs_dry.py),
the oracle asks the chain before it clears, and the rest of the community settles. (The
credit check used to price only a participant's forecast load, which is nothing for an
account in a shared battery: the optimiser charged the account, the contract refused the
entry the account could not pay for, fee included, and the run stopped.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.market import Market
from node.clearing.inputs import IntervalInputs
from node.data.config import default_config
from node.data.shared_batteries import load_shared_batteries, with_shared_batteries
from node.data.synthetic import generate_community
from node.simulation.replay import simulate
from node.simulation.setup import find_community_market, home_accounts
from node.simulation.state import StatePaths, claim_state

SHARED = (Path(__file__).resolve().parents[1] / "examples" / "shared_batteries.toml").read_text()


def test_a_share_whose_wallet_cannot_pay_the_storage_fee_is_left_out_and_the_run_settles(tmp_path):
    (tmp_path / "shared.toml").write_text(SHARED)
    config = default_config()
    config = replace(config, community=replace(config.community, homes=4, battery_share=0.0, pv_share=1.0,
                                               shared_batteries_file=str(tmp_path / "shared.toml")))
    full = generate_community(config)
    steps = slice(44, 84)  # 11:00 to 21:00: noon's PV surplus would go into the accounts for the evening
    community = replace(full, timestamps=full.timestamps[steps], consumption_kwh=full.consumption_kwh[:, steps],
                        production_kwh=full.production_kwh[:, steps])
    community = with_shared_batteries(community, load_shared_batteries(tmp_path / "shared.toml"))
    state = tmp_path / "state"
    claim_state(state, "simulate")
    chain = Chain.embedded(state)
    keys = dict(zip((home.name for home in community.homes), home_accounts(community, config)))
    markets = []

    def empty_the_accounts_wallets():
        # Before the first interval, each account's owner withdraws all but 1/100 of a unit:
        # too little for a tenth of a kWh at any tariff with the fee on top.
        market = Market(chain, find_community_market(chain, community, config))
        markets.append(market)
        for i in (1, 2, 3):
            key = keys[f"home-0{i}@school"]
            pid = market.market.functions.participantOf(key.address).call()
            chain.fund(key.address, 10**18)
            market._send(market.market.functions.withdraw(market.withdrawable(pid) - 10_000), key, 200_000)

    try:
        result = simulate(chain, community, config, StatePaths(state), progress=False, in_turn=40, tick_s=0,
                          before_in_turn=empty_the_accounts_wallets)
        ids = {home.name: int(pid) for home, pid in zip(community.homes, result.participants)}
        accounts = [ids[f"home-0{i}@school"] for i in (1, 2, 3)]
        assert markets and len(result.reports) == 40
        settled = [set(r.settlement.participants.tolist()) for r in result.reports]
        # The optimiser would have charged the accounts at noon (tests/test_shared_batteries.py:
        # they store over 5 kWh); a wallet that cannot pay a whole interval of charging
        # with the fee sits the interval out (named in the committed inputs), and the
        # homes settle on.
        assert all(a not in s for s in settled for a in accounts)
        for r in result.reports:
            inputs = IntervalInputs.from_json(result.index.inputs("0x" + r.settlement.inputs_hash.hex()))
            assert set(accounts) <= set(inputs.credit_excluded)
        assert all(result.market.balance(pid) >= 0 for pid in ids.values())
        # The homes themselves still settle.
        assert all(ids["home-01"] in s for s in settled)
        verdicts = audit(result.market, IndexInputs(result.index), progress=False)
        assert [v.reasons for v in verdicts if not v.ok] == []
    finally:
        chain.close()
