"""``gridledger network show|clear|import|export|grids`` and ``gridledger classroom``:
networks and zonal markets.

A network is a ``network.toml`` (see examples/network/) or a Mini-ISO case (a ``.json``
manifest naming four CSV files, see examples/mini-iso/); pandapower's grids and MATPOWER
files come in through ``import``. Nothing heavy is imported before a command runs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from node.cli.common import add_serve_options
from node.errors import InputError

PANDAPOWER = "pandapower:"


def add_commands(commands: argparse._SubParsersAction) -> None:
    network = commands.add_parser("network", help="check, clear, import and export networks and zonal cases")
    sub = network.add_subparsers(title="network commands", metavar="COMMAND", required=True)

    show = sub.add_parser("show", help="check a network or case file and summarise it",
                          description="Reads a network.toml or a Mini-ISO case .json, checks every cell and prints the "
                          "zones, lines and limits (and, for a case, loads, generators and offers).")
    show.add_argument("file", type=Path, help="network.toml or a Mini-ISO case .json")
    show.add_argument("--interval", type=int, help="show the limits in force in this market interval")
    show.add_argument("--unit", choices=("MW", "kW"),
                      help="power unit of the figures (default: the network file's power_unit; MW for cases)")
    show.set_defaults(run=cmd_show)

    clear = sub.add_parser("clear", help="clear a Mini-ISO case: prices, flows, dispatch, money",
                           description="Clears a zonal case once (DC optimal power flow, HiGHS) and prints the tables per "
                           "zone, line and generator.")
    clear.add_argument("case", help="a Mini-ISO case .json, a MATPOWER .m/.mat file or pandapower:NAME")
    clear.add_argument("--value-of-lost-load", type=float, metavar="PRICE",
                       help="shed load at this price per MWh rather than fail when the offers cannot serve it")
    clear.set_defaults(run=cmd_clear)

    imp = sub.add_parser("import", help="import a MATPOWER case or a pandapower grid",
                         description="Reads SOURCE (a MATPOWER .m or .mat file, pandapower:NAME for one of pandapower's "
                         "built-in grids, or a Mini-ISO .json) and writes it to OUT: as network.toml and its tables "
                         "(--as network, the default) or as a Mini-ISO case with loads, generators and offers "
                         "(--as mini-iso). Needs the network extra: pip install 'gridledger[network]'.")
    imp.add_argument("source", help="file.m, file.mat, pandapower:NAME or case.json")
    imp.add_argument("--out", type=Path, required=True, help="directory to write into")
    imp.add_argument("--as", dest="form", choices=("network", "mini-iso"), default="network",
                     help="what to write (default: %(default)s)")
    imp.add_argument("--unit", choices=("MW", "kW"), default="MW", help="power unit of a written network (default: MW)")
    imp.set_defaults(run=cmd_import)

    exp = sub.add_parser("export", help="write a case as a MATPOWER .mat file",
                         description="Writes a Mini-ISO case (or a network.toml, with no load) as a MATPOWER .mat file "
                         "through pandapower; each offer tranche becomes a generator with a linear cost.")
    exp.add_argument("case", type=Path, help="a Mini-ISO case .json or a network.toml")
    exp.add_argument("--out", type=Path, required=True, help="the .mat file to write")
    exp.set_defaults(run=cmd_export)

    grids = sub.add_parser("grids", help="list pandapower's built-in grids (for import pandapower:NAME)")
    grids.set_defaults(run=cmd_grids)

    room = commands.add_parser(
        "classroom",
        help="run a zonal market for a class: generators enter offers, the admin clears (Mini-ISO's use)",
        description="Serves a wholesale zonal market over one or more Mini-ISO cases. Every generator and the admin "
        "get a key in STATE/keys.csv to hand out; generators sign in and enter offers (tranches of MW at a price), "
        "the admin loads a case, edits loads and clears on a button or every N seconds. Offers, loads and every "
        "round are kept in STATE/classroom.json across restarts.",
    )
    room.add_argument("--case", type=Path, action="append", required=True, metavar="FILE",
                      help="a Mini-ISO case .json (repeat for several; the admin switches between them)")
    room.add_argument("--state", type=Path, default=Path("state/classroom"), help="state directory (default: %(default)s)")
    room.add_argument("--clear-every", type=float, metavar="SECONDS",
                      help="clear every so many seconds while offers or loads change (default: only on the admin's button)")
    room.add_argument("--value-of-lost-load", type=float, metavar="PRICE",
                      help="shed load at this price per MWh rather than fail a round the offers cannot serve")
    add_serve_options(room)
    room.set_defaults(run=cmd_classroom)


# -- reading any case ---------------------------------------------------------------------------


def read_case(source: str):
    """A wholesale case from a Mini-ISO .json, a MATPOWER .m/.mat, pandapower:NAME, or a
    network.toml (with no load and no generators)."""
    if source.startswith(PANDAPOWER):
        from node.data.pandapower_io import load_pandapower_grid

        return load_pandapower_grid(source[len(PANDAPOWER):])
    path = Path(source)
    if path.suffix == ".json":
        from node.data.wholesale import load_mini_iso

        return load_mini_iso(path)
    if path.suffix in (".m", ".mat"):
        from node.data.pandapower_io import load_matpower

        return load_matpower(path)
    if path.suffix == ".toml":
        from node.data.network_file import load_network
        from node.data.wholesale import WholesaleCase

        network = load_network(path)
        return WholesaleCase(network, {}, (), (), network.name)
    raise InputError(f"{source}: expected a Mini-ISO .json, a network .toml, a MATPOWER .m/.mat or pandapower:NAME")


def _limit(mw: float | None, per_mw: float = 1) -> str:
    return "-" if mw is None else "inf" if math.isinf(mw) else f"{mw * per_mw:g}"


# -- commands -----------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    from node.data.network_file import POWER_UNITS, power_unit

    case = read_case(str(args.file))
    network = case.network
    limits = network.limits(args.interval)
    unit = args.unit or (power_unit(args.file) if args.file.suffix == ".toml" else "MW")
    per_mw = POWER_UNITS[unit]
    print(f"{network.name or args.file}: {len(network.zones)} zones, {len(network.lines)} lines, base power "
          f"{network.base_power_mva:g} MVA, reference zone {network.reference_zone}"
          + (f"; limits of interval {args.interval}" if args.interval is not None else ""))
    print(f"\n{'zone':<20} {'id':>4} {'kind':<12} {'load ' + unit:>10} {'grid import':>12} {'grid export':>12}")
    for i, z in enumerate(network.zones):
        grid = (limits.grid_import_mw[i], limits.grid_export_mw[i]) if z.grid_connected else (None, None)
        print(f"{z.name:<20} {'' if z.id is None else z.id:>4} {z.kind:<12} {case.loads_mw.get(z.name, 0.0) * per_mw:>10g} "
              f"{_limit(grid[0], per_mw):>12} {_limit(grid[1], per_mw):>12}")
    if network.lines:
        print(f"\n{'line':<20} {'from':<14} {'to':<14} {'susceptance':>11} {'limit ' + unit:>10} {'back ' + unit:>10}")
        for i, line in enumerate(network.lines):
            print(f"{line.name:<20} {line.zone_from:<14} {line.zone_to:<14} {line.susceptance:>11.4g} "
                  f"{_limit(limits.line_forward_mw[i], per_mw):>10} {_limit(limits.line_back_mw[i], per_mw):>10}")
    if case.generators:
        print(f"\n{'generator':<20} {'zone':<14} {'capacity ' + unit:>11}  offers ({unit} at price)")
        for g in case.generators:
            offers = ", ".join(f"{o.quantity_mw * per_mw:g} at {o.price_per_mwh:g}" for o in case.offers_of(g.name))
            print(f"{g.name:<20} {g.zone:<14} {g.capacity_mw * per_mw:>11g}  {offers or '-'}")
    if network.overrides:
        print(f"\nlimits differ in intervals {', '.join(map(str, sorted(network.overrides)))}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    from node.classroom.results import tabulate
    from optimizer.zonal import clear_zonal

    case = read_case(args.case)
    if not case.offers:
        raise InputError(f"{args.case} has no offers to clear; a network alone has no market")
    result = clear_zonal(**case.clearing_input(), value_of_lost_load=args.value_of_lost_load)
    cleared = tabulate(1, "", case, result)
    print(f"{'zone':<16} {'price/MWh':>10} {'load MW':>10} {'gen MW':>10} {'import MW':>10}")
    for z in cleared.zones:
        print(f"{z.name:<16} {z.lmp:>10.2f} {z.load_mw:>10.1f} {z.generation_mw:>10.1f} {z.net_import_mw:>10.1f}")
    print(f"\n{'line':<16} {'from -> to':<24} {'flow MW':>9} {'limit MW':>9} {'shadow':>8}")
    for line in cleared.lines:
        mark = "  at limit" if line.binding else ""
        print(f"{line.name:<16} {line.zone_from + ' -> ' + line.zone_to:<24} {line.flow_mw:>9.1f} "
              f"{_limit(line.limit_mw):>9} {line.shadow_price:>8.2f}{mark}")
    print(f"\n{'generator':<16} {'zone':<12} {'dispatch MW':>11} {'revenue':>11}")
    for g in cleared.generators:
        print(f"{g.name:<16} {g.zone:<12} {g.dispatched_mw:>11.1f} {g.revenue:>11.2f}")
    print(f"\nloads pay {cleared.load_payment:,.2f}, generators receive {cleared.generator_revenue:,.2f}, "
          f"congestion rent {cleared.congestion_rent:,.2f} (per hour)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    case = read_case(args.source)
    if args.form == "mini-iso":
        from node.data.wholesale import save_mini_iso

        written = save_mini_iso(case, args.out)
    else:
        from node.data.network_file import save_network

        written = save_network(case.network, args.out, power_unit=args.unit)
    print(f"wrote {len(case.network.zones)} zones and {len(case.network.lines)} lines"
          + (f", {len(case.generators)} generators and {len(case.offers)} offers" if args.form == "mini-iso" else "")
          + f" to {written}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from node.data.pandapower_io import save_matpower

    case = read_case(str(args.case))
    print(f"wrote {save_matpower(case, args.out)}")
    return 0


def cmd_grids(args: argparse.Namespace) -> int:
    from node.data.pandapower_io import pandapower_grids

    print("\n".join(PANDAPOWER + name for name in pandapower_grids()))
    return 0


def cmd_classroom(args: argparse.Namespace) -> int:
    from node.classroom.session import KEYS_FILE, Classroom
    from webui.classroom import create_classroom_app

    classroom = Classroom.from_files(args.case, args.state, value_of_lost_load=args.value_of_lost_load)
    if args.clear_every is not None:
        classroom.set_auto_clear(args.clear_every)
    app = create_classroom_app(classroom)
    classroom.start()
    print(f"Classroom of {', '.join(classroom.cases)} at http://{args.host}:{args.port}/ (Ctrl+C to stop); "
          f"keys for the admin and the generators are in {args.state / KEYS_FILE}", flush=True)
    try:
        app.run(host=args.host, port=args.port, debug=False, use_reloader=False)
    finally:
        classroom.stop()
    return 0
