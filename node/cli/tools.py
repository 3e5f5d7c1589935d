"""``gridledger node|build``: a local anvil node, and compiling the contracts."""

from __future__ import annotations

import argparse
import sys

from node.cli.common import add_state_option
from node.errors import GridLedgerError


def add_commands(commands: argparse._SubParsersAction) -> None:
    anvil = commands.add_parser(
        "node",
        help="run a local anvil node with persistent state (an alternative to the embedded chain)",
        description="Starts anvil (from npm @foundry-rs/anvil, installed by `npm install`) with its state saved in "
        "STATE/anvil-state.json and the per-transaction gas cap of EIP-7825 on, and waits until Ctrl+C. Point "
        "other commands at it with --rpc http://127.0.0.1:PORT.",
    )
    add_state_option(anvil, "state/anvil")
    anvil.add_argument("--port", type=int, default=8545, help="port (default: %(default)s)")
    anvil.add_argument("--no-gas-cap", action="store_true", help="allow transactions above 16,777,216 gas")
    anvil.add_argument("--block-time", type=float, help="mine a block every so many seconds instead of per transaction")
    anvil.set_defaults(run=cmd_node)

    build = commands.add_parser("build", help="compile the contracts (needs Node.js and `npm ci`)")
    build.add_argument("--check", action="store_true", help="only check the committed artifacts match the sources")
    build.set_defaults(run=cmd_build)


def cmd_node(args: argparse.Namespace) -> int:
    import time

    from node.chain.anvil import start_anvil

    with start_anvil(args.state / "anvil-state.json", args.port, gas_cap=not args.no_gas_cap, block_time=args.block_time) as anvil:
        print(f"anvil is running at {anvil.url} (state in {args.state}); use it with "
              f"`gridledger simulate --rpc {anvil.url} --state state/on-anvil`. Ctrl+C stops it.", flush=True)
        try:
            while anvil.running:
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopping anvil (its state is saved)", file=sys.stderr)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from node.chain.build import compile_contracts, stale_artifacts, write_artifacts

    if args.check:
        stale = stale_artifacts()
        if stale:
            raise GridLedgerError(f"committed artifacts differ from the sources for {', '.join(stale)}: run `gridledger build`")
        print("contract artifacts match the sources")
        return 0
    write_artifacts(compile_contracts())
    print("compiled contracts into contracts/build/")
    return 0
