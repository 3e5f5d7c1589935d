"""An interval too big for one transaction (up to the 10,000 entries an interval may have;
a dispute reverses it chunk by chunk, tests/test_chunked_disputes.py) settles in chunks and is still atomic: every
chunk is verified before any money moves, each verified chunk is applied exactly once
and in order, the interval counts only when its last chunk closes it, conservation and
capacity hold for the whole interval, every transaction stays under the per-transaction
gas cap (EIP-7825), and an oracle killed between chunks resumes where the chain stands.
An interval that fits one transaction by a dry run settles in one (some 1,000 signed
orders, at under 15k gas each); one whose transaction runs out of gas after all settles
in chunks, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import logging

import numpy as np
import pytest
from eth_account import Account
from eth_utils import keccak

from node.chain.anvil import start_anvil
from node.chain.connection import Chain
from node.data.config import load_config
from node.errors import ChainError, SettlementError
from node.index.store import Index
import node.chain.chunks
from node.chain.chunks import MAX_TX_GAS, SINGLE_TX_GAS, SINGLE_TX_MARGIN, TX_GAS_BUDGET, entries_hash, plan_chunks, single_settle_gas, typical_settle_gas, verify_gas
from node.chain.market import Deployment, Market
from node.index.rebuild import check_index
from node.chain.settlement import decode_entry, pack_order
from node.clearing.pricing import priced_settlement
from node.intent.signing import BUY as BUY_SIDE, SELL as SELL_SIDE, Mandate, Order, sign_mandate, sign_order
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from node.data.synthetic import generate_community
from tests.conftest import BUY, FAR_FUTURE, P2P, SELL

ROOT = Path(__file__).resolve().parent.parent
HASH = b"\x33" * 32
TWO_PER_CHUNK = 416_000  # a gas budget that fits two mandate entries per chunk
ORDERS = 200  # participants of the large community who settle by a signed order


def settlement(homes, grid_wh, p2p_wh, interval=0):
    return priced_settlement(interval, HASH, homes, np.array(grid_wh), np.array(p2p_wh), BUY, SELL, P2P)


def oracle_call(market: Market, call, gas: int = 2_000_000) -> dict:
    return market.chain.transact(call, market.chain.operators.oracle, gas)


def verify(market: Market, s, words, last: bool, orders=()) -> dict:
    return oracle_call(market, market.market.functions.verifyChunk(s.header(), words, list(orders), last))


def apply(market: Market, interval: int, chunk: int, words) -> dict:
    return oracle_call(market, market.market.functions.applyChunk(interval, chunk, words))


def balances(market: Market, ids=range(5)) -> list[int]:
    return [market.balance(i) for i in ids]


# -- a large community -----------------------------------------------------------------


def owner_key(pid: int):
    return Account.from_key(keccak(text=f"chunked-test/{pid}"))


def large_market(chain: Chain) -> Market:
    """A market whose grid wallet and oracle bond are funded, so that it can settle."""
    market = Market.deploy(chain, 10**12, 10**12)
    market.deposit_bond(market.bond()[1])
    market.fund_wallets({0: 10**12})
    return market


def large_community(market: Market, n: int) -> np.ndarray:
    """Registers participants 1..n in batches, funds their wallets (10 tokens each) and
    submits their standing mandates."""
    keys = [owner_key(pid) for pid in range(1, n + 1)]
    market.register([k.address for k in keys], [pid % 7 for pid in range(1, n + 1)], [f"h{p}" for p in range(1, n + 1)])
    market.fund_wallets({pid: 10_000_000 for pid in range(1, n + 1)})
    domain = market.domain()
    mandates = [sign_mandate(k, domain, Mandate(pid, BUY, SELL, 0, 1_000_000, FAR_FUTURE, 1))
                for pid, k in enumerate(keys, start=1)]
    market.submit_mandates(mandates)
    return np.arange(1, n + 1, dtype=np.int64)


def random_interval(ids: np.ndarray, interval: int, seed: int):
    """Mixed importers and exporters with P2P trade conserved to the Wh, each within its
    own net energy (as the clearing shares it), priced at the tariffs."""
    rng = np.random.default_rng(seed)
    net = rng.integers(-3_000, 3_000, len(ids))
    p2p = np.zeros(len(ids), dtype=np.int64)
    buyers, sellers = np.flatnonzero(net > 0)[:500], np.flatnonzero(net < 0)[:500]
    k = min(len(buyers), len(sellers))
    volume = np.minimum(net[buyers[:k]], -net[sellers[:k]]) // 2
    p2p[buyers[:k]] += volume
    p2p[sellers[:k]] -= volume
    return priced_settlement(interval, HASH, ids, net - p2p, p2p, BUY, SELL, P2P)


def signed_orders(market: Market, s, count: int) -> list:
    """Orders for the first `count` participants of settlement `s`, at the tariffs, each for
    its net energy (at least the 1 Wh an order must be for)."""
    domain, out = market.domain(), []
    for pid, g, p in list(zip(s.participants, s.grid_wh, s.p2p_wh))[:count]:
        net = int(g + p)
        side = BUY_SIDE if net >= 0 else SELL_SIDE
        order = Order(int(pid), s.interval, side, max(abs(net), 1), BUY if side == BUY_SIDE else SELL, FAR_FUTURE, 1)
        out.append(sign_order(owner_key(int(pid)), domain, order))
    return out


@pytest.fixture(scope="module")
def two_thousand():
    started = time.perf_counter()
    chain = Chain.embedded()
    market = large_market(chain)
    ids = large_community(market, 2_000)
    setup = time.perf_counter() - started
    s = random_interval(ids, 0, seed=1)
    orders = signed_orders(market, s, ORDERS)
    started = time.perf_counter()
    receipt = market.settle(s, orders)
    seconds = time.perf_counter() - started
    print(f"\n2,000 participants: set-up {setup:.0f} s; settled in {len(receipt.parts)} transactions, "
          f"{receipt.gas_used:,} gas ({receipt.gas_used / len(ids):,.0f} per participant), "
          f"{seconds:.1f} s ({seconds / len(ids) * 1000:.2f} ms per participant)")
    return market, ids, s, receipt


def test_two_thousand_participants_settle_in_chunks_each_under_the_gas_cap(two_thousand):
    market, ids, s, receipt = two_thousand
    kinds = [next(e.name for e in r.events if e.name in ("ChunkVerified", "ChunkApplied")) for r in receipt.parts]
    chunks = len(kinds) // 2
    assert chunks >= 2 and kinds == ["ChunkVerified"] * chunks + ["ChunkApplied"] * chunks
    assert all(r.gas_used < MAX_TX_GAS for r in receipt.parts)
    tx_gas_limits = [market.chain.w3.eth.get_transaction(r.tx_hash)["gas"] for r in receipt.parts]
    assert max(tx_gas_limits) < MAX_TX_GAS
    assert market.next_interval() == 1 and not market.pending().open


def test_chunked_interval_moves_exactly_what_one_transaction_would(two_thousand):
    market, ids, s, receipt = two_thousand
    settled = entries_logged(receipt.events)
    assert settled == list(zip(ids.tolist(), s.grid_wh.tolist(), s.p2p_wh.tolist(), s.amount.tolist()))
    # The interval counts only when the last chunk closes it: IntervalSettled is the
    # last event of the last transaction, after every chunk's entries.
    closing = receipt.parts[-1].events
    assert closing[-1].name == "IntervalSettled" and closing[-2].name == "ChunkApplied"
    header = closing[-1].args
    assert header["participants"] == len(ids) and header["gridAmount"] == s.grid_amount
    assert (header["gridImportWh"], header["gridExportWh"]) == (s.grid_import_wh, s.grid_export_wh)
    # Wallets of 10 tokens: each moved by the settled amount, as a single settle would.
    sample = np.random.default_rng(2).choice(ids, 150, replace=False)
    assert [market.balance(int(p)) for p in sample] == [10_000_000 + int(s.amount[p - 1]) for p in sample]
    assert market.balance(0) == 10**12 + s.grid_amount and s.grid_amount == -int(s.amount.sum())


def entries_logged(events) -> list[tuple]:
    """(participant, grid Wh, P2P Wh, amount) of every entry the EntriesSettled logs carry."""
    entries = [decode_entry(w) for e in events if e.name == "EntriesSettled" for w in e.args["entries"]]
    return [(e.participant, e.grid_wh, e.p2p_wh, e.amount) for e in entries]


def test_index_of_a_chunked_interval_equals_the_chain(two_thousand, tmp_path):
    market, ids, s, receipt = two_thousand
    index = Index(tmp_path / "index.sqlite")
    index.apply(receipt.events, receipt.gas_by_tx, up_to_block=receipt.block)
    row = index.interval(0)
    assert row["participants"] == len(ids) and row["tx_hash"] == receipt.tx_hash
    assert row["gas_used"] == receipt.gas_used  # every chunk's transaction, not just the closing one
    balances_ = index.balances()
    assert balances_[0] == s.grid_amount and sum(balances_.values()) == 0
    assert all(balances_[int(p)] == int(a) for p, a in zip(ids, s.amount))


# -- atomicity, on the 4-home market --------------------------------------------------


def test_small_interval_settles_in_chunks_like_in_one_transaction(market, homes):
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    before = balances(market)
    receipt = market.settle_chunked(s, budget=TWO_PER_CHUNK)
    assert len(receipt.parts) == 4  # two verify, two apply
    assert [b - a for a, b in zip(before, balances(market))] == [s.grid_amount, *s.amount]
    assert market.next_interval() == 1


def test_unconserved_chunked_interval_is_rejected_at_the_last_chunk_and_nothing_moves(market, homes):
    before = balances(market)
    with pytest.raises(SettlementError, match=r"verify chunk 2 of 2.*P2PEnergyNotConserved\(interval=0, imbalanceWh=100\)"):
        market.settle_chunked(settlement(homes, [0, 0, 0, 0], [500, -400, 0, 0]), budget=TWO_PER_CHUNK)
    assert balances(market) == before and market.next_interval() == 0
    assert not market.pending().open  # the oracle abandoned it
    market.settle_chunked(settlement(homes, [0, 0, 0, 0], [400, -400, 0, 0]), budget=TWO_PER_CHUNK)
    assert market.next_interval() == 1


def test_capacity_holds_for_the_whole_chunked_interval(market, homes):
    # 6 + 5 kWh imported in two different chunks: each chunk alone is within the 10 kWh.
    with pytest.raises(SettlementError, match=r"ImportCapacityExceeded\(interval=0, importWh=11000, capacityWh=10000\)"):
        market.settle_chunked(settlement(homes, [6000, 0, 5000, 0], [0, 0, 0, 0]), budget=TWO_PER_CHUNK)
    assert market.next_interval() == 0 and balances(market)[1:] == [10_000_000] * 4


def test_verify_chunk_checks_every_entry_like_settle(bare_market, homes):
    from tests.conftest import standing_mandate

    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (1, 2, 3)])  # not home 4
    with pytest.raises(SettlementError, match=r"verify chunk 2 of 2.*NoMandate\(participant=4\)"):
        bare_market.settle_chunked(settlement(homes, [100, 0, 0, 100], [0, 0, 0, 0]), budget=TWO_PER_CHUNK)
    assert balances(bare_market)[1:] == [10_000_000] * 4 and not bare_market.pending().open


def test_a_failing_last_chunk_leaves_the_interval_pending_until_abandoned(market, homes):
    s = settlement(homes, [0, 0, 0, 0], [500, -400, 0, 0])
    words = s.entries()
    verify(market, s, words[:2], last=False)
    with pytest.raises(ChainError, match="P2PEnergyNotConserved"):
        verify(market, s, words[2:], last=True)
    state = market.pending()
    assert (state.phase, state.verified_chunks, state.last_participant) == ("verifying", 1, 2)
    receipt = market.abandon_pending()
    assert [e.name for e in receipt.events] == ["PendingAbandoned"]
    assert not market.pending().open
    with pytest.raises(SettlementError, match="NoPendingInterval"):
        market.abandon_pending()


def test_chunks_apply_once_in_order_and_only_as_verified(market, homes):
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    words = s.entries()
    verify(market, s, words[:2], last=False)
    with pytest.raises(ChainError, match=r"NotVerified\(interval=0"):
        apply(market, 0, 0, words[:2])  # verification not complete
    with pytest.raises(ChainError, match="PendingIntervalOpen"):
        market.settle(s)
    # Every chunk carries the header of the first (the interval's inputs, P2P price and
    # terms; the totals are the contract's own sums): a chunk of another settlement is refused.
    other_inputs = priced_settlement(0, b"\x44" * 32, homes, s.grid_wh, s.p2p_wh, BUY, SELL, P2P)
    with pytest.raises(ChainError, match="HeaderMismatch"):
        verify(market, other_inputs, words[2:], last=True)
    other_price = priced_settlement(0, HASH, homes, s.grid_wh, s.p2p_wh, BUY, SELL, P2P + 1)
    with pytest.raises(ChainError, match="HeaderMismatch"):
        verify(market, other_price, other_price.entries()[2:], last=True)
    with pytest.raises(ChainError, match=r"ParticipantsNotAscending\(previous=2, participant=2\)"):
        verify(market, s, words[1:], last=True)
    verify(market, s, words[2:], last=True)
    state = market.pending()
    assert (state.phase, state.verified_chunks, state.total_chunks, state.applied_chunks) == ("applying", 2, 2, 0)
    assert market.market.functions.chunkHash(1).call() == entries_hash(words[2:])
    with pytest.raises(ChainError, match="VerificationClosed"):
        verify(market, s, words[2:], last=True)
    before = balances(market)
    with pytest.raises(ChainError, match=r"ChunkOutOfOrder\(interval=0, expected=0, got=1\)"):
        apply(market, 0, 1, words[2:])
    tampered = [words[0], words[1] + 1]  # home 2 credited one unit more than verified
    with pytest.raises(ChainError, match=r"ChunkHashMismatch\(interval=0, chunk=0"):
        apply(market, 0, 0, tampered)
    with pytest.raises(ChainError, match="ChunkHashMismatch"):
        apply(market, 0, 0, words[:1])
    assert balances(market) == before
    apply(market, 0, 0, words[:2])
    assert market.next_interval() == 0  # not settled until the last chunk closes it
    with pytest.raises(ChainError, match=r"ChunkOutOfOrder\(interval=0, expected=1, got=0\)"):
        apply(market, 0, 0, words[:2])  # never twice
    with pytest.raises(SettlementError, match="PendingPartlyApplied"):
        market.abandon_pending()
    events = market.decoder.decode(apply(market, 0, 1, words[2:])["logs"])
    assert [e.name for e in events] == ["EntriesSettled", "ChunkApplied", "IntervalSettled"]
    assert [b - a for a, b in zip(before, balances(market))] == [s.grid_amount, *s.amount]
    assert market.next_interval() == 1 and not market.pending().open
    with pytest.raises(ChainError, match="NotVerified"):
        apply(market, 0, 1, words[2:])


def test_only_the_oracle_verifies_and_abandons_while_anyone_applies_what_was_verified(market, homes):
    s = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0])
    words = s.entries()
    admin = market.chain.operators.admin
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        market.chain.transact(market.market.functions.verifyChunk(s.header(), words, [], True), admin, 500_000)
    verify(market, s, words, last=True)
    # Nobody but the oracle abandons a fresh pending interval (a stalled one, anyone).
    with pytest.raises(ChainError, match=r"PendingNotStale\(interval=0"):
        market.chain.transact(market.market.functions.abandonPending(), admin, 500_000)
    # Applying moves exactly what was verified, so anyone may finish it.
    market.chain.transact(market.market.functions.applyChunk(0, 0, words), admin, 500_000)
    assert market.next_interval() == 1


def test_market_resumes_a_pending_interval_from_the_chains_counters(market, homes):
    """What the oracle does after a crash: the same settlement continues the chunks."""
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    words = s.entries()
    assert [(c.start, c.end) for c in plan_chunks(words, TWO_PER_CHUNK)] == [(0, 2), (2, 4)]
    verify(market, s, words[:2], last=False)
    receipt = market.settle_chunked(s, budget=TWO_PER_CHUNK)  # verify 2, apply 1, apply 2
    assert len(receipt.parts) == 3 and market.next_interval() == 1
    s2 = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0], interval=1)
    verify(market, s2, s2.entries()[:2], last=False)
    verify(market, s2, s2.entries()[2:], last=True)
    apply(market, 1, 0, s2.entries()[:2])
    assert len(market.settle_chunked(s2, budget=TWO_PER_CHUNK).parts) == 1
    # A pending interval verified with other numbers is abandoned (nothing moved) and redone.
    s3 = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0], interval=2)
    other = settlement(homes, [200, 0, 0, 0], [0, 0, 0, 0], interval=2)
    verify(market, other, other.entries()[:2], last=False)
    receipt = market.settle_chunked(s3, budget=TWO_PER_CHUNK)
    assert receipt.parts[0].events[0].name == "PendingAbandoned" and market.next_interval() == 3


# -- one transaction when a dry run says it fits --------------------------------------

DRY_RUN_GAS = SINGLE_TX_GAS - SINGLE_TX_MARGIN
# The most signed orders whose typical gas fits a dry run: more than fit one transaction
# (~14.4k gas each), so a dry run is tried for them and runs out of gas.
OVER_THE_CAP = max(n for n in range(1, 3_000) if typical_settle_gas(n, n) <= DRY_RUN_GAS)


def oracle_nonce(market: Market) -> int:
    return market.chain.w3.eth.get_transaction_count(market.chain.operators.oracle.address)


def order_interval(market: Market, ids: np.ndarray, seed: int):
    """The chain's next interval over participants `ids`, each authorised by a signed order."""
    s = random_interval(ids, market.next_interval(), seed)
    return s, signed_orders(market, s, len(ids))


def entries_of(s) -> list[tuple]:
    return list(zip(s.participants.tolist(), s.grid_wh.tolist(), s.p2p_wh.tolist(), s.amount.tolist()))


def settled_on_chain(market: Market, interval: int) -> tuple[int, list[tuple]]:
    """From the chain's logs: how many times `interval` was settled, and its entries."""
    events = market.logs(market.deployment.block, market.chain.w3.eth.block_number, ("IntervalSettled", "EntriesSettled"))
    mine = [e for e in events if e.args["interval"] == interval]
    return sum(e.name == "IntervalSettled" for e in mine), entries_logged(mine)


def failed_transaction_before(market: Market, receipt) -> dict:
    """The receipt of the transaction mined just before `receipt`'s first (one per block)."""
    block = market.chain.w3.eth.get_block(receipt.parts[0].block - 1)
    return market.chain.w3.eth.get_transaction_receipt(block["transactions"][0])


def test_an_interval_over_the_static_bound_settles_in_one_transaction_when_its_dry_run_fits(market, homes, monkeypatch):
    monkeypatch.setattr(node.chain.chunks, "SETTLE_GAS_PER_ENTRY", 5_000_000)  # 4 entries "need" 20M
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    before = balances(market)
    receipt = market.settle(s)
    assert receipt.parts == () and market.chain.w3.eth.get_transaction(receipt.tx_hash)["gas"] == SINGLE_TX_GAS
    assert [b - a for a, b in zip(before, balances(market))] == [s.grid_amount, *s.amount]
    assert market.next_interval() == 1


def test_an_interval_over_the_static_bound_that_the_contract_rejects_moves_nothing(market, homes, monkeypatch):
    monkeypatch.setattr(node.chain.chunks, "SETTLE_GAS_PER_ENTRY", 5_000_000)
    before = balances(market)
    with pytest.raises(SettlementError, match=r"P2PEnergyNotConserved\(interval=0, imbalanceWh=100\)"):
        market.settle(settlement(homes, [0, 0, 0, 0], [500, -400, 0, 0]))
    assert balances(market) == before and market.next_interval() == 0 and not market.pending().open


@pytest.fixture(scope="module")
def order_community():
    """OVER_THE_CAP participants on the embedded chain, to settle by signed orders."""
    market = large_market(Chain.embedded())
    return market, large_community(market, OVER_THE_CAP)


def test_a_thousand_signed_orders_settle_in_one_transaction_under_15k_gas_each(order_community):
    market, ids = order_community
    s, orders = order_interval(market, ids[:1000], seed=4)
    assert single_settle_gas(1000, 1000) > TX_GAS_BUDGET  # the static bound alone would chunk it
    receipt = market.settle(s, orders)
    print(f"\n1,000 signed orders in one transaction: {receipt.gas_used:,} gas = {receipt.gas_used / 1000:,.0f} per order")
    assert receipt.parts == () and receipt.gas_used / 1000 < 15_000
    assert market.chain.w3.eth.get_transaction(receipt.tx_hash)["gas"] == SINGLE_TX_GAS <= MAX_TX_GAS
    assert settled_on_chain(market, s.interval) == (1, entries_of(s))


def test_an_interval_whose_dry_run_runs_out_of_gas_settles_in_chunks_without_a_failed_transaction(order_community, monkeypatch):
    market, ids = order_community
    s, orders = order_interval(market, ids, seed=5)
    runs = []
    dry_run = market.chain.dry_run

    def recorded(call, sender, gas):
        # The same call on the same state with twice the gas: whether it failed for gas.
        runs.append((dry_run(call, sender, gas), dry_run(call, sender, 2 * gas), gas))
        return runs[-1][0]

    monkeypatch.setattr(market.chain, "dry_run", recorded)
    sent = oracle_nonce(market)
    receipt = market.settle(s, orders)
    # Tried once at the cap less the margin, and ran out of gas: it failed there, and the
    # same call succeeds with more gas, so the contract does not reject it. (Out of gas in
    # the module shows as an empty revert through the router, not in the node's words.)
    assert len(runs) == 1
    failure, with_more_gas, gas = runs[0]
    assert gas == DRY_RUN_GAS and failure is not None and with_more_gas is None
    assert len(receipt.parts) == 4 and oracle_nonce(market) == sent + 4
    assert settled_on_chain(market, s.interval) == (1, entries_of(s))


def test_a_single_transaction_that_runs_out_of_gas_falls_back_to_chunks_and_settles_once(order_community, monkeypatch, caplog):
    market, ids = order_community
    s, orders = order_interval(market, ids, seed=6)
    # A node whose dry run misjudges: it says the interval fits, its transaction runs out of gas.
    monkeypatch.setattr(market.chain, "dry_run", lambda *args: None)
    sample = [0, *ids[::10].tolist()]
    before = [market.balance(p) for p in sample]
    sent = oracle_nonce(market)
    with caplog.at_level(logging.WARNING, logger="gridledger.market"):
        receipt = market.settle(s, orders)
    assert "its one transaction failed" in caplog.text
    failed = failed_transaction_before(market, receipt)
    # It ran out of gas: the module used all it was given, and the router kept only the
    # 1/64 a DELEGATECALL leaves the caller (EIP-150) to pass the failure on.
    assert failed["status"] == 0 and failed["gasUsed"] >= SINGLE_TX_GAS - SINGLE_TX_GAS // 64
    assert market.chain.w3.eth.get_transaction(failed["transactionHash"])["gas"] == SINGLE_TX_GAS
    assert len(receipt.parts) == 4 and oracle_nonce(market) == sent + 5
    assert settled_on_chain(market, s.interval) == (1, entries_of(s))
    amounts = dict(zip(s.participants.tolist(), s.amount.tolist())) | {0: s.grid_amount}
    assert [market.balance(p) - b for p, b in zip(sample, before)] == [amounts[p] for p in sample]
    assert market.next_interval() == s.interval + 1 and not market.pending().open


def test_a_half_settled_interval_continues_in_its_chunks_though_it_would_fit_one_transaction(order_community):
    market, ids = order_community
    s, orders = order_interval(market, ids[:1000], seed=7)
    # What a crash after the first chunk leaves on chain.
    words, auths = s.entries(by_order=set(ids[:1000].tolist())), [pack_order(o) for o in orders]
    first = plan_chunks(words)[0]
    call = market.market.functions.verifyChunk(
        s.header(), words[first.start : first.end], auths[first.order_start : first.order_end], False
    )
    market.chain.transact(call, market.chain.operators.oracle, verify_gas(first.end - first.start, first.order_end - first.order_start))
    sent = oracle_nonce(market)
    receipt = market.settle(s, orders)
    kinds = [next(e.name for e in r.events if e.name.startswith("Chunk")) for r in receipt.parts]
    assert kinds == ["ChunkVerified", "ChunkApplied", "ChunkApplied"] and oracle_nonce(market) == sent + 3
    assert settled_on_chain(market, s.interval) == (1, entries_of(s))


# -- the oracle killed between chunks -------------------------------------------------

CONFIG = """
[market]
interval_minutes = 120
horizon_steps = 8
[community]
homes = 10
days = 1
seed = 17
"""
# Chunks of two for 10 homes; SINGLE_TX_GAS 0: no dry run sends such an interval in one.
SMALL_CHUNKS = (
    "import sys, node.chain.market as m; m.TX_GAS_BUDGET = %d; m.SINGLE_TX_GAS = 0; from node.cli.main import main; "
    "sys.exit(main(sys.argv[1:]))" % TWO_PER_CHUNK
)


def run_chunked_oracle(state: Path, config: Path, crash_at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "GRIDLEDGER_CRASH_AT"}
    if crash_at:
        env["GRIDLEDGER_CRASH_AT"] = crash_at
    command = [sys.executable, "-c", SMALL_CHUNKS, "-q", "simulate", "--state", str(state), "--config", str(config),
               "--no-progress"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"oracle failed with {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return proc.returncode


def chain_state(state: Path):
    with Chain.embedded(state) as chain:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        events = market.logs(market.deployment.block, chain.w3.eth.block_number)
        entries = [(e.args["interval"], *entry) for e in events if e.name == "EntriesSettled" for entry in entries_logged([e])]
        count = market.participant_count()
        index = Index(state / "index.sqlite")
        try:
            differences = check_index(market, index)
        finally:
            index.close()
        return market.next_interval(), market.pending(), {p: market.balance(p) for p in range(count)}, entries, differences


def test_oracle_killed_between_chunks_resumes_and_ends_like_one_transaction_per_interval(tmp_path):
    config = tmp_path / "community.toml"
    config.write_text(CONFIG)
    reference = tmp_path / "reference"
    cfg = load_config(config)
    with Chain.embedded(reference) as chain:
        simulate(chain, generate_community(cfg), cfg, StatePaths(reference), progress=False)  # one tx per interval
    ref_next, _, ref_balances, ref_entries, _ = chain_state(reference)

    state = tmp_path / "state"
    # 10 homes in chunks of 2 (one transaction would need more than the budget): per
    # interval 5 verify and 5 apply transactions, a crash point after each but the
    # last. The 2nd: interval 0 partly verified.
    assert run_chunked_oracle(state, config, "between_chunks:2") == -signal.SIGKILL
    _, pending, *_ = chain_state(state)
    assert (pending.interval, pending.phase, pending.verified_chunks, pending.applied_chunks) == (0, "verifying", 2, 0)
    # Resumed: verify 3-5 (points 1-3), apply 1 (4), apply 2 (5): killed with 2 of 5 applied.
    assert run_chunked_oracle(state, config, "between_chunks:5") == -signal.SIGKILL
    _, pending, *_ = chain_state(state)
    assert (pending.interval, pending.phase, pending.applied_chunks, pending.total_chunks) == (0, "applying", 2, 5)
    # Further in (interval 0: 2 points, interval 1: 9): interval 2 verified, nothing applied.
    assert run_chunked_oracle(state, config, "between_chunks:16") == -signal.SIGKILL
    _, pending, *_ = chain_state(state)
    assert (pending.interval, pending.phase, pending.applied_chunks, pending.total_chunks) == (2, "applying", 0, 5)
    assert run_chunked_oracle(state, config) == 0

    next_interval, pending, balances_, entries, differences = chain_state(state)
    assert next_interval == ref_next == 12 and not pending.open
    assert balances_ == ref_balances
    assert entries == ref_entries  # same settlements, in the same order: none missing, none twice
    assert differences == []


# -- a real node with the per-transaction gas cap --------------------------------------


def test_two_thousand_participants_settle_on_anvil_with_the_gas_cap(tmp_path):
    with start_anvil(None, port=0, gas_cap=True) as anvil:
        chain = Chain.connect(anvil.url)
        market = large_market(chain)
        ids = large_community(market, 2_000)
        s = random_interval(ids, 0, seed=3)
        # One transaction would exceed the cap: the node refuses it outright.
        too_big = market.market.functions.settle(s.header(), s.entries(), [])
        with pytest.raises(ChainError):
            chain.transact(too_big, chain.operators.oracle, MAX_TX_GAS + 1)
        receipt = market.settle(s, signed_orders(market, s, 50))
        assert len(receipt.parts) >= 4 and all(r.gas_used < MAX_TX_GAS for r in receipt.parts)
        assert market.next_interval() == 1
        assert [market.balance(int(p)) for p in ids[:50]] == [10_000_000 + int(a) for a in s.amount[:50]]
        assert market.balance(0) == 10**12 + s.grid_amount


def test_a_thousand_signed_orders_settle_in_one_transaction_on_anvil_and_more_in_chunks_once(monkeypatch):
    with start_anvil(None, port=0, gas_cap=True) as anvil:
        chain = Chain.connect(anvil.url)
        market = large_market(chain)
        ids = large_community(market, OVER_THE_CAP)
        one, orders = order_interval(market, ids[:1000], seed=8)
        receipt = market.settle(one, orders)
        assert receipt.parts == () and receipt.gas_used / 1000 < 15_000
        # Too big for one transaction: its dry run runs out of gas, it settles in chunks.
        dry_run_fails, orders = order_interval(market, ids, seed=9)
        sent = oracle_nonce(market)
        assert len(market.settle(dry_run_fails, orders).parts) == 4 and oracle_nonce(market) == sent + 4
        # A dry run that misjudges: the capped node takes the transaction, it runs out of gas.
        monkeypatch.setattr(chain, "dry_run", lambda *args: None)
        out_of_gas, orders = order_interval(market, ids, seed=10)
        receipt = market.settle(out_of_gas, orders)
        assert failed_transaction_before(market, receipt)["status"] == 0 and len(receipt.parts) == 4
        for s in (one, dry_run_fails, out_of_gas):
            assert settled_on_chain(market, s.interval) == (1, entries_of(s))
        assert market.next_interval() == 3 and not market.pending().open
