"""The order book accepts only orders their participant signed, keeps them across
restarts, and leaves no trace of anything it refuses."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from node.errors import InputError
from node.intent.bounds import MAX_INTERVALS_AHEAD, ORDER_NONCE_BITS
from node.intent.orders import (
    READ_REQUEST_MAX_AGE,
    READ_REQUEST_MAX_AHEAD,
    NotOwner,
    OrderBook,
    StaleReadRequest,
)
from node.intent.signing import (
    Domain,
    Mandate,
    Order,
    ReadRequest,
    Revocation,
    SignedOrder,
    SignedReadRequest,
    sign,
    sign_mandate,
    sign_order,
    sign_read_request,
)

ALICE = Account.from_key("0x" + "a1" * 32)
BOB = Account.from_key("0x" + "b0" * 32)
MALLORY = Account.from_key("0x" + "e7" * 32)
OWNERS = {1: ALICE.address, 2: BOB.address}
DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
NOW = 1_750_000_000
NEXT = 100  # first interval not yet settled
ORDER = Order(participant=1, interval=NEXT, side=0, energy_wh=2_000, limit_price=200_000, expiry=NOW + 3_600, nonce=1)
MANDATE = Mandate(participant=1, max_buy_price=280_000, min_sell_price=90_000, min_soc_ppm=100_000,
                  max_soc_ppm=900_000, valid_until=NOW + 86_400, nonce=1)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "orders.sqlite"


@pytest.fixture
def book(path: Path):
    with OrderBook(path, DOMAIN, OWNERS.get) as book:
        yield book


def _rows(path: Path) -> dict[str, list[tuple]]:
    """Everything in the file, read by a separate connection as another process would."""
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in ("orders", "mandates", "revocations")}
    finally:
        db.close()


def test_accepted_order_is_returned_for_its_interval(book: OrderBook) -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    order_id = book.submit(signed, NOW, NEXT)
    assert book.orders_for(NEXT) == [signed]
    assert book.get(order_id) == signed
    assert book.orders_for(NEXT + 1) == []


def test_accepted_orders_survive_reopening_the_database(path: Path) -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    book = OrderBook(path, DOMAIN, OWNERS.get)
    book.submit(signed, NOW, NEXT)
    assert len(_rows(path)["orders"]) == 1  # committed before submit returned, visible to others
    book.close()
    with OrderBook(path, DOMAIN, OWNERS.get) as reopened:
        assert reopened.orders_for(NEXT) == [signed]


def test_order_book_is_durable_by_configuration(book: OrderBook) -> None:
    assert book._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert book._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


@pytest.mark.parametrize(("signed", "now", "problem"), [
    (SignedOrder(ORDER, sign(MALLORY, DOMAIN, ORDER)), NOW, "signed by " + MALLORY.address),
    (sign_order(BOB, DOMAIN, ORDER), NOW, "participant's owner is " + ALICE.address),
    (sign_order(ALICE, replace(DOMAIN, chain_id=1), ORDER), NOW, "for chain 31337"),
    (sign_order(ALICE, DOMAIN, replace(ORDER, participant=9)), NOW, "participant 9 is not registered"),
    (sign_order(ALICE, DOMAIN, ORDER), ORDER.expiry + 1, "expired"),
    (sign_order(ALICE, DOMAIN, replace(ORDER, interval=NEXT - 1)), NOW, "closed; the next open interval is 100"),
], ids=["forged", "wrong-participant", "other-chain", "unregistered", "expired", "past-interval"])
def test_refused_order_says_why_and_leaves_the_store_unchanged(book: OrderBook, path: Path, signed: SignedOrder,
                                                               now: int, problem: str) -> None:
    before = _rows(path)
    with pytest.raises(InputError, match=problem):
        book.submit(signed, now, NEXT)
    assert _rows(path) == before
    assert book.orders_for(signed.order.interval) == []


def test_tampered_order_is_refused(book: OrderBook) -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    tampered = SignedOrder(replace(ORDER, energy_wh=20_000), signed.signature)
    with pytest.raises(InputError, match="signed by"):
        book.submit(tampered, NOW, NEXT)


def test_replayed_nonce_is_refused_and_leaves_the_store_unchanged(book: OrderBook, path: Path) -> None:
    book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)
    before = _rows(path)
    with pytest.raises(InputError, match="already used order nonce 1"):
        book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)
    with pytest.raises(InputError, match="already used order nonce 1"):  # same nonce, other interval
        book.submit(sign_order(ALICE, DOMAIN, replace(ORDER, interval=NEXT + 1)), NOW, NEXT)
    assert _rows(path) == before


def test_replay_is_refused_after_reopening(path: Path) -> None:
    with OrderBook(path, DOMAIN, OWNERS.get) as book:
        book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)
    with OrderBook(path, DOMAIN, OWNERS.get) as book, pytest.raises(InputError, match="already used"):
        book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)


def test_nonces_are_per_participant(book: OrderBook) -> None:
    book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)
    book.submit(sign_order(BOB, DOMAIN, replace(ORDER, participant=2)), NOW, NEXT)
    assert len(book.orders_for(NEXT)) == 2


def test_order_is_valid_up_to_and_including_its_expiry(book: OrderBook) -> None:
    book.submit(sign_order(ALICE, DOMAIN, ORDER), ORDER.expiry, NEXT)


def test_orders_come_back_in_participant_then_nonce_order_whatever_the_arrival(book: OrderBook) -> None:
    arrivals = [(BOB, 2, 5), (ALICE, 1, 9), (BOB, 2, 1), (ALICE, 1, 2)]
    for account, participant, nonce in arrivals:
        book.submit(sign_order(account, DOMAIN, replace(ORDER, participant=participant, nonce=nonce)), NOW, NEXT)
    assert [(s.order.participant, s.order.nonce) for s in book.orders_for(NEXT)] == [(1, 2), (1, 9), (2, 1), (2, 5)]


def test_the_largest_settlable_values_are_stored_and_sorted_exactly(book: OrderBook) -> None:
    """uint64 expiry beyond SQLite's INTEGER; the highest nonce a settlement carries; the
    furthest interval the book takes (larger ones: tests/test_bounds.py)."""
    last = NEXT + MAX_INTERVALS_AHEAD
    high = replace(ORDER, interval=last, expiry=(1 << 64) - 1, nonce=(1 << ORDER_NONCE_BITS) - 1)
    low = replace(high, nonce=3)
    for order in (high, low):
        book.submit(sign_order(ALICE, DOMAIN, order), NOW, NEXT)
    assert [s.order for s in book.orders_for(last)] == [low, high]


def test_orders_for_leaves_out_expired_orders_when_given_the_time(book: OrderBook) -> None:
    book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)
    assert book.orders_for(NEXT, now=ORDER.expiry) != []
    assert book.orders_for(NEXT, now=ORDER.expiry + 1) == []


# -- mandates -------------------------------------------------------------------------


def test_mandate_is_active_until_valid_until(book: OrderBook) -> None:
    signed = sign_mandate(ALICE, DOMAIN, MANDATE)
    book.submit_mandate(signed, NOW)
    assert book.active_mandates(MANDATE.valid_until) == [signed]
    assert book.active_mandates(MANDATE.valid_until + 1) == []


@pytest.mark.parametrize(("mandate", "account", "now", "problem"), [
    (MANDATE, MALLORY, NOW, "signed by"),
    (MANDATE, ALICE, MANDATE.valid_until + 1, "expired"),
    (replace(MANDATE, participant=7), ALICE, NOW, "not registered"),
], ids=["forged", "expired", "unregistered"])
def test_refused_mandate_leaves_the_store_unchanged(book: OrderBook, path: Path, mandate: Mandate, account,
                                                    now: int, problem: str) -> None:
    before = _rows(path)
    with pytest.raises(InputError, match=problem):
        book.submit_mandate(sign_mandate(account, DOMAIN, mandate), now)
    assert _rows(path) == before


def test_replayed_mandate_nonce_is_refused(book: OrderBook) -> None:
    book.submit_mandate(sign_mandate(ALICE, DOMAIN, MANDATE), NOW)
    with pytest.raises(InputError, match="already used mandate nonce 1"):
        book.submit_mandate(sign_mandate(ALICE, DOMAIN, replace(MANDATE, max_buy_price=1)), NOW)


def test_revoked_mandate_is_no_longer_active_even_after_reopening(book: OrderBook, path: Path) -> None:
    book.submit_mandate(sign_mandate(ALICE, DOMAIN, MANDATE), NOW)
    kept = sign_mandate(ALICE, DOMAIN, replace(MANDATE, nonce=2))
    book.submit_mandate(kept, NOW)
    revocation = book.revoke_mandate(1, 1, sign(ALICE, DOMAIN, Revocation(1, 1)), NOW)
    assert book.active_mandates(NOW) == [kept]
    assert book.revocations() == [revocation]
    with OrderBook(path, DOMAIN, OWNERS.get) as reopened:
        assert reopened.active_mandates(NOW) == [kept]


def test_revocation_must_be_signed_by_the_owner(book: OrderBook, path: Path) -> None:
    book.submit_mandate(sign_mandate(ALICE, DOMAIN, MANDATE), NOW)
    before = _rows(path)
    with pytest.raises(InputError, match="revocation for participant 1 is signed by " + MALLORY.address):
        book.revoke_mandate(1, 1, sign(MALLORY, DOMAIN, Revocation(1, 1)), NOW)
    with pytest.raises(InputError, match="signed by"):  # Alice's signature, but over another nonce
        book.revoke_mandate(1, 1, sign(ALICE, DOMAIN, Revocation(1, 2)), NOW)
    assert _rows(path) == before


def test_revoking_first_stops_the_mandate_being_submitted_later(book: OrderBook) -> None:
    book.revoke_mandate(1, 1, sign(ALICE, DOMAIN, Revocation(1, 1)), NOW)
    book.revoke_mandate(1, 1, sign(ALICE, DOMAIN, Revocation(1, 1)), NOW)  # twice is harmless
    with pytest.raises(InputError, match="revoked mandate nonce 1"):
        book.submit_mandate(sign_mandate(ALICE, DOMAIN, MANDATE), NOW)
    assert book.active_mandates(NOW) == []


# -- reading on behalf of an owner ------------------------------------------------------


def read(account, participant: int, issued_at: int = NOW) -> SignedReadRequest:
    return sign_read_request(account, DOMAIN, ReadRequest(participant, issued_at))


def test_read_request_of_the_owner_names_the_participant_it_may_read(book: OrderBook) -> None:
    assert book.authorize_read(read(ALICE, 1), NOW) == 1
    assert book.authorize_read(read(BOB, 2, NOW - READ_REQUEST_MAX_AGE), NOW) == 2
    assert book.authorize_read(read(BOB, 2, NOW + READ_REQUEST_MAX_AHEAD), NOW) == 2


@pytest.mark.parametrize(("signed", "error", "problem"), [
    (read(BOB, 1), NotOwner, f"read request for participant 1 is signed by {BOB.address}"),
    (read(MALLORY, 2), NotOwner, "participant's owner is " + BOB.address),
    (read(ALICE, 9), NotOwner, "participant 9 is not registered"),
    (read(ALICE, 1, NOW - READ_REQUEST_MAX_AGE - 1), StaleReadRequest, "301 s ago; it is valid for 300 s"),
    (read(ALICE, 1, NOW + READ_REQUEST_MAX_AHEAD + 1), StaleReadRequest, "61 s in the future"),
], ids=["other-participant", "stranger", "unregistered", "stale", "ahead"])
def test_read_request_is_refused_unless_fresh_and_signed_by_the_owner(book: OrderBook, signed, error, problem) -> None:
    with pytest.raises(error, match=problem):
        book.authorize_read(signed, NOW)


def test_orders_of_a_participant_come_with_their_ids_and_counts_show_no_bids(book: OrderBook) -> None:
    first = book.submit(sign_order(ALICE, DOMAIN, ORDER), NOW, NEXT)
    later = book.submit(sign_order(ALICE, DOMAIN, replace(ORDER, interval=NEXT + 1, nonce=2)), NOW, NEXT)
    book.submit(sign_order(BOB, DOMAIN, replace(ORDER, participant=2)), NOW, NEXT)
    assert [(i, s.order.interval) for i, s in book.orders_of(1)] == [(first, NEXT), (later, NEXT + 1)]
    assert [i for i, _ in book.orders_of(1, NEXT + 1)] == [later]
    assert book.orders_of(3) == []
    assert book.count_for(NEXT) == 2 and book.count_for(NEXT + 1) == 1
    assert book.count_for(NEXT, now=ORDER.expiry + 1) == 0
