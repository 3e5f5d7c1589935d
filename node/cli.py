"""The ``gridledger`` command: thin subcommands over the library.

Every subcommand parses its arguments, calls one library function and prints the
result. A GridLedgerError becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from node.errors import GridLedgerError, InputError

log = logging.getLogger("gridledger")

DEFAULT_PORT = 5000


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose - args.quiet)
    try:
        return args.run(args) or 0
    except GridLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the chain keeps what was settled; run the same command again to resume", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridledger",
        description="GridLedger: a ledger for local energy communities. Households trade energy, an oracle "
        "clears the market each interval with an optimiser and settles it on an EVM chain, and everything "
        "shown can be checked from the chain.",
        epilog="Run `gridledger COMMAND --help` for the options of a command. Quick start: `gridledger demo`.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeat for debug)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="generate a community, settle it on a fresh chain, serve the web UI",
        description="Generates a synthetic community (20 homes, one day of 15-minute intervals by default), "
        "deploys the contracts on the embedded chain (or --rpc), settles every interval with the oracle "
        "and serves the web UI on the result.",
    )
    _add_community_options(demo)
    _add_chain_options(demo)
    _add_state_option(demo, help="state directory, started over on every demo run")
    _add_serve_options(demo)
    demo.add_argument("--no-serve", action="store_true", help="stop after settling instead of serving the UI")
    demo.set_defaults(run=_demo)

    sim = commands.add_parser(
        "simulate",
        help="settle a dataset (CSV/parquet) and write results against the no-trading baseline",
        description="Replays a dataset through the same pipeline as the live oracle: deploy (or resume), clear "
        "and settle every interval, then write intervals.csv, participants.csv, kpis.json and summary.png to "
        "STATE/results. The dataset is a long table with columns timestamp, participant, consumption_kwh, "
        "production_kwh. Without --data a synthetic community is generated from the config.",
    )
    sim.add_argument("--data", type=Path, help="dataset file (.csv or .parquet)")
    _add_community_options(sim)
    _add_chain_options(sim)
    _add_state_option(sim, "state/sim")
    sim.add_argument("--fresh", action="store_true", help="delete the state directory first")
    sim.add_argument("--live", action="store_true", help="settle each interval only after it has ended (wall clock)")
    sim.add_argument("--meter-policy", choices=("strict", "repair"), default="strict",
                     help="bad meter data: strict rejects any gap, NaN or duplicate; repair fills gaps by the rules "
                     "of node/meter_policy.py, lists them in STATE/repairs.csv and commits them with each "
                     "interval's inputs (default: %(default)s)")
    sim.set_defaults(run=_simulate)

    serve = commands.add_parser("serve", help="serve the web UI of a state directory", description="Serves the web UI "
                                "and JSON API over the index of a state directory (it never scans the chain).")
    _add_state_option(serve)
    _add_serve_options(serve)
    serve.add_argument("--rpc", metavar="URL", help="JSON-RPC node the market runs on: enables /admin, which relays "
                       "transactions that role holders signed with their own keys (the server holds no keys)")
    serve.add_argument("--with-chain", action="store_true", help="open the embedded chain of --state in the server, "
                       "for /admin (it holds the chain's journal lock: no oracle may run on this state meanwhile)")
    serve.set_defaults(run=_serve)

    status = commands.add_parser("status", help="what is settled, on which chain and market")
    _add_state_option(status)
    status.set_defaults(run=_status)

    balances = commands.add_parser("balances", help="wallet balance of every participant")
    _add_state_option(balances)
    balances.set_defaults(run=_balances)

    trades = commands.add_parser("trades", help="settled energy and payments, per interval and participant")
    _add_state_option(trades)
    trades.add_argument("--participant", type=int, help="only this participant id")
    trades.add_argument("--interval", type=int, help="only this interval")
    trades.add_argument("--limit", type=int, default=50, help="at most this many rows (default: %(default)s)")
    trades.set_defaults(run=_trades)

    generate = commands.add_parser("generate", help="write a synthetic community dataset to a file",
                                   description="Writes the seeded synthetic community of the config as a dataset "
                                   "file that `simulate --data` reads.")
    _add_community_options(generate)
    generate.add_argument("--out", type=Path, required=True, help="output file (.csv or .parquet)")
    generate.set_defaults(run=_generate)

    audit = commands.add_parser(
        "audit",
        help="re-check every settlement from the chain and the committed inputs",
        description="Reads every settlement from the chain (in narrow block ranges), fetches each interval's "
        "inputs by the hash the settlement committed to, re-runs the clearing and checks conservation, capacity, "
        "prices, authorisations and that the settled numbers equal the re-run. Prints a verdict per interval and "
        "exits with status 1 if any interval fails.",
    )
    _add_state_option(audit, help="state directory with the deployment record (and, on the embedded chain, the chain itself)")
    audit.add_argument("--rpc", metavar="URL", help="JSON-RPC node of the market (default: the embedded chain in --state)")
    audit.add_argument("--retry-for", type=float, default=300, metavar="SECONDS", help=argparse.SUPPRESS)
    audit.add_argument("--inputs", metavar="INDEX_OR_URL", help="where to fetch inputs by hash: an index file, or the URL "
                       "of a GridLedger web UI serving /api/inputs/<hash> (default: the index in --state)")
    audit.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    audit.add_argument("--no-progress", action="store_true", help="no progress bar")
    audit.set_defaults(run=_audit)

    anvil = commands.add_parser(
        "node",
        help="run a local anvil node with persistent state (an alternative to the embedded chain)",
        description="Starts anvil (from npm @foundry-rs/anvil, installed by `npm install`) with its state saved in "
        "STATE/anvil-state.json and the per-transaction gas cap of EIP-7825 on, and waits until Ctrl+C. Point "
        "other commands at it with --rpc http://127.0.0.1:PORT.",
    )
    _add_state_option(anvil, "state/anvil")
    anvil.add_argument("--port", type=int, default=8545, help="port (default: %(default)s)")
    anvil.add_argument("--no-gas-cap", action="store_true", help="allow transactions above 16,777,216 gas")
    anvil.add_argument("--block-time", type=float, help="mine a block every so many seconds instead of per transaction")
    anvil.set_defaults(run=_node)

    index = commands.add_parser("index", help="rebuild the local index from the chain, or check it equals the chain")
    index_commands = index.add_subparsers(title="index commands", metavar="COMMAND", required=True)
    rebuild = index_commands.add_parser(
        "rebuild",
        help="rebuild STATE/index.sqlite from the chain's events",
        description="Reads the market's events from its deployment block on, in narrow block ranges, into "
        "STATE/index.rebuild.sqlite (interrupt it and run it again to resume), copies the committed inputs and the "
        "baseline from the old index (the chain holds only the inputs' hashes), checks the result against the "
        "chain and only then puts it in place of STATE/index.sqlite, keeping the old one as index.sqlite.old. "
        "Stop the oracle and the web UI of STATE first.",
    )
    _add_state_option(rebuild)
    _add_chain_options(rebuild)
    rebuild.add_argument("--chunk-blocks", type=int, default=500, help="blocks per eth_getLogs call (default: %(default)s)")
    rebuild.set_defaults(run=_index_rebuild)
    check = index_commands.add_parser(
        "check",
        help="compare every row of the index with the chain",
        description="Compares every indexed participant, interval, settlement entry and wallet event with the "
        "chain's events, every balance with the chain's, and every committed input with its on-chain hash. "
        "Prints each difference and exits with status 1 if there is any.",
    )
    _add_state_option(check)
    _add_chain_options(check)
    check.add_argument("--chunk-blocks", type=int, default=500, help="blocks per eth_getLogs call (default: %(default)s)")
    check.set_defaults(run=_index_check)

    from node.keys import add_account_commands

    add_account_commands(commands)

    from node.order_cli import add_order_commands

    add_order_commands(commands)

    from node.admin_cli import add_admin_commands

    add_admin_commands(commands)

    build = commands.add_parser("build", help="compile the contracts (needs Node.js and `npm ci`)")
    build.add_argument("--check", action="store_true", help="only check the committed artifacts match the sources")
    build.set_defaults(run=_build)
    return parser


def _add_state_option(p: argparse.ArgumentParser, default: str = "state/demo", help: str = "state directory") -> None:
    p.add_argument("--state", type=Path, default=Path(default), help=f"{help} (default: %(default)s)")


def _add_community_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="community config file (TOML, see examples/community.toml)")
    p.add_argument("--homes", type=int, help="override community.homes")
    p.add_argument("--days", type=int, help="override community.days")
    p.add_argument("--seed", type=int, help="override community.seed")


def _add_chain_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", metavar="URL", help="JSON-RPC node to use instead of the embedded chain, e.g. "
                   "http://127.0.0.1:8545 (operator keys from GRIDLEDGER_ADMIN_KEY, GRIDLEDGER_ORACLE_KEY, "
                   "GRIDLEDGER_GRID_OPERATOR_KEY; a local anvil/hardhat chain uses its dev keys)")
    p.add_argument("--retry-for", type=float, default=300, metavar="SECONDS",
                   help="with --rpc: how long to wait for a node that went away before giving up (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")


def _configure_logging(level: int) -> None:
    levels = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
    logging.basicConfig(level=levels[max(-2, min(1, level))], format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if level < 1:
        for noisy in ("web3", "urllib3", "eth", "evm", "werkzeug", "cvxpy"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


# -- commands ---------------------------------------------------------------------


def _load_config(args: argparse.Namespace):
    from dataclasses import replace

    from node.config import default_config, load_config

    config = load_config(args.config) if args.config else default_config()
    overrides = {k: v for k in ("homes", "days", "seed") if (v := getattr(args, k)) is not None}
    if overrides:
        try:
            config = replace(config, community=replace(config.community, **overrides))
        except GridLedgerError as exc:
            raise InputError(f"command line: {exc}") from exc
    return config


def _chain(args: argparse.Namespace):
    """The embedded chain kept in the state directory, or the node at --rpc."""
    from node.chain import Chain, Operators

    if not args.rpc:
        return Chain.embedded(args.state)
    keys = [os.environ.get(f"GRIDLEDGER_{role}_KEY") for role in ("ADMIN", "ORACLE", "GRID_OPERATOR")]
    operators = Operators.from_keys(*keys) if all(keys) else None
    return Chain.connect(args.rpc, operators, retry_for=args.retry_for)


def _run(args: argparse.Namespace, community, config, state: Path, repairs=(), chain=None):
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.simulation import StatePaths, simulate

    with (contextlib.nullcontext(chain) if chain is not None else _chain(args)) as chain, logging_redirect_tqdm():
        result = simulate(chain, community, config, StatePaths(state), progress=not args.no_progress,
                          live=getattr(args, "live", False), repairs=repairs)
    k = result.kpis
    print(
        f"settled {k['intervals']} intervals for {k['participants']} homes on {chain.description}\n"
        f"  community cost {k['community_cost']:.2f} vs baseline {k['baseline_cost']:.2f} {config.market.currency}: "
        f"savings {k['savings']:.2f} ({k['savings_percent']:.1f}%)\n"
        f"  grid import {k['grid_import_kwh']:.1f} kWh (baseline {k['baseline_grid_import_kwh']:.1f}), "
        f"export {k['grid_export_kwh']:.1f} kWh (baseline {k['baseline_grid_export_kwh']:.1f}), "
        f"P2P {k['p2p_kwh']:.1f} kWh\n"
        + (f"  batteries hold {k['battery_end_kwh']:.1f} kWh at the end (baseline {k['baseline_battery_end_kwh']:.1f}, "
           f"start {k['battery_start_kwh']:.1f})\n" if "battery_end_kwh" in k else "")
        + f"  results in {state / 'results'}"
    )
    return result


def _demo(args: argparse.Namespace) -> int:
    from node.synthetic import generate_community

    config = _load_config(args)
    if args.state.exists():
        # The demo is a fresh community on a fresh market every time; `simulate` resumes.
        shutil.rmtree(args.state)
    log.info("generating %d homes, %d day(s) of %d-minute intervals (seed %d)", config.community.homes,
             config.community.days, config.market.interval_minutes, config.community.seed)
    with _chain(args) as chain:
        _run(args, generate_community(config), config, args.state, chain=chain)
        if not args.no_serve:
            # The UI relays role holders' signed transactions (/admin) to this chain.
            _serve(args, chain)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from node.dataset import LoadedDataset, load_dataset_with_report
    from node.synthetic import generate_community

    config = _load_config(args)
    # The data is read and judged before anything touches the chain or the state
    # directory, so a rejected file changes nothing.
    if args.data:
        loaded = load_dataset_with_report(args.data, config, args.meter_policy, _registry(args))
    else:
        loaded = LoadedDataset(generate_community(config))
    if args.fresh and args.state.exists():
        shutil.rmtree(args.state)
    if loaded.repairs:
        _write_repairs(loaded.repairs, args.state / "repairs.csv")
        log.warning("repaired %d meter values or rows (%s); listed in %s and committed with each interval's inputs",
                    len(loaded.repairs), ", ".join(sorted({r.rule for r in loaded.repairs})), args.state / "repairs.csv")
    _run(args, loaded.community, config, args.state, loaded.repairs)
    return 0


def _registry(args: argparse.Namespace) -> list[str] | None:
    """The participants a resumed market knows; a fresh market registers whoever the data has."""
    path = args.state / "index.sqlite"
    if args.fresh or not path.exists():
        return None
    from node.index import Index

    index = Index(path)
    try:
        return [p["name"] for p in index.participants() if p["id"] != 0]
    finally:
        index.close()


def _write_repairs(repairs, path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["participant", "timestamp", "column", "rule", "original", "value_kwh", "row"])
        for r in repairs:
            writer.writerow([r.participant, r.timestamp.isoformat(), r.column, r.rule, r.original,
                             "" if r.value_kwh is None else repr(r.value_kwh), "" if r.row is None else r.row])


def _serve(args: argparse.Namespace, chain=None) -> int:
    from webui import create_app

    config = {"INDEX_PATH": str(_index_path(args.state))}
    if chain is not None:
        config["CHAIN"] = chain
    elif getattr(args, "rpc", None):
        config["CHAIN_RPC"] = args.rpc
    elif getattr(args, "with_chain", False):
        config["CHAIN_STATE"] = str(args.state)
    app = create_app(config)
    print(f"GridLedger web UI: http://{args.host}:{args.port}/  (Ctrl+C to stop)", flush=True)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False)
    return 0


def _index_path(state: Path) -> Path:
    path = state / "index.sqlite"
    if not path.exists():
        raise InputError(f"no index at {path}: run `gridledger demo` or `gridledger simulate` first, or pass --state")
    return path


def _open_index(state: Path):
    from node.index import Index

    return Index(_index_path(state))


def _status(args: argparse.Namespace) -> int:
    index = _open_index(args.state)
    meta, summary = index.meta(), index.summary()
    print(f"chain:        {meta.get('chain', '?')} (id {meta.get('chain_id', '?')})")
    print(f"market:       {meta.get('market', '?')}  token {meta.get('token', '?')}")
    print(f"participants: {summary['participants']} (+ the grid)")
    last = summary["last_interval"]
    print(f"settled:      {summary['intervals']} intervals" + (f", last {last}" if last is not None else ""))
    print(f"gas used:     {summary['gas_used']:,}")
    return 0


def _balances(args: argparse.Namespace) -> int:
    from node.settlement import UNITS_PER_TOKEN

    index = _open_index(args.state)
    currency = index.meta().get("currency", "")
    print(f"{'id':>4}  {'name':<12} {'owner':<42} {'balance':>14}")
    for p in index.participants():
        print(f"{p['id']:>4}  {p['name']:<12} {p['owner']:<42} {p['balance'] / UNITS_PER_TOKEN:>10.4f} {currency}")
    return 0


def _trades(args: argparse.Namespace) -> int:
    from node.settlement import UNITS_PER_TOKEN

    index = _open_index(args.state)
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


def _audit(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.audit import HttpInputs, IndexInputs, audit, report, to_json
    from node.index import Index
    from node.market import Deployment, Market

    deployment = Deployment.load(args.state / "deployment.json")
    if args.inputs and args.inputs.startswith(("http://", "https://")):
        source = HttpInputs(args.inputs)
    else:
        source = IndexInputs(Index(Path(args.inputs)) if args.inputs else _open_index(args.state))
    with _chain(args) as chain, logging_redirect_tqdm():
        head = chain.w3.eth.block_number
        verdicts = audit(Market(chain, deployment), source, progress=not args.no_progress)
    _open_index(args.state).store_audit(verdicts, head)
    print(to_json(verdicts) if args.json else report(verdicts))
    failed = [v for v in verdicts if not v.ok]
    print(f"{len(verdicts)} intervals audited: {len(verdicts) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


def _node(args: argparse.Namespace) -> int:
    import time

    from node.anvil import start_anvil

    with start_anvil(args.state / "anvil-state.json", args.port, gas_cap=not args.no_gas_cap, block_time=args.block_time) as anvil:
        print(f"anvil is running at {anvil.url} (state in {args.state}); use it with "
              f"`gridledger simulate --rpc {anvil.url} --state state/on-anvil`. Ctrl+C stops it.", flush=True)
        try:
            while anvil.running:
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopping anvil (its state is saved)", file=sys.stderr)
    return 0


def _index_rebuild(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.index import Index
    from node.market import Deployment, Market
    from node.reindex import check_index, rebuild_index

    deployment = Deployment.load(args.state / "deployment.json")
    current, target = args.state / "index.sqlite", args.state / "index.rebuild.sqlite"
    old = Index(current) if current.exists() else None
    with _chain(args) as chain, logging_redirect_tqdm():
        market = Market(chain, deployment)
        rebuilt = rebuild_index(market, target, inputs_from=old, progress=not args.no_progress,
                                chunk_blocks=args.chunk_blocks)
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


def _index_check(args: argparse.Namespace) -> int:
    from node.market import Deployment, Market
    from node.reindex import check_index

    deployment = Deployment.load(args.state / "deployment.json")
    index = _open_index(args.state)
    with _chain(args) as chain:
        differences = check_index(Market(chain, deployment), index, args.chunk_blocks)
    for line in differences:
        print(line)
    if differences:
        print(f"the index differs from the chain in {len(differences)} place(s): run `gridledger index rebuild "
              f"--state {args.state}`", file=sys.stderr)
        return 1
    print(f"the index equals the chain ({index.last_block + 1} blocks, {index.summary()['intervals']} intervals)")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from node.dataset import save_dataset
    from node.synthetic import generate_community

    community = generate_community(_load_config(args))
    save_dataset(community, args.out)
    print(f"wrote {len(community.homes)} homes x {len(community.timestamps)} intervals to {args.out}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from node.build import compile_contracts, stale_artifacts, write_artifacts

    if args.check:
        stale = stale_artifacts()
        if stale:
            raise GridLedgerError(f"committed artifacts differ from the sources for {', '.join(stale)}: run `gridledger build`")
        print("contract artifacts match the sources")
        return 0
    write_artifacts(compile_contracts())
    print("compiled contracts into contracts/build/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
