"""``gridledger import ausgrid|pyssmic|ets``: public community datasets into a dataset,
a community file and a config that `gridledger simulate` runs as they are."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "import",
        help="import a public dataset (AusGrid Solar Home, PySSMic, energy_trading_system)",
        description="Reads a published community dataset, checks it cell by cell, resamples it to the market "
        "interval and writes OUT/data.csv, OUT/community.csv (each home's assets), OUT/community.toml (a config "
        "naming them) and, for PySSMic, OUT/jobs.csv with its load profiles. Then: gridledger simulate "
        "--config OUT/community.toml --data OUT/data.csv",
    )
    kinds = group.add_subparsers(title="datasets", metavar="DATASET", required=True)

    ausgrid = kinds.add_parser("ausgrid", help="AusGrid Solar Home Electricity data (half-hourly CSV)",
                               description="The CSV AusGrid publishes: a title row; Customer, Generator Capacity, "
                               "Postcode, Consumption Category (GC, CL, GG), date (dd/mm/yyyy), 48 half-hour kWh "
                               "columns, Row Quality. Consumption = GC + CL, production = GG.")
    ausgrid.add_argument("file", type=Path, help="the CSV file")
    ausgrid.add_argument("--customers", help="comma-separated customer numbers (default: all)")
    ausgrid.add_argument("--start", help="first day, dd/mm/yyyy or yyyy-mm-dd (default: the file's first)")
    ausgrid.add_argument("--days", type=int, help="number of days (default: to the file's end)")
    ausgrid.add_argument("--timezone", default="Australia/Brisbane",
                         help="the readings' clock; AusGrid's is standard time, UTC+10 (default: %(default)s)")
    ausgrid.add_argument("--zone-by-postcode", action="store_true", help="one grid zone per postcode (default: all in zone 0)")
    _common(ausgrid, run_ausgrid)

    pyssmic = kinds.add_parser("pyssmic", help="a PySSMic (CoSSMic) neighbourhood folder",
                               description="A folder with consumer_event.csv, producer_event.csv, loads/ and "
                               "predictions/. Background loads become consumption; deferrable jobs go to jobs.csv.")
    pyssmic.add_argument("folder", type=Path, help="the neighbourhood folder")
    pyssmic.add_argument("--timezone", default="Europe/Oslo", help="local clock for the config (default: %(default)s)")
    _common(pyssmic, run_pyssmic)

    ets = kinds.add_parser("ets", help="energy_trading_system's household table (id, timestamp, production, consumption)",
                           description="A long table (CSV or parquet) of 15-minute steps: id, timestamp, production, "
                           "consumption (kWh); other columns are ignored.")
    ets.add_argument("file", type=Path, help="the CSV or parquet file")
    ets.add_argument("--households", help="comma-separated household ids (default: all)")
    ets.add_argument("--timezone", default="UTC", help="clock of timestamps without an offset (default: %(default)s)")
    _common(ets, run_ets)


def _common(p: argparse.ArgumentParser, run) -> None:
    p.add_argument("--out", type=Path, required=True, help="directory to write into (new or empty)")
    p.add_argument("--interval", type=int, default=15, metavar="MINUTES", help="market interval (default: %(default)s)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="dataset file type (default: %(default)s)")
    p.set_defaults(run=run)


def run_ausgrid(args: argparse.Namespace) -> int:
    from node.data.importers.ausgrid import import_ausgrid

    customers = None if not args.customers else [int(c) for c in _list(args.customers, "--customers", int)]
    return _write(args, import_ausgrid(args.file, _interval(args), customers, args.start, args.days, args.timezone,
                                       args.zone_by_postcode))


def run_pyssmic(args: argparse.Namespace) -> int:
    from node.data.importers.pyssmic import import_pyssmic

    return _write(args, import_pyssmic(args.folder, _interval(args), args.timezone))


def run_ets(args: argparse.Namespace) -> int:
    from node.data.importers.ets import import_ets

    households = None if not args.households else _list(args.households, "--households", str)
    return _write(args, import_ets(args.file, _interval(args), args.timezone, households))


def _interval(args: argparse.Namespace) -> int:
    from node.data.config import MarketConfig
    from node.errors import InputError

    try:
        MarketConfig(interval_minutes=args.interval)
    except InputError as error:
        raise InputError(f"--interval: {error}") from None
    return args.interval


def _list(text: str, option: str, kind) -> list:
    from node.errors import InputError

    try:
        return [kind(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        raise InputError(f"{option}: expected a comma-separated list, got {text!r}") from None


def _write(args: argparse.Namespace, imported) -> int:
    from node.data.importers.common import write_imported

    files = write_imported(imported, args.out, args.interval, args.format)
    for note in imported.notes:
        print(note)
    c = imported.community
    print(f"wrote {len(c.homes)} participants x {len(c.timestamps)} intervals of {args.interval} minutes: "
          + ", ".join(str(f) for f in files))
    jobs = f" --jobs {args.out / 'jobs.csv'}" if imported.jobs else ""
    print(f"run it: gridledger simulate --config {args.out / 'community.toml'} --data {files[0]}{jobs}")
    return 0
