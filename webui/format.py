"""Chain integers as people read them: kWh, currency, prices per kWh, short hashes.

The index keeps the chain's units (Wh, minor units of a 6-decimal token, minor
units per kWh); conversion happens only here, at display time, so every number on
a page can be traced back to an integer on chain.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from node.units import UNITS_PER_TOKEN

_NONZERO = re.compile("[1-9]")
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


def kpi(value: float | None, unit: str, currency: str = "EUR") -> str:
    """A KPI (node.metrics.kpis) as the CLI prints it, with its unit: currency amounts
    with the symbol, shares in percent; an undefined ratio (None) as "n/a"."""
    if value is None:
        return "n/a"
    if unit == "currency":
        return _signed(f"{symbol(currency)}{abs(value):,.2f}", value)
    if unit == "share":
        return f"{value * 100:.1f}%"
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("steps", "homes"):
        return f"{value:,.0f}"
    return f"{value:,.2f} {unit}" if unit not in ("ratio", "index") else f"{value:.2f}"


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


def zone(name: str | None) -> timezone | ZoneInfo:
    """The market's time zone (index meta "timezone", an IANA name); UTC if unknown."""
    try:
        return ZoneInfo(name) if name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def when(moment: datetime | None, tz: str | None = None) -> str:
    """A moment in the market's local time, with its zone: "2026-06-01 14:15 CEST"."""
    if not moment:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(zone(tz))
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC")


def number(value: float | None, digits: int = 2) -> str:
    """`value` rounded to `digits`, never "-0.00": a sign only on what shows a nonzero digit."""
    if value is None:
        return "—"
    return _signed(f"{abs(value):,.{digits}f}", value)


def _signed(text: str, value: float) -> str:
    # -0.004 kWh rounds to 0.00: a minus in front of nothing misleads.
    return "-" + text if value < 0 and _NONZERO.search(text) else text


def register(app) -> None:
    app.add_template_filter(kwh)
    app.add_template_filter(money)
    app.add_template_filter(price)
    app.add_template_global(kpi)
    app.add_template_filter(short_hash)
    app.add_template_filter(number)
    # Times in the market's zone (the index meta's "timezone"), read per request.
    app.add_template_filter(lambda moment: when(moment, _market_zone()), "when")
    app.add_template_filter(lambda iso: when(_parse(iso), _market_zone()), "iso_when")
    app.add_template_filter(lambda seconds: when(datetime.fromtimestamp(int(seconds), timezone.utc), _market_zone()), "unix_when")
    app.add_template_global(percent)


def _parse(iso: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(iso) if iso else None
    except ValueError:
        return None


def _market_zone() -> str | None:
    from webui.context import get_meta  # request-bound; format itself stays pure

    return get_meta().get("timezone")
