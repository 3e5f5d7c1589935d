"""``gridledger status|balances|trades|audit|index``: read and check the ledger.

`status`, `balances` and `trades` read only a state directory's index (SQLite), so
they answer at once; `audit` and `index` read the chain.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from node.cli.common import (
    add_chain_options, add_key_options, add_state_option, find_key, load_deployment, open_chain, open_index,
    unlock_account,
)
from node.errors import GridLedgerError, InputError


def add_commands(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="what is settled, on which chain and market")
    add_state_option(status)
    status.set_defaults(run=cmd_status)

    balances = commands.add_parser("balances", help="wallet balance of every participant")
    add_state_option(balances)
    balances.set_defaults(run=cmd_balances)

    trades = commands.add_parser("trades", help="settled energy and payments, per interval and participant")
    add_state_option(trades)
    trades.add_argument("--participant", type=int, help="only this participant id")
    trades.add_argument("--interval", type=int, help="only this interval")
    trades.add_argument("--limit", type=int, default=50, help="at most this many rows (default: %(default)s)")
    trades.set_defaults(run=cmd_trades)

    audit = commands.add_parser(
        "audit",
        help="re-check every settlement from the chain and the committed inputs",
        description="Reads every settlement from the chain (in narrow block ranges), fetches each interval's "
        "inputs by the hash the settlement committed to, re-runs the clearing and checks conservation, capacity, "
        "prices, authorisations and that the settled numbers equal the re-run. Prints a verdict per interval and "
        "exits with status 1 if any interval fails.",
    )
    add_state_option(audit, help="state directory with the deployment record (and, on the embedded chain, the chain itself)")
    audit.add_argument("--rpc", metavar="URL", help="JSON-RPC node of the market (default: the embedded chain in --state)")
    audit.add_argument("--retry-for", type=float, default=300, metavar="SECONDS", help=argparse.SUPPRESS)
    audit.add_argument("--inputs", metavar="DIR_OR_URL", help="where to fetch inputs by hash: an inputs store "
                       "directory (a mirror `gridledger inputs export` wrote), an index file, or the URL of a GridLedger "
                       "web UI serving /api/inputs/<hash> (default: the inputs store in --state)")
    audit.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    audit.add_argument("--workers", type=int, metavar="N", help="re-run the clearings in N local worker processes "
                       "(default: one per CPU; 1 runs them in this process)")
    audit.add_argument("--cluster", metavar="ADDRESS", help="re-run the clearings on the Dask cluster whose scheduler "
                       "is at ADDRESS (its workers need GridLedger and the --inputs store directory, index file or URL)")
    audit.add_argument("--no-progress", action="store_true", help="no progress bar")
    audit.add_argument("--dispute", action="store_true", help="dispute each failed interval on chain with a published "
                       "meter reading that contradicts its settlement, if the chain takes it (see `gridledger dispute`); "
                       "the key of --keystore/--account pays the gas and gets the rewards")
    add_key_options(audit, "the disputer, with --dispute")
    audit.set_defaults(run=cmd_audit)

    index = commands.add_parser("index", help="rebuild the local index from the chain, or check it equals the chain")
    index_commands = index.add_subparsers(title="index commands", metavar="COMMAND", required=True)
    rebuild = index_commands.add_parser(
        "rebuild",
        help="rebuild STATE/index.sqlite from the chain's events",
        description="Reads the market's events from its deployment block on, in narrow block ranges, into "
        "STATE/index.rebuild.sqlite (interrupt it and run it again to resume), records each settled interval's "
        "committed inputs from the inputs store STATE/inputs (the chain holds only their hashes), copies the baseline "
        "from the old index if it is readable, checks the result against the chain and only then puts it in place "
        "of STATE/index.sqlite, keeping the old one as index.sqlite.old. Stop the oracle and the web UI of STATE "
        "first.",
    )
    add_state_option(rebuild)
    add_chain_options(rebuild)
    rebuild.add_argument("--chunk-blocks", type=int, default=500, help="blocks per eth_getLogs call (default: %(default)s)")
    rebuild.set_defaults(run=cmd_index_rebuild)
    check = index_commands.add_parser(
        "check",
        help="compare every row of the index with the chain",
        description="Compares every indexed participant, interval, settlement entry and wallet event with the "
        "chain's events, every balance with the chain's, and every committed input with its on-chain hash. "
        "Prints each difference and exits with status 1 if there is any.",
    )
    add_state_option(check)
    add_chain_options(check)
    check.add_argument("--chunk-blocks", type=int, default=500, help="blocks per eth_getLogs call (default: %(default)s)")
    check.set_defaults(run=cmd_index_check)


def cmd_status(args: argparse.Namespace) -> int:
    index = open_index(args.state)
    meta, summary = index.meta(), index.summary()
    print(f"chain:        {meta.get('chain', '?')} (id {meta.get('chain_id', '?')})")
    print(f"market:       {meta.get('market', '?')}  token {meta.get('token', '?')}")
    print(f"participants: {summary['participants']} (+ the grid)")
    last = summary["last_interval"]
    print(f"settled:      {summary['intervals']} intervals" + (f", last {last}" if last is not None else ""))
    print(f"gas used:     {summary['gas_used']:,}")
    reversals = index.reversals()
    if reversals:
        listed = ", ".join(str(r["interval"]) for r in reversals[-5:]) + (", ..." if len(reversals) > 5 else "")
        n = len(reversals)
        print(f"disputes:     {n} settlement{'' if n == 1 else 's'} reversed (interval{'' if n == 1 else 's'} {listed})")
    if (open_ := index.open_reversal()) is not None:
        print(f"reversal:     interval {open_['interval']} open, {open_['reversed']} of {open_['chunks']} chunks taken back: "
              "settlements and withdrawals wait (`gridledger dispute --finish`)")
    return 0


def cmd_balances(args: argparse.Namespace) -> int:
    from node.units import UNITS_PER_TOKEN

    index = open_index(args.state)
    currency = index.meta().get("currency", "")
    print(f"{'id':>4}  {'name':<12} {'owner':<42} {'balance':>14}")
    for p in index.participants():
        print(f"{p['id']:>4}  {p['name']:<12} {p['owner']:<42} {p['balance'] / UNITS_PER_TOKEN:>10.4f} {currency}")
    return 0


def cmd_trades(args: argparse.Namespace) -> int:
    from node.units import UNITS_PER_TOKEN

    index = open_index(args.state)
    if args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    if args.interval is not None:
        found = index.interval(args.interval)
        if found is None:
            raise InputError(f"interval {args.interval} is not settled in {args.state}")
        rows = [e | {"interval": args.interval} for e in found["entries"]]
    elif args.participant is not None:
        if index.participant(args.participant) is None:
            raise InputError(f"no participant {args.participant} in {args.state}")
        rows = index.participant_history(args.participant)
        rows = [r | {"participant": args.participant} for r in rows]
    else:
        rows = []
        for interval in index.intervals(limit=args.limit):
            rows += [e | {"interval": interval["interval"]} for e in index.interval(interval["interval"])["entries"]]
    print(f"{'interval':>8} {'participant':>11} {'grid kWh':>10} {'P2P kWh':>10} {'amount':>12}")
    for r in rows[: args.limit]:
        print(f"{r['interval']:>8} {r['participant']:>11} {r['grid_wh'] / 1000:>10.3f} {r['p2p_wh'] / 1000:>10.3f} "
              f"{r['amount'] / UNITS_PER_TOKEN:>12.6f}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.audit.verify import HttpInputs, IndexInputs, StoreInputs, audit, report, to_json
    from node.chain.market import Market
    from node.clearing.readings_store import READINGS_DIR, ReadingsStore
    from node.clearing.store import InputsStore
    from node.index.store import Index

    if args.inputs and args.inputs.startswith(("http://", "https://")):
        source = HttpInputs(args.inputs)
    elif args.inputs and Path(args.inputs).is_dir():
        source = StoreInputs(InputsStore(Path(args.inputs)), readings_store=ReadingsStore(Path(args.inputs) / READINGS_DIR))
    elif args.inputs:
        source = IndexInputs(Index(Path(args.inputs)))
    else:
        # Inputs from the store, meter readings from the index (node.audit.verify).
        source = StoreInputs(InputsStore(args.state / "inputs"), open_index(args.state))
    from node.audit.parallel import AT_LEAST, reruns_on
    from node.parallel import workers

    if args.workers is not None and args.cluster:
        raise InputError("give --workers or --cluster, not both")
    if args.dispute:
        find_key(args.keystore, args.account)  # a missing key is said before the audit, not after
    with open_chain(args) as chain, logging_redirect_tqdm(), workers(args.workers, args.cluster) as pool:
        deployment = load_deployment(args.state, chain)
        head = chain.w3.eth.block_number
        reruns = reruns_on(pool, at_least=0 if args.cluster else AT_LEAST)
        market = Market(chain, deployment)
        verdicts = audit(market, source, progress=not args.no_progress, reruns=reruns)
        if args.dispute and any(not v.ok for v in verdicts):
            from node.cli.disputes import dispute_failed

            for line in dispute_failed(market, source.readings, verdicts, unlock_account(args.keystore, args.account)):
                print(line, file=sys.stderr)
    open_index(args.state).store_audit(verdicts, head)
    print(to_json(verdicts) if args.json else report(verdicts))
    failed = [v for v in verdicts if not v.ok]
    print(f"{len(verdicts)} intervals audited: {len(verdicts) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_index_rebuild(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.index.store import Index
    from node.chain.market import Market
    from node.index.rebuild import check_index, rebuild_index

    from node.index.store import IndexDamaged
    from node.simulation.state import StatePaths, read_description

    paths = StatePaths(args.state)
    current, target = paths.index, args.state / "index.rebuild.sqlite"
    old = None
    if current.exists():
        try:
            old = Index(current)
        except IndexDamaged as exc:
            print(f"warning: {exc.args[0].split(': rebuild')[0]}: rebuilding without it (the chain, the inputs store "
                  f"and {paths.description.name} hold everything but the baseline, which the next `simulate` "
                  "computes again)", file=sys.stderr)
    with open_chain(args) as chain, logging_redirect_tqdm():
        market = Market(chain, load_deployment(args.state, chain))
        rebuilt = rebuild_index(market, target, inputs_from=old, progress=not args.no_progress,
                                chunk_blocks=args.chunk_blocks, description=read_description(paths))
        differences = check_index(market, rebuilt, args.chunk_blocks)
    last_block = rebuilt.last_block
    rebuilt.close()
    if old is not None:
        old.close()
    wrong = [d for d in differences if not d.startswith("inputs:")]
    if wrong:
        print("\n".join(wrong), file=sys.stderr)
        raise GridLedgerError(f"the rebuilt index differs from the chain in {len(wrong)} place(s); "
                              f"{current} was left as it was, the rebuild is in {target}")
    if current.exists():
        os.replace(current, current.with_name("index.sqlite.old"))
    os.replace(target, current)
    for line in differences:
        print(f"warning: {line}", file=sys.stderr)
    print(f"rebuilt {current} from {chain.description} up to block {last_block}"
          + (f"; {len(differences)} interval(s) have no committed inputs" if differences else ""))
    return 0


def cmd_index_check(args: argparse.Namespace) -> int:
    from node.chain.market import Market
    from node.index.rebuild import check_index

    index = open_index(args.state)
    with open_chain(args) as chain:
        differences = check_index(Market(chain, load_deployment(args.state, chain)), index, args.chunk_blocks)
    for line in differences:
        print(line)
    if differences:
        print(f"the index differs from the chain in {len(differences)} place(s): run `gridledger index rebuild "
              f"--state {args.state}`", file=sys.stderr)
        return 1
    print(f"the index equals the chain ({index.last_block + 1} blocks, {index.summary()['intervals']} intervals)")
    return 0
