"""Participant pages: the wallet, its events, and every settlement it took part in."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from webui.cache import cached, cached_page
from webui.context import get_index, get_meta
from webui.params import whole
from webui.series import participant_charts

bp = Blueprint("participants", __name__, url_prefix="/participants")


@bp.get("/")
@cached_page
def list_all():
    return render_template("participants.html", participants=cached(("participants",), get_index().participants))


@bp.get("/<pid>")
@cached_page
def show(pid: str):
    pid = whole(pid, "participant id")
    view = cached(("participant_view", pid), lambda: _participant_view(pid))
    if view is None:
        abort(404, f"there is no participant {pid}")
    return render_template("participant.html", **view)


def _participant_view(pid: int) -> dict | None:
    idx = get_index()
    participant = idx.participant(pid)
    if participant is None:
        return None
    intervals = {r["interval"]: r for r in idx.intervals(limit=max(idx.summary()["intervals"], 1))}
    wallet_events = idx.wallet_events(pid)
    if pid == 0:
        # The grid has no settlement entries: its side of each interval is the
        # settlement's grid flows and grid amount.
        history = [
            {"interval": k, "grid_wh": r["grid_export_wh"] - r["grid_import_wh"], "p2p_wh": 0,
             "amount": r["grid_amount"], "p2p_price": r["p2p_price"], "tx_hash": r["tx_hash"],
             "soc_wh": None, "capacity_wh": None}
            for k, r in intervals.items()
        ]
    else:
        history = idx.participant_history(pid)
    balances = running_balances(history, wallet_events, intervals)
    rows = [h | {"balance": b, "start": intervals.get(h["interval"], {}).get("start")} for h, b in zip(history, balances)]
    charts = participant_charts(history, balances, get_meta(), [r["start"] for r in rows]) if history else None
    return {"p": participant, "history": rows, "wallet_events": wallet_events, "charts": charts}


def running_balances(history: list[dict], wallet_events: list[dict], intervals: dict[int, dict]) -> list[int]:
    """The wallet balance right after each interval in `history`: its settlements so far
    plus the deposits and withdrawals mined no later than that interval's block."""
    events = sorted((e["block"], e["amount"] if e["kind"] == "deposit" else -e["amount"]) for e in wallet_events)
    balances, balance, i = [], 0, 0
    for h in history:
        block = intervals.get(h["interval"], {}).get("block")
        while i < len(events) and block is not None and events[i][0] <= block:
            balance += events[i][1]
            i += 1
        balance += h["amount"]
        balances.append(balance)
    return balances
