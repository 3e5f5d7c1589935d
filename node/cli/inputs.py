"""``gridledger inputs export|import|check``: the committed inputs' store and its mirrors.

Every settlement commits on chain to the hash of its clearing's inputs; the inputs
themselves are only in STATE/inputs (node.clearing.store), and the meter-signed readings
the auditor checks them against only in STATE/readings. These commands copy both to a
mirror (a directory or a tar archive, node.clearing.mirror) and back, or the inputs from
a GridLedger server, checking every file on the way in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli.common import add_state_option
from node.errors import InputError


def add_commands(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("inputs", help="export, import or check the committed inputs (the clearings' inputs by hash)")
    sub = group.add_subparsers(title="inputs commands", metavar="COMMAND", required=True)

    export = sub.add_parser(
        "export", help="copy the inputs and meter readings to a mirror directory or a .tar/.tar.gz archive",
        description="Copies every committed inputs file of STATE/inputs that hashes to its name, and every interval's "
        "meter-signed readings of STATE/readings, to OUT: a directory (laid out as a store with the readings in "
        "OUT/readings, so `audit --inputs DIR` reads it) or an archive (.tar, .tar.gz) of the same tree. Files already "
        "in a mirror directory are kept.")
    add_state_option(export)
    export.add_argument("out", type=Path, help="mirror directory, or archive file ending in .tar, .tar.gz or .tgz")
    export.set_defaults(run=cmd_export)

    imp = sub.add_parser(
        "import", help="copy inputs and readings into the state from a mirror, an archive or a GridLedger server",
        description="Copies inputs into STATE/inputs, and meter readings into STATE/readings, from SOURCE: a mirror "
        "directory or archive that `inputs export` wrote, or the URL of a GridLedger web UI, from which every inputs "
        "hash the index of STATE lists as committed but the store lacks is fetched (/api/inputs/<hash>). An inputs "
        "file is taken only if its content hashes to its name, a readings file only if its readings are all of the "
        "interval it is named after (the audit checks their signatures).")
    add_state_option(imp)
    imp.add_argument("source", help="mirror directory, archive file, or http(s) URL of a GridLedger server")
    imp.set_defaults(run=cmd_import)

    check = sub.add_parser("check", help="check that every settled interval's inputs are in the store and hash right",
                           description="Reads the inputs hash of every interval the index of STATE holds as "
                           "settled and checks its file in STATE/inputs. Exit status 1 if any is missing or damaged.")
    add_state_option(check)
    check.set_defaults(run=cmd_check)


def _store(state: Path):
    from node.clearing.store import InputsStore

    return InputsStore(state / "inputs")


def _readings(state: Path):
    from node.clearing.readings_store import READINGS_DIR, ReadingsStore

    return ReadingsStore(state / READINGS_DIR)


def cmd_export(args: argparse.Namespace) -> int:
    from node.clearing.mirror import export_mirror

    store = _store(args.state)
    if not store.root.is_dir():
        raise InputError(f"no inputs store at {store.root}: nothing was settled in --state {args.state}")
    copied = export_mirror(store, _readings(args.state), args.out)
    print(f"exported {copied.inputs + copied.inputs_known} committed inputs and the meter readings of "
          f"{copied.readings} intervals from {args.state} to {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    store = _store(args.state)
    if args.source.startswith(("http://", "https://")):
        from node.audit.verify import HttpInputs
        from node.cli.common import open_index

        index = open_index(args.state)
        wanted = [row["inputs_hash"] for row in index.db.execute("SELECT inputs_hash FROM intervals ORDER BY interval")]
        server = HttpInputs(args.source)
        new = 0
        for digest in wanted:
            if not store.has(digest):
                store.put(server.fetch(digest), digest)
                new += 1
        print(f"imported {new} committed inputs from {args.source} into {store.root} "
              f"({len(wanted) - new} were there already)")
        return 0
    from node.clearing.mirror import import_mirror

    copied = import_mirror(store, _readings(args.state), Path(args.source))
    print(f"imported {copied.inputs} committed inputs and the meter readings of {copied.readings} intervals from "
          f"{args.source} into {args.state} ({copied.inputs_known} inputs were there already)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import sys

    from node.cli.common import open_index

    index = open_index(args.state)
    rows = index.db.execute("SELECT interval, inputs_hash FROM intervals ORDER BY interval").fetchall()
    problems = []
    for row in rows:
        try:
            index.inputs(row["inputs_hash"])
        except InputError as exc:
            problems.append(f"interval {row['interval']}: {exc}")
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} of {len(rows)} settled intervals lack good inputs in {index.inputs_store.root}",
              file=sys.stderr)
        return 1
    print(f"all {len(rows)} settled intervals have their committed inputs in {index.inputs_store.root}")
    return 0
