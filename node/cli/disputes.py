"""`gridledger dispute`: prove a settlement wrong on chain with a meter-signed reading.

A settlement stands only if nobody disputes it within its dispute window. Anyone holding
a reading the participant's meter key signed (the participant, the auditor, a neighbour)
may send it: the contract checks the signature against the meter key registered on
chain, compares the reading with the settled entry (or shows the participant was left
out), reverses the interval chunk by chunk and pays the sender the dispute reward from
the oracle's bond. Nothing here is trusted by the contract; this command only finds the
interval's chunks in the chain's logs and the reading where the oracle published it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

from node.cli.common import (
    add_chain_options, add_key_options, add_state_option, find_key, load_deployment, open_chain, open_index,
    unlock_account,
)
from node.errors import InputError

# Who a dry run without a key simulates the dispute from on a chain whose operators we do
# not know (at gas price 0: geth and anvil take that in eth_call). Anyone may dispute.
ANYONE = "0x000000000000000000000000000000000000dEaD"


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "dispute",
        help="prove a settlement wrong with a meter-signed reading (anyone may), or finish an open reversal",
        description="Disputes settled INTERVAL with the meter-signed reading of one participant: the contract "
        "checks the meter's signature, that the reading contradicts the settled entry (or that the participant "
        "was left out although it had to be settled), reverses the whole interval chunk by chunk and pays the "
        "sender the dispute reward from the oracle's bond; the oracle may then settle the interval again. "
        "Only within the interval's dispute window. The sender pays the gas. With --finish, reverses what a "
        "dispute left open (settlements and withdrawals wait for it; anyone may finish it).",
        epilog="Examples: `gridledger dispute 41 --participant 7 --dry-run`; "
        "`gridledger dispute 41 --reading reading.json --keystore me.json`; "
        "`gridledger dispute --finish --keystore me.json`.",
    )
    p.add_argument("interval", type=int, nargs="?", metavar="INTERVAL", help="the settled interval to dispute")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--reading", type=Path, metavar="FILE",
                        help='the meter-signed reading, a JSON file {"reading": {"participant", "interval", '
                        '"importWh", "exportWh"}, "signature": "0x..."} (the form /api/readings/<interval> lists)')
    source.add_argument("--participant", type=int, metavar="ID",
                        help="take this participant's reading of INTERVAL from the readings the oracle received "
                        "(the index of --state, or --inputs)")
    p.add_argument("--inputs", metavar="INDEX_OR_URL",
                   help="with --participant: an index file, or the URL of a GridLedger web UI serving "
                   "/api/readings/<interval> (default: the index in --state)")
    p.add_argument("--finish", action="store_true", help="finish the reversal a dispute left open")
    p.add_argument("--dry-run", action="store_true",
                   help="say what the settlement and the reading say and whether the chain would accept the "
                   "dispute now, and send nothing (no key needed)")
    add_state_option(p, help="state directory with the deployment record (and, on the embedded chain, the chain itself)")
    add_chain_options(p)
    add_key_options(p, "the disputer (pays the gas, receives the reward)")
    p.set_defaults(run=cmd_dispute)


def cmd_dispute(args: argparse.Namespace) -> int:
    from node.chain.market import Market

    if args.finish == (args.interval is not None):
        raise InputError("give the INTERVAL to dispute, or --finish to finish an open reversal")
    signed = None if args.finish else _reading(args)
    if not (args.dry_run or args.finish):
        find_key(args.keystore, args.account)  # which key sends is said before anything is read
    with open_chain(args) as chain:
        market = Market(chain, load_deployment(args.state, chain))
        if args.finish:
            return _finish(args, market)
        k = args.interval
        pending = market.pending()
        if pending.open and pending.interval == k:
            raise InputError(f"interval {k} is being settled in chunks ({pending.phase}): dispute it once it is "
                             "settled, or with the chunks its verify transactions carried (Market.dispute)")
        chunks = market.settled_chunks(k)
        if not chunks:
            raise InputError(f"interval {k} is not settled on market {market.deployment.market} (or a dispute "
                             "already reversed it and it is not settled again)")
        print(_compare(chunks, signed))
        call, gas = market.dispute_call(k, chunks, signed)
        # Always tried first: a dispute the contract refuses would still cost its gas.
        who = _simulated_sender(args, chain)
        refusal = chain.dry_run(call, SimpleNamespace(address=who), gas, unpaid=who == ANYONE)
        if refusal is not None:
            print(f"the chain would refuse it: {refusal}" + ("" if args.dry_run else "; nothing sent"))
            return 1
        if args.dry_run:
            print("the chain would accept this dispute now")
            return 0
        receipt = market.dispute(k, chunks, signed, unlock_account(args.keystore, args.account))
    _report(receipt)
    return 0


def _simulated_sender(args: argparse.Namespace, chain) -> str:
    """The disputer's address if a key is given; else one that can pay for gas (the
    contract does the same whoever sends a dispute): an operator's on a chain we run
    (eth-tester refuses eth_call from an account without ether), else ANYONE."""
    if args.keystore or args.account:
        return find_key(args.keystore, args.account)[1]
    return chain.operators.admin.address if chain.operators is not None else ANYONE


def _reading(args: argparse.Namespace):
    """The signed reading of --reading or --participant, checked to be of INTERVAL."""
    from node.intent.signing import SignedReading

    if args.reading is None and args.participant is None:
        raise InputError("give the reading to dispute with: --reading FILE, or --participant ID")
    if args.reading is not None:
        try:
            signed = SignedReading.from_json(args.reading.read_text())
        except OSError as exc:
            raise InputError(f"cannot read {args.reading}: {exc.strerror}") from exc
    else:
        found = [r for r in _published_readings(args) if r.reading.participant == args.participant]
        if not found:
            raise InputError(f"no reading of participant {args.participant} in interval {args.interval} is kept "
                             f"{'at ' + args.inputs if args.inputs else 'in ' + str(args.state)}; pass its meter's "
                             "signed reading with --reading FILE")
        signed = found[0]
    if signed.reading.interval != args.interval:
        raise InputError(f"the reading is of interval {signed.reading.interval}, not {args.interval}")
    return signed


def _published_readings(args: argparse.Namespace) -> list:
    from node.audit.sources import HttpInputs
    from node.index.store import Index

    if args.inputs and args.inputs.startswith(("http://", "https://")):
        return HttpInputs(args.inputs).readings(args.interval) or []
    if args.inputs and not Path(args.inputs).is_file():
        raise InputError(f"--inputs {args.inputs}: no such index file (or give a web UI's http(s) URL)")
    index = Index(Path(args.inputs)) if args.inputs else open_index(args.state)
    try:
        return index.readings(args.interval)
    finally:
        index.close()


def _compare(chunks: list[list[int]], signed) -> str:
    """What the settlement and the reading say of the participant, in one line."""
    from node.chain.settlement import decode_entry

    r = signed.reading
    read = r.import_wh - r.export_wh
    entries = [decode_entry(w) for chunk in chunks for w in chunk]
    entry = next((e for e in entries if e.participant == r.participant), None)
    head = f"interval {r.interval}, participant {r.participant}: the meter signed {r.import_wh} Wh in, {r.export_wh} Wh out"
    if entry is None:
        return f"{head}; the settlement ({len(entries)} entries in {len(chunks)} chunks) leaves it out"
    settled = "declared left out with" if entry.excluded else "settled"
    return f"{head} (net {read:+d} Wh); the settlement {settled} net {entry.net_wh:+d} Wh"


def contradicting(chunks: list[list[int]], readings) -> list:
    """The readings that contradict the settlement of `chunks`: a settled or declared
    net energy other than the meter's, or a participant left out whose meter read energy."""
    from node.chain.settlement import decode_entry

    settled = {e.participant: e.net_wh for e in (decode_entry(w) for chunk in chunks for w in chunk)}
    found = []
    for signed in readings:
        r = signed.reading
        if r.participant in settled and settled[r.participant] != r.import_wh - r.export_wh:
            found.append(signed)
        elif r.participant not in settled and r.import_wh != r.export_wh:
            found.append(signed)
    return found


def dispute_failed(market, readings_of, verdicts, sender) -> list[str]:
    """For each interval the audit failed, the first published reading that contradicts
    its settlement and that the chain accepts (a dry run first: an interval already final
    or a participant it did not have to settle costs no gas), sent as a dispute by
    `sender`. One line per interval on what was done."""
    lines = []
    for verdict in (v for v in verdicts if not v.ok):
        k = verdict.interval
        chunks = market.settled_chunks(k)
        candidates = contradicting(chunks, readings_of(k) or []) if chunks else []
        refusals = []
        for signed in candidates:
            call, gas = market.dispute_call(k, chunks, signed)
            refusal = market.chain.dry_run(call, sender, gas)
            if refusal is None:
                receipt = market.dispute(k, chunks, signed, sender)
                lines.append(f"interval {k}: disputed with participant {signed.reading.participant}'s reading, "
                             f"reversed ({receipt.gas_used:,} gas, last transaction {receipt.tx_hash})")
                break
            refusals.append(f"participant {signed.reading.participant}: {refusal}")
        else:
            why = "; ".join(refusals) or "no published reading contradicts its settlement"
            lines.append(f"interval {k}: not disputed ({why})")
    return lines


def _finish(args: argparse.Namespace, market) -> int:
    state = market.reversal()
    if not state.open:
        print("no reversal is open: settlements and withdrawals go on")
        return 0
    print(f"interval {state.interval}: {state.left} of {_count(state.chunks, 'chunk')} still to be reversed")
    if args.dry_run:
        return 0
    receipts = market.finish_reversal(unlock_account(args.keystore, args.account))
    print(f"reversed them in {_count(len(receipts), 'transaction')} ({sum(r.gas_used for r in receipts):,} gas); "
          "settlements and withdrawals go on")
    return 0


def _report(receipt) -> None:
    from eth_utils import to_checksum_address

    from node.units import UNITS_PER_TOKEN

    for e in receipt.events:
        if e.name == "IntervalReversed":
            a = e.args
            print(f"interval {a['interval']} reversed for participant {a['participant']}; the reward of "
                  f"{a['reward'] / UNITS_PER_TOKEN:g} tokens went to {to_checksum_address(a['disputer'])}")
    chunks = sum(1 for e in receipt.events if e.name == "ChunkReversed")
    txs = max(len(receipt.parts), 1)
    print(f"{_count(chunks, 'chunk')} taken back in {_count(txs, 'transaction')} ({receipt.gas_used:,} gas); "
          f"last transaction {receipt.tx_hash}")

    print("  the index learns of it when the oracle next reads the chain", file=sys.stderr)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
