"""``gridledger order|mandate sign|submit``, ``gridledger order list``: a participant's
signed intent, from the terminal.

Signing happens here, with the participant's key from their keystore; submitting is
a plain HTTP POST of the signed JSON to a GridLedger server (``/api/orders``,
``/api/mandates``), which checks the signature again before it stores anything.
The two steps are separate so a key never has to be on the machine that serves the
market: sign on a laptop, carry the JSON, submit from anywhere. Listing signs a
short-lived ReadRequest with the same key: the server shows a participant's pending
orders to its owner only.

People write kWh, prices per kWh in the currency, and times; the signed messages hold
the chain's integers (Wh, token minor units per kWh, unix seconds). The conversions
below are exact or refused, never rounded, and the web UI's order form uses them too,
so a form and a command with the same numbers sign the same message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from urllib.parse import urlencode

from eth_account.signers.local import LocalAccount

from node.errors import InputError
from node.keys import DEFAULT_KEYSTORE, KEYSTORE_ENV, Keystore, read_password, read_text
from node.settlement import UNITS_PER_TOKEN
from node.signing import (
    BUY,
    PPM,
    SELL,
    Domain,
    Mandate,
    Order,
    ReadRequest,
    SignedMandate,
    SignedOrder,
    SignedReadRequest,
    sign_mandate,
    sign_order,
    sign_read_request,
)

SIDES = {"buy": BUY, "sell": SELL}
DEFAULT_URL = "http://127.0.0.1:5000"
DEFAULT_VALID_FOR_MINUTES = 60
SUBMIT_TIMEOUT_SECONDS = 30

# -- people's units to the chain's integers ------------------------------------------


def _decimal(text: str | float | int, what: str) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise InputError(f"{what} must be a number, got {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise InputError(f"{what} must be a finite number of at least 0, got {text!r}")
    return value


def energy_wh(kwh: str | float | int, what: str = "energy") -> int:
    """kWh as typed (``"2.5"``) to whole Wh, more than 0; refuses what would need rounding."""
    wh = whole_wh(kwh, what)
    if wh == 0:
        raise InputError(f"{what} must be more than 0 kWh")
    return wh


def whole_wh(kwh: str | float | int, what: str = "energy") -> int:
    """kWh as typed to whole Wh, 0 included (a grid capacity may be 0)."""
    wh = _decimal(kwh, what) * 1000
    if wh != wh.to_integral_value():
        raise InputError(f"{what} {kwh} kWh is not a whole number of Wh; give at most 3 decimals")
    return int(wh)


def price_units(per_kwh: str | float | int, what: str = "limit price") -> int:
    """A price per kWh in the currency (``"0.25"``) to token minor units per kWh."""
    units = _decimal(per_kwh, what) * UNITS_PER_TOKEN
    if units != units.to_integral_value():
        raise InputError(f"{what} {per_kwh} per kWh has more decimals than the settlement token "
                         f"({len(str(UNITS_PER_TOKEN)) - 1})")
    return int(units)


def percent_ppm(percent: str | float | int, what: str) -> int:
    ppm = _decimal(percent, what) * (PPM // 100)
    if ppm != ppm.to_integral_value() or ppm > PPM:
        raise InputError(f"{what} must be a percentage from 0 to 100 with at most 4 decimals, got {percent!r}")
    return int(ppm)


def unix_time(iso: str, what: str = "expiry") -> int:
    """An ISO 8601 time to unix seconds; without a zone it is UTC, as on the chain."""
    try:
        moment = datetime.fromisoformat(iso.strip())
    except (AttributeError, ValueError) as exc:
        raise InputError(f"{what} must be an ISO 8601 time like 2026-06-01T12:00:00Z, got {iso!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def until(expiry_iso: str | None, valid_for_minutes: float | None, now: int, what: str = "expiry") -> int:
    """The expiry from an explicit time or a duration from `now` (the default: an hour)."""
    if expiry_iso is not None and valid_for_minutes is not None:
        raise InputError(f"give either the {what} time or how long it is valid for, not both")
    if expiry_iso is not None:
        return unix_time(expiry_iso, what)
    minutes = DEFAULT_VALID_FOR_MINUTES if valid_for_minutes is None else valid_for_minutes
    if minutes <= 0:
        raise InputError(f"the validity must be more than 0 minutes, got {minutes}")
    return now + int(minutes * 60)


def fresh_nonce() -> int:
    """Milliseconds since 1970: a nonce that does not repeat for one participant signing
    by hand, and stays below 2**53 so browsers' JSON keeps it exact."""
    return time.time_ns() // 1_000_000


def side_code(side: str | int) -> int:
    if isinstance(side, str) and side.lower() in SIDES:
        return SIDES[side.lower()]
    if side in (BUY, SELL):
        return int(side)
    raise InputError(f"side must be buy or sell, got {side!r}")


def build_order(participant: int, side: str | int, energy_kwh: str, limit_price_per_kwh: str, interval: int,
                expiry: int, nonce: int) -> Order:
    """The Order a participant means by these human-unit values."""
    return Order(participant=participant, interval=interval, side=side_code(side), energy_wh=energy_wh(energy_kwh),
                 limit_price=price_units(limit_price_per_kwh), expiry=expiry, nonce=nonce)


def build_mandate(participant: int, max_buy_price: str, min_sell_price: str, min_soc_percent: str,
                  max_soc_percent: str, valid_until: int, nonce: int) -> Mandate:
    return Mandate(participant=participant, max_buy_price=price_units(max_buy_price, "highest buy price"),
                   min_sell_price=price_units(min_sell_price, "lowest sell price"),
                   min_soc_ppm=percent_ppm(min_soc_percent, "lowest state of charge"),
                   max_soc_ppm=percent_ppm(max_soc_percent, "highest state of charge"),
                   valid_until=valid_until, nonce=nonce)


# -- submitting ---------------------------------------------------------------------


class Rejected(InputError):
    """The server refused the signed message; the message is the server's reason."""

    status: int = 400


def post_signed(url: str, kind: str, body: bytes) -> dict:
    """POSTs a signed order or mandate to a GridLedger server; the server's JSON answer.

    Raises Rejected with the server's reason on a 4xx answer, InputError if the server
    cannot be reached or answers something that is not GridLedger's API."""
    return call_api(url, f"/api/{kind}s", kind, body=body)


def call_api(url: str, path: str, what: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = SUBMIT_TIMEOUT_SECONDS) -> dict:
    """GETs (or with `body`, POSTs JSON to) `path` of the GridLedger server at `url`.

    Rejected with the server's reason on a 4xx answer (its HTTP status in `.status`),
    InputError if the server cannot be reached or does not answer GridLedger's JSON."""
    endpoint = f"{url.rstrip('/')}{path}"
    request = urllib.request.Request(endpoint, data=body, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"}
                                     | (headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _json_answer(response.read(), endpoint)
    except urllib.error.HTTPError as exc:
        answer = _json_answer(exc.read(), endpoint, exc.code)
        if 400 <= exc.code < 500:
            rejected = Rejected(f"{what} rejected by {url}: {answer.get('error', answer)}")
            rejected.status = exc.code
            raise rejected from exc
        raise InputError(f"{endpoint} failed ({exc.code}): {answer.get('error', answer)}; try again later") from exc
    except urllib.error.URLError as exc:
        raise InputError(f"cannot reach {endpoint}: {exc.reason}; is `gridledger serve` running there?") from exc


def _json_answer(raw: bytes, endpoint: str, status: int = 200) -> dict:
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        raise InputError(f"{endpoint} answered {status} with something that is not GridLedger's JSON API; check --url")
    return answer


# -- command line -------------------------------------------------------------------


def add_order_commands(subparsers: argparse._SubParsersAction) -> None:
    """Registers ``order sign|submit`` and ``mandate sign|submit`` on the CLI's subcommands."""
    order = subparsers.add_parser(
        "order",
        help="sign a participant's order for one interval, or submit a signed one",
        description="An order is a participant's signed intent for one interval: buy or sell up to an energy at "
        "no worse than a limit price. It is EIP-712 typed data bound to one chain and one market contract, signed "
        "by the key that owns the participant. The password is read from GRIDLEDGER_PASSWORD if set, otherwise "
        "asked for on the terminal.",
        epilog="Example: gridledger order sign --account 0xYOU --participant 3 --side buy --energy-kwh 1.5 "
        "--limit-price 0.25 --interval 1234 --chain-id 31337 --market 0xMARKET > order.json && "
        "gridledger order submit order.json",
    )
    actions = order.add_subparsers(title="order commands", metavar="ACTION", required=True)
    sign = actions.add_parser("sign", help="sign an order and print it as JSON",
                              description="Signs an order with a keystore key and prints the signed JSON, ready "
                              "for `gridledger order submit`, POST /api/orders or the web UI's order form.")
    _add_signer_options(sign)
    sign.add_argument("--side", required=True, choices=sorted(SIDES), help="buy or sell")
    sign.add_argument("--energy-kwh", required=True, metavar="KWH", help="most energy to trade, in kWh (at most 3 decimals)")
    sign.add_argument("--limit-price", required=True, metavar="PRICE",
                      help="per kWh in the market's currency: the most a buyer pays, the least a seller accepts")
    sign.add_argument("--interval", required=True, type=int, metavar="K", help="the interval number it is for")
    _add_validity_options(sign, "--expiry", "the order")
    sign.set_defaults(run=cmd_order_sign)
    submit = actions.add_parser("submit", help="send a signed order to a GridLedger server",
                                description="POSTs a signed order (the output of `gridledger order sign`) to "
                                "URL/api/orders. Prints the order id once the server has stored it; exits with "
                                "status 1 and the server's reason if it refuses the order.")
    _add_submit_options(submit)
    submit.set_defaults(run=cmd_submit, kind="order")
    listing = actions.add_parser(
        "list", help="list your participant's orders (the server shows them to their owner only)",
        description="Signs a ReadRequest (EIP-712, valid for 5 minutes, moves nothing) with the participant's "
        "owner key and asks the server for that participant's orders. Nobody else's orders are shown: in an "
        "auction pending bids stay private until the interval is settled.",
        epilog="Example: gridledger order list --keystore ~/.gridledger/keystore --account 0xYOU --server "
        "http://127.0.0.1:5000",
    )
    add_key_options(listing, what="the participant's owner")
    listing.add_argument("--participant", type=int, metavar="ID",
                         help="the participant id (default: the one the account owns, looked up on the server)")
    listing.add_argument("--interval", type=int, metavar="K", help="only orders for this interval")
    listing.add_argument("--server", "--url", dest="url", default=DEFAULT_URL, metavar="URL",
                         help="the GridLedger web UI (default: %(default)s)")
    listing.add_argument("--json", action="store_true", help="print the server's JSON answer")
    listing.set_defaults(run=cmd_order_list)

    mandate = subparsers.add_parser(
        "mandate",
        help="sign a participant's standing mandate, or submit a signed one",
        description="A mandate lets the oracle trade for a participant and run their battery within bounds (the "
        "highest price they pay, the lowest they sell at, the battery's state of charge) until it expires or is "
        "revoked. Signed like an order, by the participant's owner key.",
    )
    actions = mandate.add_subparsers(title="mandate commands", metavar="ACTION", required=True)
    sign = actions.add_parser("sign", help="sign a mandate and print it as JSON")
    _add_signer_options(sign)
    sign.add_argument("--max-buy-price", required=True, metavar="PRICE", help="most paid per kWh, in the currency")
    sign.add_argument("--min-sell-price", required=True, metavar="PRICE", help="least accepted per kWh, in the currency")
    sign.add_argument("--min-soc", default="0", metavar="PERCENT", help="lowest battery state of charge (default: %(default)s)")
    sign.add_argument("--max-soc", default="100", metavar="PERCENT", help="highest battery state of charge (default: %(default)s)")
    _add_validity_options(sign, "--valid-until", "the mandate")
    sign.set_defaults(run=cmd_mandate_sign)
    submit = actions.add_parser("submit", help="send a signed mandate to a GridLedger server",
                                description="POSTs a signed mandate to URL/api/mandates; exits with status 1 and "
                                "the server's reason if it refuses it.")
    _add_submit_options(submit)
    submit.set_defaults(run=cmd_submit, kind="mandate")


def _add_signer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keystore", type=Path, help=f"keystore directory (default: ${KEYSTORE_ENV} or {DEFAULT_KEYSTORE})")
    p.add_argument("--account", required=True, metavar="ADDR", help="the participant's owner address (its key signs)")
    p.add_argument("--participant", required=True, type=int, metavar="ID", help="the participant id in the market")
    p.add_argument("--chain-id", required=True, type=int, metavar="C", help="chain id of the market (see `gridledger status`)")
    p.add_argument("--market", required=True, metavar="ADDR", help="the market contract's address")
    p.add_argument("--nonce", type=int, metavar="N", help="single-use number (default: the current time in milliseconds)")


def _add_validity_options(p: argparse.ArgumentParser, flag: str, what: str) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(flag, metavar="ISO", help=f"when {what} expires (inclusive), e.g. 2026-06-01T12:00:00Z; "
                       "without a zone, UTC")
    group.add_argument("--valid-for", type=float, metavar="MINUTES",
                       help=f"{what} expires this many minutes from now (default: {DEFAULT_VALID_FOR_MINUTES})")


def _add_submit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the signed JSON, or - for standard input")
    p.add_argument("--url", default=DEFAULT_URL, help="the GridLedger web UI (default: %(default)s)")


def _unlock(args: argparse.Namespace):
    keystore = Keystore(args.keystore)
    keystore.find(args.account)  # a missing key is reported before the password is asked for
    return keystore.unlock(args.account, read_password(prompt=f"Password of {args.account}: "))


def add_key_options(p: argparse.ArgumentParser, what: str) -> None:
    """--keystore (a directory or one keystore file) and --account: the key that signs."""
    p.add_argument("--keystore", type=Path, metavar="PATH",
                   help=f"a keystore directory, or one v3 keystore file (default: ${KEYSTORE_ENV} or {DEFAULT_KEYSTORE})")
    p.add_argument("--account", metavar="ADDR",
                   help=f"address of {what} (optional when --keystore is a single file)")


def find_key(keystore: Path | None, account: str | None) -> tuple[Keystore, str]:
    """(keystore, address) of the key that signs: `account` in a keystore directory, or
    the one key of a single keystore file. Needs no password."""
    if keystore is not None and keystore.is_file():
        store = Keystore(keystore.parent)
        found = next((k for k in store.list() if k.path.resolve() == keystore.resolve()), None)
        if found is None:
            raise InputError(f"{keystore} is not a v3 keystore file with an address; see `gridledger account import`")
        if account is not None and found.address.lower() != account.lower():
            raise InputError(f"{keystore} holds the key of {found.address}, not {account}")
        return store, found.address
    store = Keystore(keystore)
    if account is None:
        raise InputError(f"give --account: which key of {store.directory} signs (see `gridledger account list`)")
    return store, store.find(account).address


def unlock_account(keystore: Path | None, account: str | None) -> LocalAccount:
    """The key `find_key` finds, decrypted; the password from GRIDLEDGER_PASSWORD or the
    terminal, asked for only once the key is found."""
    store, address = find_key(keystore, account)
    return store.unlock(address, read_password(prompt=f"Password of {address}: "))


def read_headers(signed: SignedReadRequest) -> dict[str, str]:
    """The HTTP headers that carry a signed read request (see webui/orders.py)."""
    r = signed.read_request
    return {"X-Read-Participant": str(r.participant), "X-Read-Issued-At": str(r.issued_at),
            "X-Read-Signature": "0x" + signed.signature.hex()}


def server_domain(url: str) -> Domain:
    """The EIP-712 domain of the market a server serves (its public summary)."""
    meta = call_api(url, "/api/summary", "summary").get("meta", {})
    if "chain_id" not in meta or "market" not in meta:
        raise InputError(f"{url} serves no deployed market yet (no chain id and market address)")
    return Domain(int(meta["chain_id"]), meta["market"])


def owned_participant(url: str, owner: str) -> int:
    """The participant id `owner` owns, from the server's public participant list."""
    for p in call_api(url, "/api/participants", "participants").get("participants", []):
        if str(p.get("owner", "")).lower() == owner.lower():
            return int(p["id"])
    raise InputError(f"{owner} owns no participant of the market at {url}; give --participant, or check --account")


def list_orders(url: str, account: LocalAccount, participant: int | None = None, interval: int | None = None,
                now: int | None = None) -> dict:
    """The server's answer to GET /api/orders with a read request signed by `account`."""
    domain = server_domain(url)
    if participant is None:
        participant = owned_participant(url, account.address)
    signed = sign_read_request(account, domain, ReadRequest(participant, int(time.time()) if now is None else now))
    query = "" if interval is None else "?" + urlencode({"interval": interval})
    return call_api(url, "/api/orders" + query, "read request", headers=read_headers(signed))


def cmd_order_list(args: argparse.Namespace) -> int:
    account = unlock_account(args.keystore, args.account)
    try:
        answer = list_orders(args.url, account, args.participant, args.interval)
    except Rejected as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    orders = answer.get("orders", [])
    where = f" for interval {args.interval}" if args.interval is not None else ""
    if not orders:
        print(f"participant {answer['participant']} has no orders{where}")
        return 0
    print(f"{'id':>6} {'interval':>9} {'side':<4} {'kWh':>10} {'limit/kWh':>10} {'expires (UTC)':<20} {'nonce':>14}  state")
    for o in orders:
        order = Order.from_values(o["order"])
        expiry = datetime.fromtimestamp(order.expiry, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        price = Decimal(order.limit_price) / UNITS_PER_TOKEN
        print(f"{o['id']:>6} {order.interval:>9} {'buy' if order.side == BUY else 'sell':<4} "
              f"{Decimal(order.energy_wh) / 1000:>10.3f} {price.normalize():>10f} {expiry:<20} {order.nonce:>14}  "
              f"{'expired' if o.get('expired') else 'open'}")
    print(f"{len(orders)} order(s) of participant {answer['participant']}{where}; next open interval "
          f"{answer.get('next_interval')}")
    return 0


def cmd_order_sign(args: argparse.Namespace) -> int:
    domain = Domain(args.chain_id, args.market)
    expiry = until(args.expiry, args.valid_for, int(time.time()), "expiry")
    order = build_order(args.participant, args.side, args.energy_kwh, args.limit_price, args.interval, expiry,
                        fresh_nonce() if args.nonce is None else args.nonce)
    print(json.dumps(sign_order(_unlock(args), domain, order).to_json()))
    return 0


def cmd_mandate_sign(args: argparse.Namespace) -> int:
    domain = Domain(args.chain_id, args.market)
    valid_until = until(args.valid_until, args.valid_for, int(time.time()), "validUntil")
    mandate = build_mandate(args.participant, args.max_buy_price, args.min_sell_price, args.min_soc, args.max_soc,
                            valid_until, fresh_nonce() if args.nonce is None else args.nonce)
    print(json.dumps(sign_mandate(_unlock(args), domain, mandate).to_json()))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else read_text(Path(args.file))
    # Parsed here only to catch a wrong or damaged file before the network; the server
    # checks everything again and is the one that decides.
    (SignedOrder if args.kind == "order" else SignedMandate).from_json(text)
    try:
        answer = post_signed(args.url, args.kind, text.encode())
    except Rejected as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 1
    if args.kind == "order":
        print(f"order {answer['id']} accepted for interval {answer['interval']}")
    else:
        print(f"mandate {answer['nonce']} of participant {answer['participant']} accepted")
    return 0


