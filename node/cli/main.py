"""The ``gridledger`` command: thin subcommands over the library.

Every subcommand parses its arguments, calls one library function and prints the
result. A GridLedgerError becomes one line on stderr and exit status 2. Building the
parser imports no heavy library (web3, cvxpy, pandas, eth-account): each command
imports what it needs when it runs, so `--help` and a bad argument answer at once.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from typing import Sequence

from node.cli import accounts, admin, disputes, imports, inputs, ledger, network, orders, research, run, tools
from node.errors import GridLedgerError

DEFAULT_INTERRUPTED = "interrupted"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it stops as on Ctrl+C: every
    `with` block unwinds, and a child it started (anvil) is stopped, not orphaned."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose - args.quiet)
    previous = _stop_on_sigterm()
    try:
        return args.run(args) or 0
    except GridLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        # A database damaged while a command ran (the index checks its file on opening).
        print(f"error: a GridLedger database file is damaged ({exc}); if it is the index, rebuild it with "
              "`gridledger index rebuild --state STATE`", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(getattr(args, "interrupted", DEFAULT_INTERRUPTED), file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm():
    """Turns SIGTERM into Terminated for the run of a command (main thread only); returns
    the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, stop)


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
    for group in (run, imports, ledger, inputs, accounts, orders, admin, disputes, research, network, tools):
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
