"""Chain integers as people read them: kWh, currency, prices per kWh, short hashes.

The index keeps the chain's units (Wh, minor units of a 6-decimal token, minor
units per kWh); conversion happens only here, at display time, so every number on
a page can be traced back to an integer on chain.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from markupsafe import Markup, escape

from node.units import UNITS_PER_TOKEN

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}


def symbol(currency: str) -> str:
    return _SYMBOLS.get(currency, currency + " ")


def kwh(wh: int | None, digits: int = 2) -> str:
    if wh is None:
        return "—"
    return _signed(f"{abs(wh) / 1000:,.{digits}f}", wh) + " kWh"


def money(units: int | None, currency: str = "EUR", digits: int = 2) -> str:
    if units is None:
        return "—"
    return _signed(f"{symbol(currency)}{abs(units) / UNITS_PER_TOKEN:,.{digits}f}", units)


def price(units_per_kwh: int | None, currency: str = "EUR") -> str:
    if units_per_kwh is None:
        return "—"
    return f"{symbol(currency)}{units_per_kwh / UNITS_PER_TOKEN:.4f}/kWh"


def percent(part: float | None, whole: float | None, digits: int = 1) -> str:
    if part is None or not whole:
        return "—"
    return _signed(f"{abs(part) / whole * 100:.{digits}f}", part) + "%"


def short_hash(value: str | None, keep: int = 6) -> Markup:
    """The hash shortened for tables, whole in the title (hover) and for copying."""
    if not value:
        return Markup("—")
    prefix = 2 if value[:2].lower() == "0x" else 0
    text = value if len(value) <= prefix + 2 * keep else f"{value[:prefix + keep]}…{value[-keep:]}"
    return Markup('<span class="hash" title="{0}">{1}</span>').format(escape(value), escape(text))


def interval_start(k: int, meta: dict[str, str], start: str | None = None) -> datetime | None:
    """When interval `k` starts: its committed inputs say so; without them, the
    market epoch and interval length in the index meta do."""
    if start:
        try:
            return datetime.fromisoformat(start)
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(meta["start"]) + timedelta(minutes=int(meta["interval_minutes"]) * k)
    except (KeyError, ValueError, OverflowError):  # OverflowError: an interval beyond the year 9999
        return None


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "—"


def _signed(text: str, value: float) -> str:
    return "-" + text if value < 0 else text


def register(app) -> None:
    app.add_template_filter(kwh)
    app.add_template_filter(money)
    app.add_template_filter(price)
    app.add_template_filter(short_hash)
    app.add_template_filter(when)
    app.add_template_global(percent)
