"""What several command groups share: options, the chain and config a command runs on,
the signing key and its password, and a state directory's index.

Everything heavy (web3, eth-tester, pandas) is imported inside the function that needs
it: the parser is built from these option helpers and must stay instant.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from node.errors import GridLedgerError, InputError
from node.intent.keys import DEFAULT_KEYSTORE, KEYSTORE_ENV, PASSWORD_ENV, Keystore

DEFAULT_PORT = 5000

# -- options ----------------------------------------------------------------------------


def add_state_option(p: argparse.ArgumentParser, default: str = "state/demo", help: str = "state directory") -> None:
    p.add_argument("--state", type=Path, default=Path(default), help=f"{help} (default: %(default)s)")


def add_community_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="community config file (TOML, see examples/community.toml)")
    p.add_argument("--homes", type=int, help="override community.homes")
    p.add_argument("--days", type=int, help="override community.days")
    p.add_argument("--seed", type=int, help="override community.seed")


def add_chain_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", metavar="URL", help="JSON-RPC node to use instead of the embedded chain, e.g. "
                   "http://127.0.0.1:8545 (operator keys from GRIDLEDGER_ADMIN_KEY, GRIDLEDGER_ORACLE_KEY, "
                   "GRIDLEDGER_GRID_OPERATOR_KEY; a local anvil/hardhat chain uses its dev keys)")
    p.add_argument("--retry-for", type=float, default=300, metavar="SECONDS",
                   help="with --rpc: how long to wait for a node that went away before giving up (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    p.add_argument("--threads", type=int, default=8, help="request threads of the server (default: %(default)s)")
    p.add_argument("--allow-role-changes", action="store_true",
                   help="let /admin relay grantRole and revokeRole (off by default: on a dev chain the admin key is "
                   "public, so anyone could grant themselves a role)")


def add_key_options(p: argparse.ArgumentParser, what: str) -> None:
    """--keystore (a directory or one keystore file) and --account: the key that signs."""
    p.add_argument("--keystore", type=Path, metavar="PATH",
                   help=f"a keystore directory, or one v3 keystore file (default: ${KEYSTORE_ENV} or {DEFAULT_KEYSTORE})")
    p.add_argument("--account", metavar="ADDR",
                   help=f"address of {what} (optional when --keystore is a single file)")


# -- what a command runs on ---------------------------------------------------------------


def load_config(args: argparse.Namespace):
    """The community config of --config (or the default) with --homes/--days/--seed applied."""
    from dataclasses import replace

    from node.data.config import default_config, load_config as load

    config = load(args.config) if args.config else default_config()
    overrides = {k: v for k in ("homes", "days", "seed") if (v := getattr(args, k)) is not None}
    if overrides:
        try:
            config = replace(config, community=replace(config.community, **overrides))
        except GridLedgerError as exc:
            raise InputError(f"command line: {exc}") from exc
    return config


def open_chain(args: argparse.Namespace, genesis_timestamp: int | None = None):
    """The embedded chain kept in the state directory (a new one starting at
    `genesis_timestamp`, default now), or the node at --rpc."""
    from node.chain.connection import Chain, Operators

    if not args.rpc:
        return Chain.embedded(args.state, genesis_timestamp)
    keys = [os.environ.get(f"GRIDLEDGER_{role}_KEY") for role in ("ADMIN", "ORACLE", "GRID_OPERATOR")]
    operators = Operators.from_keys(*keys) if all(keys) else None
    return Chain.connect(args.rpc, operators, retry_for=args.retry_for)


def load_deployment(state: Path, chain):
    """The market of a state directory: its deployment.json, or, if that is lost, the
    market the chain holds for it (the one the index names, or the only one the admin
    key deployed), written back to deployment.json. InputError if the chain cannot say."""
    import logging

    from node.chain.market import Deployment

    path = state / "deployment.json"
    if path.exists():
        return Deployment.load(path)
    from node.chain.discovery import markets_deployed_by

    hint = None
    if (state / "index.sqlite").exists():
        try:
            hint = open_index(state).meta().get("market")
        except GridLedgerError:
            pass
    found = markets_deployed_by(chain, chain.operators.admin.address) if chain.operators else []
    named = [d for d in found if hint is not None and d.market.lower() == hint.lower()]
    chosen = named or (found if len(found) == 1 and hint is None else [])
    if len(chosen) != 1:
        listed = ", ".join(d.market for d in found) or "none"
        raise InputError(f"{path} not found, and the chain cannot say which market it was (markets the admin key "
                         f"deployed on {chain.description}: {listed}): run `gridledger simulate` with this state's "
                         "data and config, which finds its market on the chain, or restore the file")
    chosen[0].save(path)
    logging.getLogger("gridledger").warning("%s was missing: rebuilt it from the chain (market %s, deployed in block %d)",
                                            path, chosen[0].market, chosen[0].block)
    return chosen[0]


def index_path(state: Path) -> Path:
    path = state / "index.sqlite"
    if not path.exists():
        raise InputError(f"no index at {path}: run `gridledger demo` or `gridledger simulate` first, or pass --state")
    return path


def open_index(state: Path):
    from node.index.store import Index

    return Index(index_path(state))


# -- the key that signs ---------------------------------------------------------------------


def read_password(env_var: str = PASSWORD_ENV, prompt: str = "Password: ", confirm: bool = False) -> str:
    """The password from `env_var` if set (scripts, tests), else asked on the terminal.

    With `confirm`, a typed password is asked twice, as for a new key."""
    if env_var in os.environ:
        return os.environ[env_var]
    try:
        password = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise InputError("the passwords do not match; nothing was changed")
    except EOFError as exc:
        raise InputError(f"no password given: run in a terminal or set {env_var}") from exc
    return password


def find_key(keystore: Path | None, account: str | None) -> tuple[Keystore, str]:
    """(keystore, address) of the key that signs: `account` in a keystore directory, or
    the one key of a single keystore file. Needs no password."""
    if keystore is not None and keystore.is_file():
        store = Keystore(keystore.parent)
        found = next((k for k in store.list() if k.path.resolve() == keystore.resolve()), None)
        if found is None:
            raise InputError(f"{keystore} is not a v3 keystore file with an address; see `gridledger account import`")
        if account is not None and found.address.lower() != account.lower():
            raise InputError(f"{keystore} holds the key of {found.address}, not {account}")
        return store, found.address
    store = Keystore(keystore)
    if account is None:
        raise InputError(f"give --account: which key of {store.directory} signs (see `gridledger account list`)")
    return store, store.find(account).address


def unlock_account(keystore: Path | None, account: str | None):
    """The key `find_key` finds, decrypted (an eth_account LocalAccount); the password from
    GRIDLEDGER_PASSWORD or the terminal, asked for only once the key is found."""
    store, address = find_key(keystore, account)
    return store.unlock(address, read_password(prompt=f"Password of {address}: "))
