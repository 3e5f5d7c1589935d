"""The ``gridledger`` command: thin subcommands over the library.

Every subcommand parses its arguments, calls one library function and prints the
result. A GridLedgerError becomes one line on stderr and exit status 2. Building the
parser imports no heavy library (web3, cvxpy, pandas, eth-account): each command
imports what it needs when it runs, so `--help` and a bad argument answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from node.cli import accounts, admin, imports, ledger, network, orders, research, run, tools
from node.errors import GridLedgerError

DEFAULT_INTERRUPTED = "interrupted"


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
        print(getattr(args, "interrupted", DEFAULT_INTERRUPTED), file=sys.stderr)
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
    for group in (run, imports, ledger, accounts, orders, admin, research, network, tools):
        group.add_commands(commands)
    return parser


def _configure_logging(level: int) -> None:
    levels = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
    logging.basicConfig(level=levels[max(-2, min(1, level))], format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if level < 1:
        for noisy in ("web3", "urllib3", "eth", "evm", "werkzeug", "cvxpy"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
