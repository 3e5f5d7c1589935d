"""Every table and chart of the UI as a CSV download, in the chain's units.

Columns carry their unit in the name as the JSON API's keys do (_wh, _units,
_units_per_kwh), so a spreadsheet of a download can be checked against the chain.
A chart's CSV holds the series it draws (and the others of its page).
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

from flask import Blueprint, Response, abort, request

from webui.auction import auction_view
from webui.context import get_index, get_meta, whole_arg
from webui.flowview import flow_view
from webui.participants import TOTALS, home_rows, participant_table
from webui.series import chart_window, time_series

bp = Blueprint("export", __name__, url_prefix="/export")

INTERVAL_COLUMNS = (
    ("interval", "interval"), ("start", "start"), ("block", "block"), ("tx_hash", "tx_hash"), ("inputs_hash", "inputs_hash"),
    ("buy_price_units_per_kwh", "buy_price"), ("sell_price_units_per_kwh", "sell_price"),
    ("p2p_price_units_per_kwh", "p2p_price"), ("pay_as_bid", "pay_as_bid"), ("grid_import_wh", "grid_import_wh"),
    ("grid_export_wh", "grid_export_wh"), ("import_capacity_wh", "import_capacity_wh"),
    ("export_capacity_wh", "export_capacity_wh"), ("p2p_wh", "p2p_wh"), ("grid_amount_units", "grid_amount"),
    ("participants", "participants"), ("gas_used", "gas_used"),
)
HOME_COLUMNS = (
    ("interval", "interval"), ("start", "start"), ("load_wh", "load_wh"), ("pv_wh", "pv_wh"), ("grid_wh", "grid_wh"),
    ("baseline_grid_wh", "baseline_grid_wh"), ("p2p_wh", "p2p_wh"), ("amount_units", "amount"),
    ("balance_units", "balance_units"), ("baseline_balance_units", "baseline_balance_units"),
    ("baseline_cost_units", "baseline_cost"), ("soc_wh", "soc_wh"), ("baseline_soc_wh", "baseline_soc_wh"),
    ("battery_capacity_wh", "capacity_wh"), ("p2p_price_units_per_kwh", "p2p_price"), ("tx_hash", "tx_hash"),
)


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A CSV attachment: `header`, then `rows` (None as an empty cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _columns(filename: str, columns: Sequence[tuple[str, str]], rows: Iterable[dict]) -> Response:
    return csv_response(filename, [c for c, _ in columns], ([r.get(key) for _, key in columns] for r in rows))



def _window() -> tuple[int, int] | None:
    """?from= &to= (settled intervals; default: every settled interval)."""
    return chart_window(get_index(), whole_arg("from"), whole_arg("to"), limit=10**9)


@bp.get("/intervals.csv")
def intervals():
    idx = get_index()
    return _columns("intervals.csv", INTERVAL_COLUMNS, idx.intervals(limit=max(idx.summary()["intervals"], 1)))


@bp.get("/intervals/<int:k>.csv")
def interval_entries(k: int):
    """Interval k's settlement entries, with each home's net energy out of the pool."""
    interval = get_index().interval(k)
    if interval is None:
        abort(404, f"interval {k} is not settled")
    return csv_response(f"interval-{k}.csv", ["interval", "participant", "name", "grid_wh", "p2p_wh", "net_from_pool_wh", "amount_units"],
                        ([k, e["participant"], e["name"], e["grid_wh"], e["p2p_wh"], e["grid_wh"] + e["p2p_wh"], e["amount"]]
                         for e in interval["entries"]))


@bp.get("/intervals/<int:k>/flows.csv")
def interval_flows(k: int):
    """The rows of interval k's flow drawing (homes, or groups of homes, as drawn)."""
    idx = get_index()
    interval = idx.interval(k)
    if interval is None:
        abort(404, f"interval {k} is not settled")
    view = flow_view(idx.participants(), interval, request.args.get("group"))
    return csv_response(f"interval-{k}-flows.csv",
                        ["interval", "row", "participant", "homes", "settled", "into_pool_wh", "out_of_pool_wh", "grid_wh", "p2p_wh"],
                        ([k, r.label, r.pid, r.homes, r.settled, r.supply_wh, r.draw_wh, r.grid_wh, r.p2p_wh]
                         for r in view.rows if not r.caption))


@bp.get("/intervals/<int:k>/orders.csv")
def interval_orders(k: int):
    interval = get_index().interval(k)
    if interval is None:
        abort(404, f"interval {k} is not settled")
    auction = auction_view(interval)
    if auction is None:
        abort(404, f"interval {k} did not clear by auction: it has no orders")
    keys = ("order_id", "participant", "side", "energy_wh", "effective_limit", "p2p_wh", "p2p_price", "grid_wh", "netted_wh", "unfilled_wh")
    header = [key.replace("effective_limit", "limit_units_per_kwh").replace("p2p_price", "p2p_price_units_per_kwh") for key in keys]
    return csv_response(f"interval-{k}-orders.csv", header, ([o[key] for key in keys] for o in auction["orders"]))


@bp.get("/participants.csv")
def participants():
    columns = [("id", "id"), ("name", "name"), ("owner", "owner"), ("zone", "zone"), ("active", "active"),
               ("battery_capacity_wh", "battery_wh"), ("balance_units", "balance")] + [(k, k) for k in TOTALS]
    return _columns("participants.csv", columns, participant_table(get_index()))


@bp.get("/participants/<int:pid>.csv")
def participant(pid: int):
    idx = get_index()
    if idx.participant(pid) is None:
        abort(404, f"there is no participant {pid}")
    return _columns(f"participant-{pid}.csv", HOME_COLUMNS, home_rows(idx, pid))


@bp.get("/participants/<int:pid>/wallet.csv")
def wallet_events(pid: int):
    idx = get_index()
    if idx.participant(pid) is None:
        abort(404, f"there is no participant {pid}")
    columns = [("block", "block"), ("tx_hash", "tx_hash"), ("log_index", "log_index"), ("kind", "kind"),
               ("account", "account"), ("amount_units", "amount")]
    return _columns(f"participant-{pid}-wallet.csv", columns, idx.wallet_events(pid))


@bp.get("/wallets.csv")
def wallets():
    """Every wallet's balance after ?interval= (default: the latest)."""
    idx = get_index()
    k = whole_arg("interval")
    settled = idx.settled_range()
    if settled is None:
        return csv_response("wallets.csv", ["participant", "name", "interval", "balance_units"], [])
    k = settled[1] if k is None else k
    balances = idx.balances_after(k)
    if not balances:
        abort(404, f"interval {k} is not settled")
    return csv_response(f"wallets-{k}.csv", ["participant", "name", "interval", "balance_units"],
                        ([p["id"], p["name"], k, balances.get(p["id"], 0)] for p in idx.participants()))


@bp.get("/series.csv")
def series():
    """The community's series the dashboard charts draw, per interval of ?from= &to=."""
    data = time_series(get_index(), get_meta(), window=_window())
    keys = [k for k, v in data.items() if isinstance(v, list)]
    return csv_response("series.csv", keys, zip(*(data[k] for k in keys)))


@bp.get("/homes.csv")
def homes():
    """Per interval: mean and standard deviation across homes (Index.home_stats)."""
    window = _window()
    stats = get_index().home_stats(*window) if window else []
    keys = list(stats[0]) if stats else ["interval", "homes"]
    return csv_response("homes.csv", keys, ([s[k] for k in keys] for s in stats))


@bp.get("/audit.csv")
def audit():
    idx = get_index()
    run = idx.latest_audit()
    verdicts = idx.audit_verdicts(run["id"], limit=10**9) if run else []
    return csv_response("audit.csv", ["interval", "tx_hash", "ok", "reasons"],
                        ([v["interval"], v["tx_hash"], int(v["ok"]), "; ".join(v["reasons"])] for v in verdicts))
