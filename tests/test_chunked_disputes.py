"""A dispute of an interval settled in chunks, on the embedded chain, as an attacker and
as the honest parties would try it. The dispute names every chunk by its hash and
carries only the chunk that shows its point; the reversal it opens takes every applied
chunk back once, one transaction per chunk, while nothing settles or withdraws; money is
conserved to the minor unit; a dispute that crashed half way is finished by calling it
again, and the oracle finishes an open reversal before it settles. At 2,500 entries (over
the old limit of 2,000) a whole interval is settled in chunks, disputed and reversed, each
transaction under the per-transaction gas cap (bench_chunked.py does it at 10,000)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from node.chain.chunks import MAX_TX_GAS, entries_hash, plan_chunks
from node.chain.disputes import dispute_proof
from node.chain.settlement import decode_entry
from node.chain.market import Market
from node.errors import ChainError, SettlementError
from node.intent.signing import Reading, sign_reading
from tests.conftest import home_key
from tests.test_attacks import funded_auditor, reading, token_balance
from tests.test_chunked import (
    TWO_PER_CHUNK, apply, large_community, large_market, owner_key, random_interval, settlement, verify,
)


def books(market: Market, ids=range(5)) -> tuple[list[int], int]:
    """Every wallet (the grid's included) and the tokens the market holds."""
    return [market.balance(int(i)) for i in ids], token_balance(market, market.deployment.market)


def chunks_of(words: list[int], budget: int = TWO_PER_CHUNK) -> list[list[int]]:
    return [words[c.start : c.end] for c in plan_chunks(words, budget)]


def raw(market: Market, call, gas: int = 3_000_000) -> dict:
    return market.chain.transact(call, market.chain.operators.admin, gas)


def dispute_call(market: Market, interval: int, hashes, first: int, proof, signed):
    r = signed.reading
    return market.market.functions.dispute(
        interval, hashes, first, proof, (r.participant, r.interval, r.import_wh, r.export_wh), signed.signature)


def names(receipt) -> list[str]:
    return [e.name for e in receipt.events if e.name in ("ReversalOpened", "ChunkReversed", "ReversalClosed")]


# -- the proof -------------------------------------------------------------------------


def test_the_proof_is_the_chunk_holding_the_participant_or_the_chunks_around_its_place():
    def word(pid: int) -> int:
        return pid << 224

    chunks = [[word(2), word(4)], [word(7), word(9)], [word(12)]]
    assert dispute_proof(chunks, 7) == (1, [chunks[1]])  # its entry
    assert dispute_proof(chunks, 3) == (0, [chunks[0]])  # within chunk 0's range
    assert dispute_proof(chunks, 1) == (0, [chunks[0]])  # before every entry
    assert dispute_proof(chunks, 5) == (0, [chunks[0], chunks[1]])  # between chunks 0 and 1
    assert dispute_proof(chunks, 10) == (1, [chunks[1], chunks[2]])
    assert dispute_proof(chunks, 13) == (2, [chunks[2]])  # after every entry
    assert dispute_proof([[]], 5) == (0, [[]])  # an empty interval


# -- a 4-home interval in two chunks -----------------------------------------------------


def test_a_chunked_interval_is_disputed_by_one_chunk_and_reversed_chunk_by_chunk_to_the_unit(market, homes):
    before = books(market)
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    chunks = chunks_of(s.entries())
    assert len(chunks) == 2 and books(market) != before
    # Home 3's meter read 100 Wh, not the 200 settled (chunk 1).
    receipt = market.dispute(s.interval, chunks, reading(3, 0, 100, market), funded_auditor(market))
    assert names(receipt) == ["ReversalOpened", "ChunkReversed", "ChunkReversed", "ReversalClosed"]
    dispute_tx = market.chain.w3.eth.get_transaction(receipt.parts[0].tx_hash)
    assert len(market.market.decode_function_input(dispute_tx["input"])[1]["chunks"]) == 1  # one chunk of two
    reward = market.bond()[1]
    balances, tokens = books(market)
    assert balances == before[0] and tokens == before[1] - reward  # to the minor unit
    assert market.record(s.interval).reversed and not market.reversal().open
    closed = [e.args for e in receipt.events if e.name == "ReversalClosed"][0]
    assert closed["gridAmount"] == -s.grid_amount


def test_a_dispute_with_a_forged_chunk_a_wrong_index_or_wrong_hashes_is_refused(market, homes):
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    a, b = chunks_of(s.entries())
    hashes = [entries_hash(a), entries_hash(b)]
    signed = reading(1, 0, 0, market)
    forged = [a[0] + 1_000_000, a[1]]  # home 1 credited a token more in "its" chunk
    with pytest.raises(ChainError, match=r"ChunkHashMismatch\(interval=0, chunk=0"):
        raw(market, dispute_call(market, 0, hashes, 0, [forged], signed))
    with pytest.raises(ChainError, match=r"BadChunkProof\(interval=0, firstChunk=2, proofChunks=1, chunks=2\)"):
        raw(market, dispute_call(market, 0, hashes, 2, [a], signed))
    with pytest.raises(ChainError, match=r"EntriesMismatch\(interval=0"):
        raw(market, dispute_call(market, 0, [hashes[1], hashes[0]], 1, [a], signed))
    with pytest.raises(ChainError, match=r"EntriesMismatch\(interval=0"):
        raw(market, dispute_call(market, 0, [entries_hash(a + b)], 0, [a + b], signed))
    # Home 2 IS in chunk 0 with what its meter read (-900 Wh): no omission, no contradiction.
    with pytest.raises(ChainError, match=r"NoContradiction\(participant=2, settledWh=-900, readWh=-900\)"):
        raw(market, dispute_call(market, 0, hashes, 0, [a], reading(2, 0, -900, market)))
    # Home 3 is in chunk 1: chunk 0 alone does not show it absent.
    with pytest.raises(ChainError, match=r"AbsenceNotProved\(participant=3, firstChunk=0, lastChunk=0\)"):
        raw(market, dispute_call(market, 0, hashes, 0, [a], reading(3, 0, 5, market)))
    assert not market.record(0).reversed and not market.reversal().open


def test_an_omission_between_two_chunks_is_proved_by_both_and_never_with_a_gap(market):
    # Homes 1, 2 | 4 in chunks of two: home 3, with a mandate, left out between them.
    s = settlement(np.array([1, 2, 4]), [300, -100, -200], [0, 0, 0])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    a, b = chunks_of(s.entries())
    signed = reading(3, 0, 250, market)
    hashes = [entries_hash(a), entries_hash(b)]
    for first, proof in ((0, [a]), (1, [b])):
        with pytest.raises(ChainError, match=r"AbsenceNotProved\(participant=3"):
            raw(market, dispute_call(market, 0, hashes, first, proof, signed))
    assert dispute_proof([a, b], 3) == (0, [a, b])
    receipt = market.dispute(0, [a, b], signed, funded_auditor(market))
    assert [e.args["kind"] for e in receipt.events if e.name == "IntervalReversed"] == [2]  # an omission
    assert [market.balance(i) for i in range(5)] == [10_000_000] * 5


def test_an_open_reversal_refuses_withdrawals_settlements_and_disputes_and_each_chunk_reverses_once(market, homes):
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    chunks = chunks_of(s.entries())
    with pytest.raises(ChainError, match=r"NoReversalOpen\(interval=0\)"):
        raw(market, market.market.functions.reverseChunk(0, 0, chunks[0]))
    auditor = funded_auditor(market)
    market._send_dispute(0, chunks, reading(1, 0, 0, market), auditor)  # the disputer stops here
    state = market.reversal()
    assert (state.interval, state.chunks, state.left, state.closed) == (0, 2, 2, True)
    raw(market, market.market.functions.reverseChunk(0, 1, chunks[1]))
    with pytest.raises(ChainError, match=r"ChunkAlreadyReversed\(interval=0, chunk=1\)"):
        raw(market, market.market.functions.reverseChunk(0, 1, chunks[1]))
    with pytest.raises(ChainError, match=r"ChunkHashMismatch\(interval=0, chunk=0"):
        raw(market, market.market.functions.reverseChunk(0, 0, chunks[1]))
    market.chain.fund(home_key(1).address, 10**18)
    with pytest.raises(ChainError, match=r"ReversalOpen\(interval=0, chunksLeft=1\)"):
        market.chain.transact(market.market.functions.withdraw(1), home_key(1), 200_000)
    with pytest.raises(ChainError, match=r"ReversalOpen\(interval=0, chunksLeft=1\)"):
        market.chain.transact(market.market.functions.withdrawBond(1), market.chain.operators.oracle, 200_000)
    s1 = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0], interval=1)
    with pytest.raises(ChainError, match=r"ReversalOpen\(interval=0, chunksLeft=1\)"):
        market.chain.transact(market.market.functions.settle(s1.header(), s1.entries(), []),
                              market.chain.operators.oracle, 1_000_000)
    with pytest.raises(ChainError, match=r"ReversalOpen\(interval=0, chunksLeft=1\)"):
        raw(market, dispute_call(market, 0, [entries_hash(c) for c in chunks], 0, [chunks[0]], reading(1, 0, 0, market)))
    # The oracle finishes the reversal (anyone may) before it settles the interval again.
    market.deposit_bond(market.bond()[1])
    market.settle(settlement(homes, [0, 0, 0, 0], [0, 0, 0, 0]))
    assert not market.reversal().open and market.next_interval() == 1
    assert [market.balance(i) for i in range(5)] == [10_000_000] * 5


def test_a_dispute_that_crashed_half_way_is_finished_by_disputing_again(market, homes):
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    chunks = chunks_of(s.entries())
    auditor = funded_auditor(market)
    signed = reading(4, 0, 0, market)
    market._send_dispute(0, chunks, signed, auditor)
    assert market.reversal().left == 2
    receipt = market.dispute(0, chunks, signed, auditor)  # resumes: no second dispute
    assert names(receipt) == ["ChunkReversed", "ChunkReversed", "ReversalClosed"]
    # Without the entries at hand, they come from the chain's EntriesSettled logs.
    market.deposit_bond(market.bond()[1])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    market._send_dispute(0, chunks, signed, auditor)
    assert len(market.finish_reversal(auditor)) == 2 and not market.reversal().open
    assert [market.balance(i) for i in range(5)] == [10_000_000] * 5


def test_an_interval_disputed_while_being_applied_reverses_only_its_applied_chunks(market, homes):
    before = books(market)
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    words = s.entries()
    a, b = chunks_of(words)
    verify(market, s, a, False)
    verify(market, s, b, True)
    apply(market, 0, 0, a)
    # Home 4 (chunk 1, not applied yet: its entries are the verify transaction's) metered
    # 400, not 500; only the applied chunk 0 is reversed, by a transaction of its own.
    receipt = market.dispute(0, [a, b], reading(4, 0, 400, market), funded_auditor(market))
    assert len(receipt.parts) == 2 and names(receipt) == ["ReversalOpened", "ChunkReversed", "ReversalClosed"]
    assert [e.args["gridAmount"] for e in receipt.events if e.name == "ReversalClosed"] == [0]  # never moved
    assert not market.pending().open and market.next_interval() == 0
    balances, tokens = books(market)
    assert balances == before[0] and tokens == before[1] - market.bond()[1]


# -- 2,500 entries -----------------------------------------------------------------------


def test_twenty_five_hundred_entries_settle_in_chunks_and_a_dispute_reverses_them_all(chain):
    started = time.perf_counter()
    market = large_market(chain)
    ids = large_community(market, 2_500)
    everyone = range(0, 2_501)
    before = sum(books(market, everyone)[0]), books(market, [])[1]
    s = random_interval(ids, 0, seed=5)
    settled = market.settle(s)
    words = s.entries()
    chunks = [words[c.start : c.end] for c in plan_chunks(words)]
    assert len(chunks) >= 3
    victim = int(ids[len(ids) // 2])
    net = int(s.grid_wh[victim - 1] + s.p2p_wh[victim - 1])
    signed = sign_reading(owner_key(victim), market.domain(), Reading.of_net(victim, 0, net + 1))
    receipt = market.dispute(0, chunks, signed, funded_auditor(market))
    assert names(receipt) == ["ReversalOpened"] + ["ChunkReversed"] * len(chunks) + ["ReversalClosed"]
    gas = [r.gas_used for r in receipt.parts]
    print(f"\n2,500 entries: settled in {len(settled.parts)} txs (largest {max(r.gas_used for r in settled.parts):,} gas);"
          f" disputed and reversed in {len(gas)} txs (largest {max(gas):,} gas); {time.perf_counter() - started:.0f} s")
    assert max(gas) < MAX_TX_GAS and len(gas) == 1 + len(chunks)
    after = sum(books(market, everyone)[0]), books(market, [])[1]
    assert after == (before[0], before[1] - market.bond()[1])
    assert [market.balance(int(p)) for p in ids[::97]] == [10_000_000] * len(ids[::97])


def test_a_dispute_finishes_another_intervals_open_reversal_first(market, homes):
    s0 = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    s1 = settlement(homes, [0, 800, -200, 0], [300, 0, 0, -300], interval=1)
    market.settle_chunked(s0, budget=TWO_PER_CHUNK)
    market.settle_chunked(s1, budget=TWO_PER_CHUNK)
    auditor = funded_auditor(market)
    market._send_dispute(0, chunks_of(s0.entries()), reading(1, 0, 0, market), auditor)  # left open
    # Interval 1's disputer has only interval 1's entries: interval 0's come from the logs.
    receipt = market.dispute(1, chunks_of(s1.entries()), reading(2, 1, 0, market), auditor)
    assert names(receipt) == ["ChunkReversed", "ChunkReversed", "ReversalClosed",
                              "ReversalOpened", "ChunkReversed", "ChunkReversed", "ReversalClosed"]
    assert market.record(0).reversed and market.record(1).reversed and not market.reversal().open
    assert [market.balance(i) for i in range(5)] == [10_000_000] * 5


def test_the_index_and_every_page_say_how_far_an_open_reversal_has_got(market, homes, tmp_path):
    from node.index.rebuild import check_index, settlement_gas
    from node.index.store import Index
    from webui import create_app

    path = str(tmp_path / "index.sqlite")

    def catch_up(market, path):  # as the oracle indexes: with each settlement's gas
        index = Index(path)
        index.set_meta(market=market.deployment.market, currency="EUR", interval_minutes=15,
                       start="2026-06-01T00:00:00+00:00", first_interval=0)
        events = market.events(index.last_block + 1)
        index.apply(events, settlement_gas(market, events))
        index.close()

    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    market.settle_chunked(s, budget=TWO_PER_CHUNK)
    chunks = chunks_of(s.entries())
    auditor = funded_auditor(market)
    market._send_dispute(0, chunks, reading(1, 0, 0, market), auditor)  # the disputer stops here
    raw(market, market.market.functions.reverseChunk(0, 1, chunks[1]))
    catch_up(market, path)
    index = Index(path)
    assert check_index(market, index, inputs=False) == []  # reversals and their steps as the chain logged them
    reversal = index.open_reversal()
    assert (reversal["interval"], reversal["participant"], reversal["chunks"], reversal["reversed"]) == (0, 1, 2, 1)
    assert not reversal["closed"] and reversal["disputer"] == auditor.address.lower()
    index.close()
    client = create_app({"TESTING": True, "INDEX_PATH": path}).test_client()
    for page in ("/", "/intervals/", "/participants/"):
        text = client.get(page).get_data(as_text=True)
        assert 'id="reversal-open"' in text and "reversing interval #0 on chain" in text and "1 of 2 chunks" in text, page
    assert client.get("/api/reversals").get_json()[0]["open"] is True
    assert "being reversed (1 of 2 chunks so far)" in client.get("/intervals/0").get_data(as_text=True)

    market.finish_reversal(auditor)
    catch_up(market, path)
    client = create_app({"TESTING": True, "INDEX_PATH": path}).test_client()
    assert 'id="reversal-open"' not in client.get("/intervals/").get_data(as_text=True)
    (closed,) = client.get("/api/reversals").get_json()
    assert closed["chunks_reversed"] == 2 and not closed["open"] and closed["closed_block"] == market.chain.w3.eth.block_number
    assert closed["grid_amount_units"] == sum(e.amount for e in map(decode_entry, s.entries()))

    # Settled again in chunks: the index counts only the new settlement's gas, as the chain does.
    market.deposit_bond(market.bond()[1])
    receipt = market.settle_chunked(s, budget=TWO_PER_CHUNK)
    catch_up(market, path)
    index = Index(path)
    assert check_index(market, index, inputs=False) == []
    assert index.interval(0)["gas_used"] == receipt.gas_used
    # Replaying every event (a crash before the cursor moved) changes nothing: the reversal's
    # entries are not taken from the interval's new settlement, nor its new entries dropped.
    events = market.events()
    index.apply(events, settlement_gas(market, events))
    assert check_index(market, index, inputs=False) == []
    assert len(index.reversed_entries(1)) == 1 and index.interval(0)["participants"] == 4
    index.close()
