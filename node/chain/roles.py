"""The market's roles (OpenZeppelin AccessControl): their bytes32 ids and names."""

from __future__ import annotations

from eth_utils import keccak

from node.errors import InputError

ROLES: dict[str, bytes] = {
    "DEFAULT_ADMIN_ROLE": bytes(32),
    "ORACLE_ROLE": keccak(text="ORACLE_ROLE"),
    "GRID_OPERATOR_ROLE": keccak(text="GRID_OPERATOR_ROLE"),
}
_ROLE_ALIASES = {"ADMIN": "DEFAULT_ADMIN_ROLE", "DEFAULT_ADMIN": "DEFAULT_ADMIN_ROLE", "ORACLE": "ORACLE_ROLE",
                 "GRID_OPERATOR": "GRID_OPERATOR_ROLE", "GRID-OPERATOR": "GRID_OPERATOR_ROLE"}


def role_id(role: str | bytes) -> bytes:
    """A role's bytes32 id from its name (``GRID_OPERATOR_ROLE``, ``grid-operator``,
    ``admin``, ...) or its 0x-hex id."""
    if isinstance(role, (bytes, bytearray)) and len(role) == 32:
        return bytes(role)
    text = str(role).strip()
    if text.startswith("0x") and len(text) == 66:
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    name = text.upper().replace("-", "_")
    name = _ROLE_ALIASES.get(name, name)
    if not name.endswith("_ROLE"):
        name += "_ROLE"
    if name not in ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(ROLES)} (or admin, oracle, grid-operator)")
    return ROLES[name]


def role_name(role: bytes) -> str:
    for name, value in ROLES.items():
        if value == bytes(role):
            return name
    return "0x" + bytes(role).hex()
