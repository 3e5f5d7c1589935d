"""Keystore files: the standard v3 format, interoperable, never overwritten, owner-only."""

from __future__ import annotations

import argparse
import getpass
import io
import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from node.intent import keys
from node.errors import InputError
from node.intent.keys import Keystore
from node.cli.accounts import add_commands as add_account_commands
from node.cli.common import read_password

KEY = "0x" + "4c" * 32
# The Web3 Secret Storage spec's own PBKDF2 test vector (password "testpassword"): what
# any conforming wallet writes, with no "address" field.
SPEC_VECTOR = {
    "crypto": {
        "cipher": "aes-128-ctr", "cipherparams": {"iv": "6087dab2f9fdbbfaddc31a909735c1e6"},
        "ciphertext": "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf": "pbkdf2",
        "kdfparams": {"c": 262144, "dklen": 32, "prf": "hmac-sha256",
                      "salt": "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"},
        "mac": "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
SPEC_KEY = "0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real scrypt, tiny cost: the format is identical, only the work factor differs."""
    monkeypatch.setattr(keys, "KDF", ("scrypt", 2))
    monkeypatch.delenv(keys.PASSWORD_ENV, raising=False)
    monkeypatch.delenv(keys.KEYSTORE_ENV, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keystore")


def test_new_key_unlocks_with_its_password(store: Keystore) -> None:
    address = store.new("correct horse")
    assert store.unlock(address, "correct horse").address == address
    assert [k.address for k in store.list()] == [address]


def test_imported_private_key_round_trips(store: Keystore) -> None:
    address = store.import_key(KEY, "pw")
    assert address == Account.from_key(KEY).address
    assert store.unlock(address.lower(), "pw").key.hex() == KEY[2:]


def test_key_files_are_named_like_geth_and_readable_only_by_the_owner(store: Keystore) -> None:
    address = store.import_key(KEY, "pw")
    (keyfile,) = store.list()
    assert keyfile.path.name.startswith("UTC--") and keyfile.path.name.endswith("--" + address[2:].lower())
    assert stat.S_IMODE(keyfile.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert json.loads(keyfile.path.read_text())["version"] == 3


def test_keystore_made_by_eth_account_is_imported_and_unlocks(store: Keystore, tmp_path: Path) -> None:
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(Account.encrypt(KEY, "wallet pw", kdf="pbkdf2", iterations=1000)))
    address = store.import_file(exported, "wallet pw")
    assert store.unlock(address, "wallet pw").key.hex() == KEY[2:]
    (keyfile,) = store.list()
    assert json.loads(keyfile.path.read_text()) == json.loads(exported.read_text())  # copied unchanged


def test_spec_test_vector_without_address_is_imported_with_its_password(store: Keystore, tmp_path: Path) -> None:
    exported = tmp_path / "vector.json"
    exported.write_text(json.dumps(SPEC_VECTOR))
    with pytest.raises(InputError, match="give its password"):
        store.import_file(exported)
    address = store.import_file(exported, "testpassword")
    assert store.unlock(address, "testpassword").key.hex() == SPEC_KEY[2:]


def test_files_written_by_this_keystore_load_in_plain_eth_account(store: Keystore) -> None:
    address = store.import_key(KEY, "pw")
    (keyfile,) = store.list()
    assert Account.from_key(Account.decrypt(keyfile.path.read_text(), "pw")).address == address


def test_wrong_password_says_so(store: Keystore) -> None:
    address = store.new("right")
    with pytest.raises(InputError, match="wrong password for " + address):
        store.unlock(address, "wrong")


def test_import_with_wrong_password_stores_nothing(store: Keystore, tmp_path: Path) -> None:
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(Account.encrypt(KEY, "right", kdf="pbkdf2", iterations=1000)))
    with pytest.raises(InputError, match="wrong password"):
        store.import_file(exported, "wrong")
    assert store.list() == []


def test_unknown_address_says_how_to_add_it(store: Keystore) -> None:
    with pytest.raises(InputError, match="account import"):
        store.unlock(Account.from_key(KEY).address, "pw")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        (json.dumps({"version": 1}), "version"),
        (json.dumps({**SPEC_VECTOR, "crypto": {**SPEC_VECTOR["crypto"], "cipher": "aes-256-gcm"}}), "cipher"),
        (json.dumps({**SPEC_VECTOR, "crypto": {**SPEC_VECTOR["crypto"], "mac": None}}), "mac"),
    ],
)
def test_import_rejects_files_that_are_not_v3_keystores(store: Keystore, tmp_path: Path, content: str,
                                                       problem: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(InputError, match=problem):
        store.import_file(bad)
    assert store.list() == []


def test_file_whose_key_does_not_match_its_address_is_refused(store: Keystore, tmp_path: Path) -> None:
    keyfile = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=1000)
    keyfile["address"] = Account.create().address[2:]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(keyfile))
    with pytest.raises(InputError, match="do not use this file"):
        store.import_file(forged, "pw")


def test_importing_the_same_key_twice_never_overwrites(store: Keystore) -> None:
    store.import_key(KEY, "first")
    with pytest.raises(InputError, match="already in the keystore"):
        store.import_key(KEY, "second")
    (keyfile,) = store.list()
    assert Account.decrypt(keyfile.path.read_text(), "first")


def test_malformed_private_key_and_empty_password_are_refused(store: Keystore) -> None:
    with pytest.raises(InputError, match="64 hex digits"):
        store.import_key("0x1234", "pw")
    with pytest.raises(InputError, match="out of range"):
        store.import_key("0x" + "00" * 32, "pw")
    with pytest.raises(InputError, match="empty password"):
        store.import_key(KEY, "")


def test_list_skips_files_that_are_not_keys(store: Keystore) -> None:
    address = store.new("pw")
    (store.directory / "README").write_text("notes")
    assert [k.address for k in store.list()] == [address]


def test_keystore_directory_defaults_to_home_and_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    assert Keystore().directory == Path("~/.gridledger/keystore").expanduser()
    monkeypatch.setenv(keys.KEYSTORE_ENV, str(tmp_path))
    assert Keystore().directory == tmp_path


def test_users_get_standard_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # away from the cheap test setting
    assert keys.KDF == ("scrypt", None)


def test_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSWORD", "from env")
    assert read_password() == "from env"


def test_missing_terminal_and_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_terminal(prompt: str = "") -> str:
        raise EOFError
    monkeypatch.setattr(getpass, "getpass", no_terminal)
    with pytest.raises(InputError, match="GRIDLEDGER_PASSWORD"):
        read_password()


# -- command line -------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gridledger")
    add_account_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_account_commands_create_list_and_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSWORD", "pw")
    ks = str(tmp_path / "ks")
    assert _cli(["account", "new", "--keystore", ks]) == 0
    created = capsys.readouterr().out.split()[0]

    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    assert _cli(["account", "import", str(key_file), "--keystore", ks]) == 0
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(Account.encrypt("0x" + "5d" * 32, "pw", kdf="pbkdf2", iterations=1000)))
    assert _cli(["account", "import", str(exported), "--keystore", ks]) == 0
    capsys.readouterr()

    assert _cli(["account", "list", "--keystore", ks]) == 0
    listed = capsys.readouterr().out
    for address in (created, Account.from_key(KEY).address, Account.from_key("0x" + "5d" * 32).address):
        assert address in listed


def test_account_import_reads_a_private_key_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSWORD", "pw")
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY))
    assert _cli(["account", "import", "-", "--keystore", str(tmp_path)]) == 0
    assert Keystore(tmp_path).unlock(Account.from_key(KEY).address, "pw")


def test_account_list_on_empty_keystore_says_how_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["account", "list", "--keystore", str(tmp_path / "none")]) == 0
    assert "gridledger account new" in capsys.readouterr().out


def test_account_help_describes_the_format() -> None:
    parser = argparse.ArgumentParser(prog="gridledger")
    account = add_account_commands(parser.add_subparsers(required=True))
    assert "keystore" in account.format_help() and "MetaMask" in account.format_help()
