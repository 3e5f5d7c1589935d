"""``gridledger account new|list|import``: participant keys in encrypted keystore files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from node.cli.common import read_password
from node.intent.keys import DEFAULT_KEYSTORE, KEYSTORE_ENV, PASSWORD_ENV, Keystore, read_text


def add_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Registers ``account new|list|import`` on the CLI's subcommand parsers."""
    account = subparsers.add_parser(
        "account",
        help="manage participant keys (encrypted keystore files)",
        description="Participant keys live in standard encrypted keystore files (Web3 Secret Storage v3), "
        "the format geth and MetaMask export, one file per account. The password is read from "
        f"{PASSWORD_ENV} if set, otherwise asked for on the terminal.",
    )
    commands = account.add_subparsers(title="account commands", metavar="ACTION", required=True)

    new = commands.add_parser("new", help="create a new key and print its address",
                              description="Creates a random key, encrypts it with a password and stores it.")
    _add_keystore_option(new)
    new.set_defaults(run=cmd_account_new)

    listing = commands.add_parser("list", help="list the accounts in the keystore")
    _add_keystore_option(listing)
    listing.set_defaults(run=cmd_account_list)

    imp = commands.add_parser(
        "import",
        help="add a keystore file or a private key to the keystore",
        description="FILE is either a v3 keystore file (as exported by geth or MetaMask; copied in unchanged, "
        "after checking that the password opens it) or a text file holding a hex private key (encrypted with "
        "a new password). Use - to read a private key from standard input; never put a key on the command line.",
    )
    imp.add_argument("file", metavar="FILE", help="keystore file, private key file, or - for standard input")
    _add_keystore_option(imp)
    imp.set_defaults(run=cmd_account_import)
    return account


def _add_keystore_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keystore", type=Path, help=f"keystore directory (default: ${KEYSTORE_ENV} or {DEFAULT_KEYSTORE})")


def cmd_account_new(args: argparse.Namespace) -> int:
    keystore = Keystore(args.keystore)
    address = keystore.new(read_password(prompt="Password for the new key: ", confirm=True))
    print(f"{address}\n  stored in {keystore.directory}; keep the password: without it the key is lost")
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    keystore = Keystore(args.keystore)
    accounts = keystore.list()
    if not accounts:
        print(f"no accounts in {keystore.directory}: create one with `gridledger account new`")
    for i, keyfile in enumerate(accounts):
        print(f"#{i}  {keyfile.address}  {keyfile.path}")
    return 0


def cmd_account_import(args: argparse.Namespace) -> int:
    keystore = Keystore(args.keystore)
    source = Path("<stdin>" if args.file == "-" else args.file)
    text = sys.stdin.read() if args.file == "-" else read_text(source)
    if text.lstrip().startswith("{"):
        address = keystore.import_keyfile_text(text, source, read_password(prompt="Password of the keystore file: "))
    else:
        address = keystore.import_key(text, read_password(prompt="Password for the imported key: ", confirm=True))
    print(f"{address}\n  imported into {keystore.directory}")
    return 0
