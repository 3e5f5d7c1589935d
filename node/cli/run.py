"""``gridledger demo|simulate|serve|generate``: run a community through the market.

`demo` starts its state over on every run; `simulate` resumes where it stopped. Both
judge their input (config, data file, state directory) before anything heavy is
imported or the chain is touched, so a mistake is reported at once and changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

from node.cli.common import (
    add_chain_options,
    add_community_options,
    add_serve_options,
    add_state_option,
    index_path,
    load_config,
    open_chain,
)

log = logging.getLogger("gridledger")

RESUME_HINT = "interrupted: the chain keeps what was settled; run the same command again to resume"
RESTART_HINT = "interrupted: the demo starts over on its next run (use `gridledger simulate` to resume a run)"


def add_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="generate a community, settle it on a fresh chain, serve the web UI",
        description="Generates a synthetic community (20 homes, one day of 15-minute intervals by default), "
        "deploys the contracts on the embedded chain (or --rpc), settles every interval with the oracle "
        "and serves the web UI on the result. The state directory starts over on every run: a demo's own state "
        "is replaced; another run's state only with --fresh; a directory GridLedger did not make is refused.",
    )
    add_community_options(demo)
    add_chain_options(demo)
    add_state_option(demo, help="state directory, started over on every demo run")
    add_serve_options(demo)
    demo.add_argument("--fresh", action="store_true",
                      help="also start over a state directory another command (simulate) made")
    demo.add_argument("--no-serve", action="store_true", help="stop after settling instead of serving the UI")
    demo.set_defaults(run=cmd_demo, interrupted=RESTART_HINT)

    sim = commands.add_parser(
        "simulate",
        help="settle a dataset (CSV/parquet) and write results against the no-trading baseline",
        description="Replays a dataset through the same pipeline as the live oracle: deploy (or resume), clear "
        "and settle every interval, then write intervals.csv, participants.csv, kpis.json and summary.png to "
        "STATE/results. The dataset is a long table with columns timestamp, participant, consumption_kwh, "
        "production_kwh. Without --data a synthetic community is generated from the config. Run it again to "
        "resume where it stopped.",
    )
    sim.add_argument("--data", type=Path, help="dataset file (.csv or .parquet)")
    add_community_options(sim)
    add_chain_options(sim)
    add_state_option(sim, "state/sim")
    sim.add_argument("--fresh", action="store_true",
                     help="start the state directory over (removes only what GridLedger wrote there, and says what)")
    sim.add_argument("--live", action="store_true", help="settle each interval only after it has ended (wall clock)")
    sim.add_argument("--meter-policy", choices=("strict", "repair"), default="strict",
                     help="bad meter data: strict rejects any gap, NaN or duplicate; repair fills gaps by the rules "
                     "of node/data/meter_policy.py, lists them in STATE/repairs.csv and commits them with each "
                     "interval's inputs (default: %(default)s)")
    sim.set_defaults(run=cmd_simulate, interrupted=RESUME_HINT)

    serve = commands.add_parser("serve", help="serve the web UI of a state directory", description="Serves the web UI "
                                "and JSON API over the index of a state directory (it never scans the chain).")
    add_state_option(serve)
    add_serve_options(serve)
    serve.add_argument("--rpc", metavar="URL", help="JSON-RPC node the market runs on: enables /admin, which relays "
                       "transactions that role holders signed with their own keys (the server holds no keys)")
    serve.add_argument("--with-chain", action="store_true", help="open the embedded chain of --state in the server, "
                       "for /admin (it holds the chain's journal lock: no oracle may run on this state meanwhile)")
    serve.set_defaults(run=cmd_serve)

    generate = commands.add_parser("generate", help="write a synthetic community dataset to a file",
                                   description="Writes the seeded synthetic community of the config as a dataset "
                                   "file that `simulate --data` reads.")
    add_community_options(generate)
    generate.add_argument("--out", type=Path, required=True, help="output file (.csv or .parquet)")
    generate.set_defaults(run=cmd_generate)


def cmd_demo(args: argparse.Namespace) -> int:
    from node.simulation.state import claim_state, state_kind

    config = load_config(args)
    kind = state_kind(args.state) if args.state.exists() else None
    if kind not in (None, "demo") and not args.fresh:
        from node.errors import InputError

        raise InputError(f"--state {args.state} holds the state of another run ({kind}), which the demo would "
                         "remove: pass --fresh to start it over, or choose another --state")
    removed = claim_state(args.state, "demo", start_over=True)
    if removed:
        log.info("starting the demo over: removed %s from %s", ", ".join(removed), args.state)
    log.info("generating %d homes, %d day(s) of %d-minute intervals (seed %d)", config.community.homes,
             config.community.days, config.market.interval_minutes, config.community.seed)
    from node.data.synthetic import generate_community

    with open_chain(args) as chain:
        _run(args, generate_community(config), config, args.state, chain=chain)
        if not args.no_serve:
            # The UI relays role holders' signed transactions (/admin) to this chain.
            cmd_serve(args, chain)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from node.simulation.state import claim_state

    config = load_config(args)
    # The data is read and judged before anything touches the chain or the state
    # directory, so a rejected file changes nothing.
    if args.data:
        from node.data.dataset import load_dataset_with_report

        loaded = load_dataset_with_report(args.data, config, args.meter_policy, _registry(args))
    else:
        from node.data.dataset import LoadedDataset
        from node.data.synthetic import generate_community

        loaded = LoadedDataset(generate_community(config))
    removed = claim_state(args.state, "simulate", start_over=args.fresh)
    if removed:
        log.info("starting over: removed %s from %s", ", ".join(removed), args.state)
    if loaded.repairs:
        _write_repairs(loaded.repairs, args.state / "repairs.csv")
        log.warning("repaired %d meter values or rows (%s); listed in %s and committed with each interval's inputs",
                    len(loaded.repairs), ", ".join(sorted({r.rule for r in loaded.repairs})), args.state / "repairs.csv")
    _run(args, loaded.community, config, args.state, loaded.repairs)
    return 0


def _run(args: argparse.Namespace, community, config, state: Path, repairs=(), chain=None):
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths

    with (contextlib.nullcontext(chain) if chain is not None else open_chain(args)) as chain, logging_redirect_tqdm():
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


def _registry(args: argparse.Namespace) -> list[str] | None:
    """The participants a resumed market knows; a fresh market registers whoever the data has."""
    path = args.state / "index.sqlite"
    if args.fresh or not path.exists():
        return None
    from node.index.store import Index

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


def cmd_serve(args: argparse.Namespace, chain=None) -> int:
    from webui import create_app

    config = {"INDEX_PATH": str(index_path(args.state))}
    if chain is not None:
        config["CHAIN"] = chain
    elif getattr(args, "rpc", None):
        config["CHAIN_RPC"] = args.rpc
    elif getattr(args, "with_chain", False):
        config["CHAIN_STATE"] = str(args.state)
    config["RELAY_ROLE_CHANGES"] = getattr(args, "allow_role_changes", False)
    app = create_app(config)
    from webui.server import serve

    print(f"GridLedger web UI: http://{args.host}:{args.port}/  (Ctrl+C to stop)", flush=True)
    serve(app, args.host, args.port, threads=args.threads)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from node.data.dataset import save_dataset
    from node.data.synthetic import generate_community

    community = generate_community(load_config(args))
    save_dataset(community, args.out)
    print(f"wrote {len(community.homes)} homes x {len(community.timestamps)} intervals to {args.out}")
    return 0
