"""EIP-712 orders, mandates and revocations: digests match eth_account and OpenZeppelin,
signatures recover their signer, and anything malformed is refused by name."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys import keys as eth_keys
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from pathlib import Path

from node.errors import InputError
from node.intent.signing import (
    CANCELLATION_TYPE,
    READING_TYPE,
    Reading,
    SignedReading,
    sign_reading,
    MANDATE_TYPE,
    MANDATE_TYPEHASH,
    ORDER_TYPE,
    ORDER_TYPEHASH,
    READ_REQUEST_TYPE,
    REVOCATION_TYPE,
    SECP256K1_N,
    SOLIDITY_TYPEHASHES,
    Domain,
    Mandate,
    Order,
    ReadRequest,
    Revocation,
    SignedMandate,
    SignedOrder,
    SignedReadRequest,
    digest,
    mandate_digest,
    order_digest,
    recover_signer,
    sign,
    sign_mandate,
    sign_order,
    sign_read_request,
    struct_hash,
    typed_data,
)

ROOT = Path(__file__).resolve().parent.parent

ALICE = Account.from_key("0x" + "a1" * 32)
MALLORY = Account.from_key("0x" + "e7" * 32)
DOMAIN = Domain(chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")
ORDER = Order(participant=3, interval=96, side=0, energy_wh=1_500, limit_price=250_000, expiry=1_760_000_000, nonce=7)
MANDATE = Mandate(participant=3, max_buy_price=280_000, min_sell_price=90_000, min_soc_ppm=100_000,
                  max_soc_ppm=950_000, valid_until=1_790_000_000, nonce=1)

U32, U64 = (1 << 32) - 1, (1 << 64) - 1
orders = st.builds(Order, participant=st.integers(0, U32), interval=st.integers(0, U64), side=st.sampled_from([0, 1]),
                   energy_wh=st.integers(1, U64), limit_price=st.integers(0, U64), expiry=st.integers(0, U64),
                   nonce=st.integers(0, U64))
mandates = st.integers(0, 1_000_000).flatmap(lambda hi: st.builds(
    Mandate, participant=st.integers(0, U32), max_buy_price=st.integers(0, U64), min_sell_price=st.integers(0, U64),
    min_soc_ppm=st.integers(0, hi), max_soc_ppm=st.just(hi), valid_until=st.integers(0, U64),
    nonce=st.integers(0, U64)))
keys = st.integers(1, SECP256K1_N - 1).map(lambda k: Account.from_key(k.to_bytes(32, "big")))


def test_type_strings_are_exactly_what_the_contract_hashes() -> None:
    assert ORDER_TYPE == ("Order(uint32 participant,uint64 interval,uint8 side,uint64 energyWh,uint64 limitPrice,"
                          "uint64 expiry,uint64 nonce)")
    assert MANDATE_TYPE == ("Mandate(uint32 participant,uint64 maxBuyPrice,uint64 minSellPrice,uint32 minSocPpm,"
                            "uint32 maxSocPpm,uint64 validFrom,uint64 validUntil,uint64 maxEnergyWh,uint64 nonce)")
    assert REVOCATION_TYPE == "Revocation(uint32 participant,uint64 nonce)"
    assert CANCELLATION_TYPE == "OrderCancellation(uint32 participant,uint64 nonce)"
    assert READING_TYPE == "Reading(uint32 participant,uint64 interval,uint64 importWh,uint64 exportWh)"
    assert ORDER_TYPEHASH == keccak(text=ORDER_TYPE) and MANDATE_TYPEHASH == keccak(text=MANDATE_TYPE)
    # Character for character what the contracts hash.
    sources = "".join(p.read_text() for p in (ROOT / "contracts" / "src").rglob("*.sol"))
    for text in (ORDER_TYPE, MANDATE_TYPE, REVOCATION_TYPE, CANCELLATION_TYPE, READING_TYPE):
        assert f'"{text}"' in sources.replace('"\n        "', "").replace(" \n", ""), text
        assert f'keccak256("{text}")' in SOLIDITY_TYPEHASHES


def test_a_mandate_without_validity_start_or_energy_bound_reads_as_from_the_epoch_unbounded() -> None:
    old_json = {"participant": 1, "maxBuyPrice": 2, "minSellPrice": 3, "minSocPpm": 0, "maxSocPpm": 5,
                "validUntil": 9, "nonce": 1}
    m = Mandate.from_values(old_json)
    assert (m.valid_from, m.max_energy_wh) == (0, 2**64 - 1)
    assert m.covers(0, 10) and not m.covers(0, 11)  # an interval must lie wholly within it


def test_a_reading_signed_by_a_meter_recovers_to_the_meter() -> None:
    meter = Account.from_key(b"\x07" * 32)
    signed = sign_reading(meter, DOMAIN, Reading.of_net(3, 17, -1_250))
    assert (signed.reading.import_wh, signed.reading.export_wh, signed.reading.net_wh) == (0, 1_250, -1_250)
    assert signed.signer(DOMAIN) == meter.address
    assert SignedReading.from_json(signed.to_json()) == signed


def test_domain_separator_matches_a_hand_built_one() -> None:
    # The same words OpenZeppelin's EIP712._buildDomainSeparator hashes.
    words = (keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
             + keccak(text="GridLedger") + keccak(text="1") + (31337).to_bytes(32, "big")
             + bytes(12) + bytes.fromhex(DOMAIN.verifying_contract[2:]))
    assert DOMAIN.separator() == keccak(words)


def test_struct_hash_is_keccak_of_typehash_and_padded_fields() -> None:
    words = ORDER_TYPEHASH + b"".join(v.to_bytes(32, "big") for v in ORDER.values().values())
    assert struct_hash(ORDER) == keccak(words)


@pytest.mark.parametrize("message", [ORDER, MANDATE, Revocation(3, 1)], ids=["order", "mandate", "revocation"])
def test_digest_equals_eth_accounts_typed_data_digest(message) -> None:
    expected = _hash_eip191_message(encode_typed_data(full_message=typed_data(DOMAIN, message)))
    assert digest(DOMAIN, message) == expected
    assert keccak(b"\x19\x01" + DOMAIN.separator() + struct_hash(message)) == expected


def test_sign_gives_the_bytes_a_wallet_signing_the_typed_data_gives() -> None:
    for key in (ALICE, MALLORY):
        for message in (ORDER, MANDATE):
            wallet = key.sign_message(encode_typed_data(full_message=typed_data(DOMAIN, message)))
            assert sign(key, DOMAIN, message) == bytes(wallet.signature)


def test_order_and_mandate_digests_are_distinct_per_type() -> None:
    assert order_digest(DOMAIN, ORDER) != mandate_digest(DOMAIN, MANDATE)
    assert digest(DOMAIN, Revocation(3, 7)) != digest(DOMAIN, ORDER)


def test_signature_recovers_the_signer() -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    assert len(signed.signature) == 65 and signed.signature[64] in (27, 28)
    assert recover_signer(DOMAIN, ORDER, signed.signature) == ALICE.address
    assert sign_mandate(ALICE, DOMAIN, MANDATE).signer(DOMAIN) == ALICE.address


@pytest.mark.parametrize("change", [
    {"participant": 4}, {"interval": 97}, {"side": 1}, {"energy_wh": 1_501}, {"limit_price": 250_001},
    {"expiry": 1_760_000_001}, {"nonce": 8},
])
def test_tampered_field_recovers_a_different_signer(change: dict) -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    assert recover_signer(DOMAIN, replace(ORDER, **change), signed.signature) != ALICE.address


def test_signature_for_another_chain_or_market_recovers_a_different_signer() -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    assert recover_signer(replace(DOMAIN, chain_id=1), ORDER, signed.signature) != ALICE.address
    other_market = replace(DOMAIN, verifying_contract="0x" + "11" * 20)
    assert recover_signer(other_market, ORDER, signed.signature) != ALICE.address


def test_high_s_signature_is_rejected_as_malleable() -> None:
    signature = sign_order(ALICE, DOMAIN, ORDER).signature
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    # The twin is a valid ECDSA signature by Alice: only the low-s rule stops it.
    twin_signature = eth_keys.Signature(vrs=(twin[64] - 27, int.from_bytes(r, "big"), SECP256K1_N - s))
    assert twin_signature.recover_public_key_from_msg_hash(order_digest(DOMAIN, ORDER)).to_checksum_address() \
        == ALICE.address
    with pytest.raises(InputError, match="malleable"):
        recover_signer(DOMAIN, ORDER, twin)


@pytest.mark.parametrize(("signature", "problem"), [
    (b"\x00" * 64, "65 bytes"),
    (b"\x01" * 64 + b"\x01", "v must be 27 or 28"),
    (b"\x00" * 32 + b"\x01" * 32 + b"\x1b", "out of range"),
    (b"\xff" * 32 + b"\x01" * 32 + b"\x1b", "out of range"),
])
def test_malformed_signatures_are_rejected(signature: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        recover_signer(DOMAIN, ORDER, signature)


@pytest.mark.parametrize(("change", "field"), [
    ({"side": 2}, "order.side"),
    ({"energy_wh": 0}, "order.energyWh"),
    ({"limit_price": 1 << 64}, "order.limitPrice"),
    ({"participant": 1 << 32}, "order.participant"),
    ({"nonce": -1}, "order.nonce"),
    ({"interval": 1.5}, "order.interval"),
    ({"expiry": True}, "order.expiry"),
])
def test_invalid_order_field_is_named(change: dict, field: str) -> None:
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        replace(ORDER, **change)


@pytest.mark.parametrize(("change", "field"), [
    ({"max_soc_ppm": 1_000_001}, "mandate.maxSocPpm"),
    ({"min_soc_ppm": 960_000}, "mandate.minSocPpm"),
    ({"max_buy_price": 1 << 64}, "mandate.maxBuyPrice"),
])
def test_invalid_mandate_field_is_named(change: dict, field: str) -> None:
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        replace(MANDATE, **change)


def test_signed_order_json_round_trips() -> None:
    signed = sign_order(ALICE, DOMAIN, ORDER)
    text = json.dumps(signed.to_json())
    assert json.loads(text)["order"]["energyWh"] == 1_500
    assert SignedOrder.from_json(text) == signed
    assert SignedMandate.from_json(sign_mandate(ALICE, DOMAIN, MANDATE).to_json()).mandate == MANDATE


def test_json_uint64_may_be_a_decimal_string() -> None:
    data = sign_order(ALICE, DOMAIN, ORDER).to_json()
    data["order"]["nonce"] = str(U64)
    assert SignedOrder.from_json(data).order.nonce == U64


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda d: d["order"].pop("limitPrice"), "missing field.*limitPrice"),
    (lambda d: d["order"].update(colour="red"), "unknown field.*colour"),
    (lambda d: d["order"].update(side="sell"), r"order\.side must be an integer"),
    (lambda d: d["order"].update(energyWh=-5), r"order\.energyWh"),
    (lambda d: d.update(signature="abc"), "0x-prefixed"),
    (lambda d: d.update(signature="0xzz"), "not valid hex"),
    (lambda d: d.update(signature="0x" + "00" * 64), "65 bytes"),
    (lambda d: d.update(extra=1), "nothing else"),
])
def test_json_parsing_names_the_bad_field(mutate, problem: str) -> None:
    data = sign_order(ALICE, DOMAIN, ORDER).to_json()
    mutate(data)
    with pytest.raises(InputError, match=problem):
        SignedOrder.from_json(data)


def test_invalid_json_text_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        SignedOrder.from_json("{order:")


def test_domain_rejects_a_bad_contract_address() -> None:
    with pytest.raises(InputError, match="verifyingContract"):
        Domain(1, "0x1234")


@settings(max_examples=25, deadline=None)
@given(order=orders, account=keys)
def test_any_order_signed_by_any_key_recovers_that_key(order: Order, account) -> None:
    signed = sign_order(account, DOMAIN, order)
    wallet = account.sign_message(encode_typed_data(full_message=typed_data(DOMAIN, order)))
    assert signed.signature == bytes(wallet.signature)  # libsecp256k1 directly: a wallet's bytes
    assert recover_signer(DOMAIN, order, signed.signature) == account.address
    assert SignedOrder.from_json(json.dumps(signed.to_json())) == signed


@settings(max_examples=25, deadline=None)
@given(mandate=mandates, account=keys)
def test_any_mandate_digest_matches_eth_account_and_recovers(mandate: Mandate, account) -> None:
    expected = _hash_eip191_message(encode_typed_data(full_message=typed_data(DOMAIN, mandate)))
    assert mandate_digest(DOMAIN, mandate) == expected
    assert recover_signer(DOMAIN, mandate, sign(account, DOMAIN, mandate)) == account.address


# -- read requests ------------------------------------------------------------------------


def test_read_request_is_typed_data_a_wallet_signs_and_round_trips_as_json() -> None:
    assert READ_REQUEST_TYPE == "ReadRequest(uint32 participant,uint64 issuedAt)"
    assert "ReadRequest" not in SOLIDITY_TYPEHASHES  # never on chain
    request = ReadRequest(participant=3, issued_at=1_760_000_000)
    expected = _hash_eip191_message(encode_typed_data(full_message=typed_data(DOMAIN, request)))
    assert digest(DOMAIN, request) == expected
    signed = sign_read_request(ALICE, DOMAIN, request)
    assert signed.signer(DOMAIN) == ALICE.address
    data = json.loads(json.dumps(signed.to_json()))
    assert data["readRequest"] == {"participant": 3, "issuedAt": 1_760_000_000}
    assert SignedReadRequest.from_json(data) == signed


def test_a_read_request_signature_is_no_order_or_revocation_signature() -> None:
    # Same participant and numbers, another type hash: what a wallet signs to read can
    # never be replayed as intent that moves energy or money.
    signed = sign_read_request(ALICE, DOMAIN, ReadRequest(3, 7))
    assert recover_signer(DOMAIN, Revocation(3, 7), signed.signature) != ALICE.address


@pytest.mark.parametrize(("values", "problem"), [
    ({"participant": 2**32, "issuedAt": 1}, r"readrequest\.participant"),
    ({"participant": 1, "issuedAt": -1}, r"readrequest\.issuedAt"),
    ({"participant": 1}, "missing field.*issuedAt"),
])
def test_read_request_fields_are_checked_by_name(values: dict, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        ReadRequest.from_values(values)
