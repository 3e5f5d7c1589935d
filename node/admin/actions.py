"""Admin and grid-operator actions as market calls: what may be relayed, with the role
each needs; building, encoding and signing one action's transaction.

An action *is* an Ethereum transaction signed by the role holder (the contract checks
``msg.sender``'s role), so nothing here holds a key: `sign_transaction` signs with the
account the caller unlocked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_account.signers.local import LocalAccount
from eth_utils import is_hex_address, keccak, to_checksum_address

from node.chain.build import load_artifact
from node.chain.chunks import MAX_TX_GAS
from node.chain.market import REGISTER_GAS_PER_PARTICIPANT
from node.chain.roles import role_id, role_name
from node.errors import InputError
from node.intent.amounts import price_units, whole_wh

MAX_RELAYED_BYTES = 16 * 1024
WH_MAX = (1 << 48) - 1  # a share's capacity on chain (IntervalWord.WH_MAX)  # an admin transaction is a few hundred bytes; a batch of registrations more


# -- what may be relayed -------------------------------------------------------------


@dataclass(frozen=True)
class AdminFunction:
    """A market function the relay takes, with the role its caller needs (None: the
    admin role of the role it grants or revokes, read with getRoleAdmin) and its gas."""

    name: str
    role: str | None
    gas: Callable[[tuple], int]


ADMIN_FUNCTIONS: dict[str, AdminFunction] = {f.name: f for f in (
    AdminFunction("setCapacity", "GRID_OPERATOR_ROLE", lambda args: 100_000),
    AdminFunction("setDefaultCapacity", "GRID_OPERATOR_ROLE", lambda args: 80_000),
    AdminFunction("setIntervalPrices", "GRID_OPERATOR_ROLE", lambda args: 80_000),
    AdminFunction("register", "DEFAULT_ADMIN_ROLE",
                  lambda args: 60_000 + REGISTER_GAS_PER_PARTICIPANT + 50 * len(args[3].encode())),
    AdminFunction("registerBatch", "DEFAULT_ADMIN_ROLE", lambda args: min(
        MAX_TX_GAS, 60_000 + REGISTER_GAS_PER_PARTICIPANT * len(args[0]) + 50 * sum(len(n.encode()) for n in args[3]))),
    AdminFunction("updateParticipant", "DEFAULT_ADMIN_ROLE", lambda args: 80_000),
    AdminFunction("registerShare", "DEFAULT_ADMIN_ROLE",
                  lambda args: 90_000 + REGISTER_GAS_PER_PARTICIPANT + 50 * len(args[3].encode())),
    # The contract also takes the admin; the relay asks for the role the action is for.
    AdminFunction("scheduleStorageFee", "GRID_OPERATOR_ROLE", lambda args: 150_000),
    AdminFunction("grantRole", None, lambda args: 100_000),
    AdminFunction("revokeRole", None, lambda args: 100_000),
)}


@dataclass(frozen=True)
class AbiFunction:
    """One function of the contract ABI: its selector and argument types and names."""

    name: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.types)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]


def abi_functions(abi: list[dict]) -> dict[bytes, AbiFunction]:
    found = {}
    for entry in abi:
        if entry.get("type") == "function":
            inputs = entry["inputs"]
            f = AbiFunction(entry["name"], tuple(_abi_type(a) for a in inputs), tuple(a["name"] for a in inputs))
            found[f.selector] = f
    return found


def _abi_type(arg: dict) -> str:
    if arg["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in arg["components"]) + ")" + arg["type"][len("tuple"):]
    return arg["type"]


def market_functions() -> dict[str, AbiFunction]:
    """The relayable functions present in the compiled market contract, by name."""
    return {f.name: f for f in abi_functions(load_artifact("EnergyMarket")["abi"]).values() if f.name in ADMIN_FUNCTIONS}


# -- actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One call of an admin function with its arguments, as the chain takes them."""

    function: str
    args: tuple

    def describe(self, names: Sequence[str] = ()) -> str:
        shown = [show_value(v) for v in self.args]
        return f"{self.function}({', '.join(f'{n}={v}' for n, v in zip(names, shown)) if names else ', '.join(shown)})"


def set_capacity(interval: int, import_kwh: str | int, export_kwh: str | int) -> Action:
    """The grid operator's capacity for one interval not yet started, given in kWh."""
    return Action("setCapacity", (_uint(interval, 64, "interval"),
                                  _uint(whole_wh(import_kwh, "import capacity"), 64, "import capacity (Wh)"),
                                  _uint(whole_wh(export_kwh, "export capacity"), 64, "export capacity (Wh)")))


def set_default_capacity(import_kwh: str | int, export_kwh: str | int) -> Action:
    """The capacity of every interval without its own, in kWh."""
    return Action("setDefaultCapacity", (_uint(whole_wh(import_kwh, "import capacity"), 64, "import capacity (Wh)"),
                                         _uint(whole_wh(export_kwh, "export capacity"), 64, "export capacity (Wh)")))


def set_interval_prices(interval: int, import_price: str | int, export_price: str | int) -> Action:
    """The grid operator's import and export tariffs of one interval (dynamic prices, per
    kWh in the currency); the contract takes them only a notice period ahead."""
    return Action("setIntervalPrices", (_uint(interval, 64, "interval"),
                                        _uint(price_units(import_price, "import price"), 64, "import price (units)"),
                                        _uint(price_units(export_price, "export price"), 64, "export price (units)")))


def register_participants(owners: Sequence[str], meters: Sequence[str], zones: Sequence[int],
                          names: Sequence[str]) -> Action:
    """Registers participants (ids in the order given), each with the key its meter signs
    readings with; one is `register`, more `registerBatch`."""
    if not owners or not len(owners) == len(meters) == len(zones) == len(names):
        raise InputError(f"give one meter, one zone and one name per owner (got {len(owners)} owners, "
                         f"{len(meters)} meters, {len(zones)} zones, {len(names)} names)")
    owners = [parse_address(o, "owner") for o in owners]
    meters = [parse_address(m, "meter") for m in meters]
    zones = [_uint(z, 16, "zone") for z in zones]
    names = [str(n) for n in names]
    if len(owners) == 1:
        return Action("register", (owners[0], meters[0], zones[0], names[0]))
    return Action("registerBatch", (owners, meters, zones, names))


def register_share(owner: str, meter: str, zone: int, name: str, battery: int, capacity_kwh: str | int,
                   stored_kwh: str | int = "0", charge_efficiency: str | float = "0.95",
                   discharge_efficiency: str | float = "0.95") -> Action:
    """Registers a home's account in shared battery `battery` (SharedBatteryModule.
    registerShare): a new participant holding `capacity_kwh` of the battery (whole Wh,
    more than 0 and at most 2^48 - 1 Wh), `stored_kwh` of it now, in a battery of the
    given efficiencies (fractions in (0, 1], whole millionths)."""
    capacity_wh = whole_wh(capacity_kwh, "share capacity")
    if not 0 < capacity_wh <= WH_MAX:
        raise InputError(f"share capacity must be more than 0 and at most {WH_MAX} Wh, got {capacity_wh} Wh")
    stored_wh = whole_wh(stored_kwh, "stored energy")
    if not 0 <= stored_wh <= capacity_wh:
        raise InputError(f"stored energy must be between 0 and the share's {capacity_wh} Wh, got {stored_wh} Wh")
    if not str(name).strip():
        raise InputError("name must not be empty: give the name the UI shows, e.g. home-01@school")
    return Action("registerShare", (parse_address(owner, "owner"), parse_address(meter, "meter"), _uint(zone, 16, "zone"),
                                    str(name).strip(), _uint(battery, 32, "battery"), capacity_wh, stored_wh,
                                    _ppm(charge_efficiency, "charge efficiency"),
                                    _ppm(discharge_efficiency, "discharge efficiency")))


def _ppm(value: str | float, what: str) -> int:
    """A fraction in (0, 1] as whole millionths, as the contract takes it."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a fraction in (0, 1], got {value!r}") from None
    ppm = round(fraction * 1_000_000)
    if not 0 < fraction <= 1 or abs(ppm - fraction * 1_000_000) > 1e-6:
        raise InputError(f"{what} must be a fraction in (0, 1] with at most 6 decimals, got {value!r}")
    return int(ppm)


def schedule_storage_fee(from_interval: int, fee_per_kwh: str | int, operator: int) -> Action:
    """A storage fee (per kWh an account in a shared battery takes in, in the currency)
    paid to participant `operator`, from `from_interval` on (SharedBatteryModule.
    scheduleStorageFee): a new terms version with the tariffs of the one before, which
    the contract takes only with the terms' notice."""
    return Action("scheduleStorageFee", (_uint(from_interval, 64, "from interval"),
                                         _uint(price_units(fee_per_kwh, "storage fee"), 32, "storage fee (units per kWh)"),
                                         _uint(operator, 32, "storage operator (participant id)")))


def grant_role(role: str, account: str) -> Action:
    return Action("grantRole", (role_id(role), parse_address(account, "account")))


def revoke_role(role: str, account: str) -> Action:
    return Action("revokeRole", (role_id(role), parse_address(account, "account")))


def encode_call(function: AbiFunction, args: tuple) -> bytes:
    try:
        return function.selector + abi_encode(list(function.types), list(args))
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"cannot encode {function.signature} with {args!r}: {exc}") from exc


def encode_action(action: Action) -> bytes:
    """The calldata of `action`, from the compiled contract's ABI."""
    functions = market_functions()
    if action.function not in functions:
        raise InputError(f"the market contract has no {action.function}")
    return encode_call(functions[action.function], action.args)


def sign_transaction(account: LocalAccount, fields: dict[str, Any]) -> bytes:
    """The raw signed type-2 transaction of prepared `fields` (as AdminRelay.prepare
    or GET /api/admin/prepare give them)."""
    tx = {k: fields[k] for k in ("type", "chainId", "nonce", "to", "data", "value", "gas", "maxFeePerGas",
                                 "maxPriorityFeePerGas")}
    tx["type"] = 2
    return bytes(account.sign_transaction(tx).raw_transaction)


def parse_raw(raw: str | bytes) -> bytes:
    """The bytes of a raw transaction given as 0x-hex (or bytes); InputError otherwise."""
    if isinstance(raw, (bytes, bytearray)):
        data = bytes(raw)
    elif isinstance(raw, str) and raw.strip().startswith("0x"):
        try:
            data = bytes.fromhex(raw.strip()[2:])
        except ValueError as exc:
            raise InputError("the raw transaction is not valid hex") from exc
    else:
        raise InputError('the raw transaction must be a 0x-prefixed hex string (eth_signTransaction\'s "raw")')
    if not data:
        raise InputError("the raw transaction is empty")
    if len(data) > MAX_RELAYED_BYTES:
        raise InputError(f"the raw transaction is {len(data)} bytes; an admin action needs far fewer (at most "
                         f"{MAX_RELAYED_BYTES})")
    return data


def jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, str) and len(value) == 42 and is_hex_address(value):
        return to_checksum_address(value)  # eth_abi decodes addresses in lower case
    return value


def show_value(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return role_name(value) if len(value) == 32 else "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(jsonable(value))


def _uint(value: Any, bits: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if not 0 <= value < 1 << bits:
        raise InputError(f"{what} must be between 0 and {(1 << bits) - 1}, got {value}")
    return value


def parse_address(text: Any, what: str = "address") -> str:
    if not isinstance(text, str) or not is_hex_address(text.strip()):
        raise InputError(f"{what} must be an address (0x and 40 hex digits), got {text!r}")
    return to_checksum_address(text.strip())
