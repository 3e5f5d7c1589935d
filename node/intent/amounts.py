"""People's units to the chain's integers, for signed orders and mandates.

People write kWh, prices per kWh in the currency, and times; the signed messages hold
the chain's integers (Wh, token minor units per kWh, unix seconds). The conversions
are exact or refused, never rounded, and the CLI and the web UI's order form both use
them, so a form and a command with the same numbers sign the same message.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from node.errors import InputError
from node.units import BUY, PPM, SELL, UNITS_PER_TOKEN

if TYPE_CHECKING:
    from node.intent.signing import Mandate, Order

SIDES = {"buy": BUY, "sell": SELL}
DEFAULT_VALID_FOR_MINUTES = 60


# Far beyond anything a signed message holds (uint64 < 2e19), and far inside what
# Decimal computes without overflowing: "1e999999" kWh is refused, not multiplied.
_LARGEST = Decimal("1e30")
# datetime's last second (9999-12-31T23:59:59Z): later times cannot be shown or compared.
LATEST_TIME = 253_402_300_799


def _decimal(text: str | float | int, what: str) -> Decimal:
    shown = repr(text) if len(str(text)) <= 40 else repr(str(text)[:37] + "...")
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError) as exc:
        raise InputError(f"{what} must be a number, got {shown}", field=what) from exc
    if not value.is_finite() or value < 0 or value > _LARGEST:
        raise InputError(f"{what} must be a finite number of at least 0 and at most {_LARGEST:.0e}, got {shown}",
                         field=what)
    return value


def energy_wh(kwh: str | float | int, what: str = "energy") -> int:
    """kWh as typed (``"2.5"``) to whole Wh, more than 0; refuses what would need rounding."""
    wh = whole_wh(kwh, what)
    if wh == 0:
        raise InputError(f"{what} must be more than 0 kWh")
    return wh


def whole_wh(kwh: str | float | int, what: str = "energy") -> int:
    """kWh as typed to whole Wh, 0 included (a grid capacity may be 0)."""
    wh = _decimal(kwh, what) * 1000
    if wh != wh.to_integral_value():
        raise InputError(f"{what} {kwh} kWh is not a whole number of Wh; give at most 3 decimals")
    return int(wh)


def price_units(per_kwh: str | float | int, what: str = "limit price") -> int:
    """A price per kWh in the currency (``"0.25"``) to token minor units per kWh."""
    units = _decimal(per_kwh, what) * UNITS_PER_TOKEN
    if units != units.to_integral_value():
        raise InputError(f"{what} {per_kwh} per kWh has more decimals than the settlement token "
                         f"({len(str(UNITS_PER_TOKEN)) - 1})")
    return int(units)


def percent_ppm(percent: str | float | int, what: str) -> int:
    ppm = _decimal(percent, what) * (PPM // 100)
    if ppm != ppm.to_integral_value() or ppm > PPM:
        raise InputError(f"{what} must be a percentage from 0 to 100 with at most 4 decimals, got {percent!r}")
    return int(ppm)


def unix_time(iso: str, what: str = "expiry") -> int:
    """An ISO 8601 time to unix seconds; without a zone it is UTC, as on the chain."""
    try:
        moment = datetime.fromisoformat(iso.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = int(moment.timestamp())
    except (AttributeError, ValueError, OverflowError) as exc:
        raise InputError(f"{what} must be an ISO 8601 time like 2026-06-01T12:00:00Z, got {iso!r}", field=what) from exc
    if not 0 <= seconds <= LATEST_TIME:
        raise InputError(f"{what} must be between 1970-01-01 and 9999-12-31T23:59:59Z (UTC), got {iso!r}", field=what)
    return seconds


def until(expiry_iso: str | None, valid_for_minutes: float | None, now: int, what: str = "expiry") -> int:
    """The expiry from an explicit time or a duration from `now` (the default: an hour)."""
    if expiry_iso is not None and valid_for_minutes is not None:
        raise InputError(f"give either the {what} time or how long it is valid for, not both")
    if expiry_iso is not None:
        return unix_time(expiry_iso, what)
    minutes = DEFAULT_VALID_FOR_MINUTES if valid_for_minutes is None else valid_for_minutes
    if minutes <= 0:
        raise InputError(f"the validity must be more than 0 minutes, got {minutes}")
    return now + int(minutes * 60)


def fresh_nonce() -> int:
    """Milliseconds since 1970: a nonce that does not repeat for one participant signing
    by hand, and stays below 2**53 so browsers' JSON keeps it exact."""
    return time.time_ns() // 1_000_000


def side_code(side: str | int) -> int:
    if isinstance(side, str) and side.lower() in SIDES:
        return SIDES[side.lower()]
    if side in (BUY, SELL):
        return int(side)
    raise InputError(f"side must be buy or sell, got {side!r}")


def build_order(participant: int, side: str | int, energy_kwh: str, limit_price_per_kwh: str, interval: int,
                expiry: int, nonce: int) -> Order:
    """The Order a participant means by these human-unit values."""
    # Here, not at the top: eth-account takes most of a second and the CLI's parser reads this module.
    from node.intent.signing import Order

    return Order(participant=participant, interval=interval, side=side_code(side), energy_wh=energy_wh(energy_kwh),
                 limit_price=price_units(limit_price_per_kwh), expiry=expiry, nonce=nonce)


def build_mandate(participant: int, max_buy_price: str, min_sell_price: str, min_soc_percent: str,
                  max_soc_percent: str, valid_until: int, nonce: int, valid_from: int = 0,
                  max_energy_kwh: str | None = None) -> Mandate:
    """A mandate from what a participant types; `max_energy_kwh` None: no energy bound
    (the meter-signed readings still bound what can be settled)."""
    from node.intent.signing import Mandate

    extra = {} if max_energy_kwh is None else {"max_energy_wh": whole_wh(max_energy_kwh, "most energy per interval")}
    return Mandate(participant=participant, max_buy_price=price_units(max_buy_price, "highest buy price"),
                   min_sell_price=price_units(min_sell_price, "lowest sell price"),
                   min_soc_ppm=percent_ppm(min_soc_percent, "lowest state of charge"),
                   max_soc_ppm=percent_ppm(max_soc_percent, "highest state of charge"),
                   valid_until=valid_until, nonce=nonce, valid_from=valid_from, **extra)
