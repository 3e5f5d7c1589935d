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
    demo.add_argument("--mechanism", choices=("community", "auction"),
                      help="override market.mechanism; with auction, every home signs an order for each interval from "
                      "its meter data, and the last --live-intervals are cleared while the UI is up")
    demo.add_argument("--live-intervals", type=int, metavar="N",
                      help="clear the data's last N intervals one every --tick seconds with the UI up, so orders placed "
                      "in the browser settle (default: half of them for --mechanism auction, none otherwise)")
    demo.add_argument("--tick", type=float, default=15.0, metavar="SECONDS",
                      help="seconds between two of the --live-intervals (default: %(default)s)")
    add_runs_option(demo)
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
    sim.add_argument("--intensity", type=Path, metavar="FILE",
                     help="grid CO2 intensity (CSV: timestamp, g_per_kwh) for the CO2 KPI of both runs")
    add_data_options(sim)
    sim.set_defaults(run=cmd_simulate, interrupted=RESUME_HINT)

    compare = commands.add_parser(
        "compare",
        help="settle the same data under each mechanism and compare the outcomes",
        description="Replays the dataset (or the synthetic community) three times, each in its own state "
        "directory under --state: the community optimiser; the double auction at a uniform price with every "
        "home's bidding agent signing its orders; the same at pay-as-bid. Prints costs (what the homes' supplier "
        "settles outside the community included), grid and P2P energy, gas, the jobs' local-PV share and the "
        "HVACs' comfort side by side, and writes them to STATE/compare.csv. Runs resume like simulate.",
    )
    compare.add_argument("--data", type=Path, help="dataset file (.csv or .parquet)")
    add_community_options(compare)
    add_chain_options(compare)
    add_state_option(compare, "state/compare", help="root of the runs' state directories")
    compare.add_argument("--fresh", action="store_true", help="start every run over")
    add_data_options(compare, mechanism=False)
    compare.set_defaults(run=cmd_compare, interrupted=RESUME_HINT)

    serve = commands.add_parser("serve", help="serve the web UI of a state directory", description="Serves the web UI "
                                "and JSON API over the index of a state directory (it never scans the chain).")
    add_state_option(serve)
    add_serve_options(serve)
    serve.add_argument("--rpc", metavar="URL", help="JSON-RPC node the market runs on: enables /admin, which relays "
                       "transactions that role holders signed with their own keys (the server holds no keys)")
    serve.add_argument("--with-chain", action="store_true", help="open the embedded chain of --state in the server, "
                       "for /admin (it holds the chain's journal lock: no oracle may run on this state meanwhile)")
    add_runs_option(serve)
    serve.set_defaults(run=cmd_serve)

    generate = commands.add_parser("generate", help="write a synthetic community dataset to a file",
                                   description="Writes the seeded synthetic community of the config as a dataset "
                                   "file that `simulate --data` reads.")
    add_community_options(generate)
    generate.add_argument("--out", type=Path, required=True, help="output file (.csv or .parquet)")
    generate.set_defaults(run=cmd_generate)


def add_data_options(p: argparse.ArgumentParser, mechanism: bool = True) -> None:
    p.add_argument("--meter-policy", choices=("strict", "repair"), default="strict",
                   help="bad meter data: strict rejects any gap, NaN or duplicate; repair fills gaps by the rules "
                   "of node/data/meter_policy.py, lists them in STATE/repairs.csv and commits them with each "
                   "interval's inputs (default: %(default)s)")
    p.add_argument("--assets", type=Path, metavar="FILE", help="community file: each participant's own PV, battery, "
                   "connection limit, HVAC and zone (overrides community.assets_file; see node/data/assets.py)")
    p.add_argument("--jobs", type=Path, metavar="FILE", help="deferrable jobs in PySSMic's consumer-event layout "
                   "(node/data/jobs.py); each moves only within the window its home signs")
    if mechanism:
        p.add_argument("--mechanism", choices=("community", "auction"), help="override market.mechanism")
        p.add_argument("--pricing", choices=("uniform", "pay_as_bid"), help="override market.pricing")
        p.add_argument("--agents", action="store_true", help="in an auction, every home's bidding agent signs and "
                       "submits its order each interval ([agents] in the config says how it bids)")


def _run_config(args: argparse.Namespace):
    """The config with the run's command-line overrides."""
    from dataclasses import replace

    config = load_config(args)
    market = {k: v for k in ("mechanism", "pricing") if (v := getattr(args, k, None)) is not None}
    if market:
        config = replace(config, market=replace(config.market, **market))
    if getattr(args, "agents", False):
        config = replace(config, agents=replace(config.agents, enabled=True))
    if getattr(args, "assets", None) is not None:
        config = replace(config, community=replace(config.community, assets_file=str(args.assets.resolve())))
    if config.agents.enabled and config.market.mechanism != "auction" and hasattr(args, "mechanism"):
        from node.errors import InputError

        raise InputError("bidding agents bid in an auction market: add --mechanism auction (or set market.mechanism "
                         '= "auction" in the config)')
    return config


def _load(args: argparse.Namespace, config):
    """The run's data, judged before anything touches the chain or the state directory:
    the dataset (or the synthetic community) with the community file's assets, priced
    by the tariffs, and its jobs file read."""
    if args.data:
        from node.data.dataset import load_dataset_with_report

        loaded = load_dataset_with_report(args.data, config, args.meter_policy, _registry(args))
    else:
        from node.data.dataset import LoadedDataset
        from node.data.synthetic import generate_community

        loaded = LoadedDataset(generate_community(config))
    if config.community.assets_file:
        from dataclasses import replace

        from node.data.assets import apply_assets, load_assets

        community = apply_assets(loaded.community, load_assets(config.community.assets_file), config)
        loaded = replace(loaded, community=community)
    if config.community.shared_batteries_file:
        from dataclasses import replace

        from node.data.shared_batteries import apply_shared_batteries

        loaded = replace(loaded, community=apply_shared_batteries(loaded.community, config))
    config.tariffs.buy_price(loaded.community.timestamps)  # a prices file must cover the data
    if args.jobs is not None:
        from node.data.jobs import load_jobs

        load_jobs(args.jobs, loaded.community.names)
    return loaded


def cmd_demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from node.simulation.state import claim_state, state_kind

    config = load_config(args)
    if args.mechanism:
        config = replace(config, market=replace(config.market, mechanism=args.mechanism))
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

    community = generate_community(config)
    if config.community.assets_file:
        from node.data.assets import apply_assets, load_assets

        community = apply_assets(community, load_assets(config.community.assets_file), config)
    from node.data.shared_batteries import apply_shared_batteries

    community = apply_shared_batteries(community, config)
    auction = config.market.mechanism == "auction"
    in_turn = (args.live_intervals if args.live_intervals is not None else
               len(community.timestamps) // 2 if auction and not args.no_serve else 0)
    from node.simulation.day_ahead import replay_genesis

    with open_chain(args, replay_genesis(community, config)) as chain:
        # The UI is up while the intervals settle: the dashboard follows them live.
        server = None if args.no_serve else _serve_in_background(args, chain, config.community.seed)
        agents = None
        if auction:
            # Every home bids its net need at its tariffs, signed with its demo key.
            from node.simulation.bidders import tariff_bidders as agents
        if in_turn:
            log.info("the last %d intervals clear one every %.0f s: place orders for them in the web UI", in_turn, args.tick)
        _run(args, community, config, args.state, chain=chain, agents=agents, in_turn=in_turn, tick_s=args.tick,
             before_clearing_in_turn=(lambda: _print_how_to_act(args, community, config)) if server else None)
        if server is not None:
            if not in_turn:
                _print_how_to_act(args, community, config)
            server.join()
    return 0


def _serve_in_background(args: argparse.Namespace, chain, seed: int):
    """The web UI of the demo's state in a thread, with the demo's chain (for /admin) and
    its homes' test wallets; returns the thread, which serves until the process ends."""
    import threading

    from werkzeug.serving import make_server

    from webui import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request lines among the progress
    index = args.state / "index.sqlite"
    app = create_app({"INDEX_PATH": str(index), "CHAIN": chain, "DEMO_SEED": seed, "RUNS_DIR": str(_runs_dir(args))})
    server = make_server(args.host, args.port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="gridledger-web")
    thread.start()
    print(f"GridLedger web UI: http://{args.host}:{args.port}/  (it follows the settlement live; Ctrl+C to stop)", flush=True)
    return thread


def _print_how_to_act(args: argparse.Namespace, community, config) -> None:
    from node.simulation.setup import demo_key

    first = community.homes[0].name
    key = demo_key(config.community.seed, first)
    secret = "0x" + key.key.hex().removeprefix("0x")
    print(f"Act as a home: open http://{args.host}:{args.port}/wallet, choose a home and sign in with its demo wallet; "
          f"or import a home's key into your own wallet, e.g. {first}'s {secret} (address {key.address}). "
          "Demo keys are derived from public data and protect nothing.", flush=True)


def cmd_simulate(args: argparse.Namespace) -> int:
    from node.simulation.state import claim_state

    config = _run_config(args)
    # The data is read and judged before anything touches the chain or the state
    # directory, so a rejected file changes nothing.
    loaded = _load(args, config)
    intensity = None
    if args.intensity:
        from node.data.intensity import load_intensity

        intensity = load_intensity(args.intensity).at(loaded.community.timestamps)
    removed = claim_state(args.state, "simulate", start_over=args.fresh)
    if removed:
        log.info("starting over: removed %s from %s", ", ".join(removed), args.state)
    if loaded.repairs:
        _write_repairs(loaded.repairs, args.state / "repairs.csv")
        log.warning("repaired %d meter values or rows (%s); listed in %s and committed with each interval's inputs",
                    len(loaded.repairs), ", ".join(sorted({r.rule for r in loaded.repairs})), args.state / "repairs.csv")
    _run(args, loaded.community, config, args.state, loaded.repairs, intensity=intensity)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from node.chain.connection import Chain

    config = _run_config(args)
    loaded = _load(args, config)
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.simulation.compare import compare, table

    from node.simulation.day_ahead import replay_genesis

    genesis = replay_genesis(loaded.community, config)

    def chain_of(state: Path):
        if args.rpc:
            return open_chain(args)
        return Chain.embedded(state, genesis)

    with logging_redirect_tqdm():
        rows = compare(loaded.community, config, args.state, chain_of, args.jobs, loaded.repairs, args.fresh,
                       progress=not args.no_progress)
    print(table(rows, config.market.currency))
    print(f"  runs in {args.state}/<run>, the table in {args.state / 'compare.csv'}")
    return 0


def _run(args: argparse.Namespace, community, config, state: Path, repairs=(), chain=None, intensity=None, agents=None,
         in_turn=0, tick_s=15.0, before_clearing_in_turn=None):
    from tqdm.contrib.logging import logging_redirect_tqdm

    from node.simulation.day_ahead import replay_genesis
    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths

    opened = contextlib.nullcontext(chain) if chain is not None else open_chain(args, replay_genesis(community, config))
    with opened as chain, logging_redirect_tqdm():
        result = simulate(chain, community, config, StatePaths(state), progress=not args.no_progress,
                          live=getattr(args, "live", False), repairs=repairs, intensity_g_per_kwh=intensity,
                          agents=agents, in_turn=in_turn, tick_s=tick_s, before_in_turn=before_clearing_in_turn,
                          jobs_file=getattr(args, "jobs", None))
    k = result.kpis
    print(f"settled {k['intervals']} intervals for {k['participants']} homes on {chain.description}")
    print(describe_evaluation(result.evaluation))
    if "outside_cost" in k:
        print(f"  the homes' supplier outside the community: {k['outside_import_kwh']:.1f} kWh in, "
              f"{k['outside_export_kwh']:.1f} kWh out, {k['outside_cost']:.2f} {config.market.currency}; cost with it "
              f"{k['cost_with_outside']:.2f}, savings with it {k['savings_with_outside']:.2f}")
    if "jobs" in k:
        print(f"  jobs: {k['jobs']} ({k['jobs_flexible']} within signed windows), {k['job_energy_kwh']:.1f} kWh, "
              f"{100 * k['job_local_pv_share']:.0f}% served by local PV ({100 * k['job_local_pv_share_at_earliest_start']:.0f}% "
              "at their earliest start)")
    print(f"  results in {state / 'results'}")
    return result


def describe_evaluation(evaluation, indent: str = "  ") -> str:
    """The KPIs against the baseline as the CLI prints them: the headline, the
    caveats that qualify it (node.metrics.kpis.caveats, the web UI shows the same), then
    every KPI of both runs with its unit."""
    from node.metrics.kpis import RUN_KPIS, caveats

    e, c = evaluation, evaluation.comparison
    lines = [f"{indent}cost {e.market['adjusted_cost']:.2f} vs baseline {e.baseline['adjusted_cost']:.2f} {e.currency} "
             f"(stored energy valued): savings {c['savings']:.2f} {e.currency}, {_number(c['savings_percent'], '.1f')}% of "
             f"the baseline's gross cost; per home {_number(c['savings_per_home_mean'], '.2f')} "
             f"(from {_number(c['savings_per_home_min'], '.2f')} to {_number(c['savings_per_home_max'], '.2f')}, "
             f"Gini {_number(c['savings_gini'], '.2f')})"]
    lines += [f"{indent}note: {note}" for note in caveats(e)]
    width = max(len(k.label) for k in RUN_KPIS)
    lines.append(f"{indent}{'':<{width}}  {'market':>12}  {'baseline':>12}")
    for k in RUN_KPIS:
        unit = e.currency if k.unit == "currency" else k.unit
        lines.append(f"{indent}{k.label:<{width}}  {_number(e.market[k.name], '12.3f')}  "
                     f"{_number(e.baseline[k.name], '12.3f')}  {unit}")
    return "\n".join(lines)


def _number(value: float | None, spec: str) -> str:
    """A KPI for people: NaN (an undefined ratio) as "n/a"."""
    width = int(spec.split(".")[0] or 0)
    return f"{'n/a':>{width}}" if value is None or value != value else format(value, spec)


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

    config = {"INDEX_PATH": str(index_path(args.state)), "RUNS_DIR": str(_runs_dir(args))}
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


def add_runs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=Path, metavar="DIR", help="where runs started from the web UI keep their folders "
                   "(default: a folder runs beside --state)")


def _runs_dir(args: argparse.Namespace) -> Path:
    return args.runs if args.runs is not None else args.state.parent / "runs"
