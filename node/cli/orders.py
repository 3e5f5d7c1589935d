"""``gridledger order|mandate sign|submit``, ``gridledger order list``: a participant's
signed intent, from the terminal.

Signing happens here, with the participant's key from their keystore; submitting is
a plain HTTP POST of the signed JSON to a GridLedger server (``/api/orders``,
``/api/mandates``), which checks the signature again before it stores anything.
The two steps are separate so a key never has to be on the machine that serves the
market: sign on a laptop, carry the JSON, submit from anywhere. Listing signs a
short-lived ReadRequest with the same key: the server shows a participant's pending
orders to its owner only.

People's units become the chain's integers in node.intent.amounts, exactly or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from node.cli.common import add_key_options, read_password, unlock_account
from node.intent.amounts import DEFAULT_VALID_FOR_MINUTES, SIDES, build_mandate, build_order, fresh_nonce, unix_time, until
from node.intent.client import DEFAULT_URL, Rejected, list_orders, post_signed
from node.intent.keys import DEFAULT_KEYSTORE, KEYSTORE_ENV, Keystore, read_text
from node.units import BUY, UNITS_PER_TOKEN

def add_commands(subparsers: argparse._SubParsersAction) -> None:
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
    sign.add_argument("--max-energy", metavar="KWH", help="most energy bought or sold per interval (default: no "
                      "bound beyond what the meter signs)")
    sign.add_argument("--valid-from", metavar="ISO", help="first moment the mandate covers (an interval must lie "
                      "wholly within the validity), e.g. 2026-06-01T00:00:00Z (default: no lower bound)")
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


def cmd_order_list(args: argparse.Namespace) -> int:
    from node.intent.signing import Order

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
    from node.intent.signing import Domain, sign_order

    domain = Domain(args.chain_id, args.market)
    expiry = until(args.expiry, args.valid_for, int(time.time()), "expiry")
    order = build_order(args.participant, args.side, args.energy_kwh, args.limit_price, args.interval, expiry,
                        fresh_nonce() if args.nonce is None else args.nonce)
    print(json.dumps(sign_order(_unlock(args), domain, order).to_json()))
    return 0


def cmd_mandate_sign(args: argparse.Namespace) -> int:
    from node.intent.signing import Domain, sign_mandate

    domain = Domain(args.chain_id, args.market)
    valid_until = until(args.valid_until, args.valid_for, int(time.time()), "validUntil")
    valid_from = 0 if args.valid_from is None else unix_time(args.valid_from, "validFrom")
    mandate = build_mandate(args.participant, args.max_buy_price, args.min_sell_price, args.min_soc, args.max_soc,
                            valid_until, fresh_nonce() if args.nonce is None else args.nonce, valid_from,
                            args.max_energy)
    print(json.dumps(sign_mandate(_unlock(args), domain, mandate).to_json()))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from node.intent.signing import SignedMandate, SignedOrder

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


