"""The web UI as a workbench, without a browser: the pooled flow view and its grouping,
the index's views behind playback and charts, CSV downloads, frames and live progress,
formatting, and runs started from the form (their checks; tests/test_browser.py runs one)."""

from __future__ import annotations

import csv
import io
import re
import tomllib
from html import unescape
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.data.config import default_config, load_config
from node.data.config_form import EXAMPLE, config_from_form, config_to_toml, field_docs, form_fields
from node.errors import ConfigError
from node.index.store import Index
from tests.helpers import HEADER, replaced
from tests.test_webui import app, build_realistic_index, client, index, index_path, page  # noqa: F401 (fixtures)
from webui import create_app
from webui import format as fmt
from webui.flowview import MAX_ROWS, ROW, flow_svg, flow_view, group_homes


def text_of(response) -> str:
    return unescape(response.get_data(as_text=True))


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


# -- the flow view --------------------------------------------------------------------------

entries = st.lists(st.tuples(st.integers(-5000, 5000), st.integers(-3000, 3000)), min_size=1, max_size=60)


def interval_of(values: list[tuple[int, int]]) -> dict:
    """A settled interval of homes 1..N with grid and P2P energy; P2P balanced by the last home."""
    p2p = [v for _, v in values]
    rows = [{"participant": i + 1, "grid_wh": g, "p2p_wh": p} for i, ((g, _), p) in enumerate(zip(values, p2p[:-1] + [-sum(p2p[:-1])]))]
    return {"entries": rows, "grid_import_wh": sum(r["grid_wh"] for r in rows if r["grid_wh"] > 0),
            "grid_export_wh": -sum(r["grid_wh"] for r in rows if r["grid_wh"] < 0)}


def homes(n: int, zones: int = 1) -> list[dict]:
    return [{"id": 0, "name": "grid", "zone": 0}] + [{"id": i, "name": f"home-{i}", "zone": i % zones} for i in range(1, n + 1)]


@given(entries, st.sampled_from([None, "first"]))
def test_flow_arrows_add_up_to_the_settled_grid_exchange(values, zoom):
    interval = interval_of(values)
    participants = homes(len(values))
    if zoom:
        zoom = group_homes(participants, max_rows=4)[0].key
    view = flow_view(participants, interval, zoom, max_rows=4)
    drawn = [r for r in view.rows if not r.caption]
    assert sum(r.draw_wh for r in drawn) - sum(r.supply_wh for r in drawn) == view.import_wh - view.export_wh
    assert sum(r.homes for r in drawn) == len(values)  # every home is in exactly one row


@settings(max_examples=40)
@given(st.integers(1, 1500), st.integers(1, 30), st.integers(2, 60))
def test_homes_are_grouped_into_at_most_max_rows_never_across_zones(n, zones, max_rows):
    participants = homes(n, zones)
    groups = group_homes(participants, max_rows)
    assert len(groups) <= max(max_rows, 1)
    assert sorted(pid for g in groups for pid in g.pids) == list(range(1, n + 1))
    if n > max_rows and zones <= max_rows // 2:
        zone = {p["id"]: p["zone"] for p in participants}
        assert all(len({zone[pid] for pid in g.pids}) == 1 for g in groups)


def test_zooming_into_a_group_shows_its_homes_one_by_one_and_the_rest_as_one_row():
    participants = homes(1000, zones=2)
    interval = interval_of([(100 * (i % 7) - 300, 0) for i in range(1000)])
    top = flow_view(participants, interval)
    assert len(top.rows) <= MAX_ROWS and all(r.group for r in top.rows)
    group = top.rows[3].group
    zoomed = flow_view(participants, interval, group)
    assert zoomed.zoom.key == group
    singles = [r for r in zoomed.rows if r.pid is not None]
    assert [r.pid for r in singles] == list(zoomed.zoom.pids)
    assert zoomed.rows[-1].homes == 1000 - len(singles) and zoomed.rows[-1].group is None
    # An unknown group is the whole community again, not an error.
    assert [r.label for r in flow_view(participants, interval, "g999999-1").rows] == [r.label for r in top.rows]


def test_flow_drawing_joins_no_two_homes_and_keeps_rows_apart():
    participants = homes(12)
    view = flow_view(participants, interval_of([(300 - 60 * i, 40 - 8 * i) for i in range(12)]))
    svg = flow_svg(view, fmt.kwh, lambda pid: f"/p/{pid}", lambda key: f"/?group={key}")
    # Every arrow runs between the rows' side and the pool's edge, none from row to row.
    ends = [tuple(sorted(float(x) for x in path))
            for path in re.findall(r'<path class="fv-arrow" d="M([\d.]+),[\d.]+ C[^"]* ([\d.]+),[\d.]+"', svg)]
    assert len(ends) == sum(bool(r.supply_wh) + bool(r.draw_wh) for r in view.rows) >= 10
    assert len({pool for _, pool in ends}) == 1 and all(row < pool - 100 for row, pool in ends)
    ys = sorted(float(y) for y in re.findall(r'<text class="fv-name" x="[\d.]+" y="([\d.]+)"', svg))
    assert len(ys) == 12 and min(b - a for a, b in zip(ys, ys[1:])) >= ROW


# -- views of the index ---------------------------------------------------------------------


def test_balances_after_an_interval_count_settlements_and_deposits_up_to_its_block(index):
    after_0, after_1 = index.balances_after(0), index.balances_after(1)
    assert after_1 == index.balances()  # the last interval: every event so far
    # bob: deposit 2 (block 3), withdrawal 0.5 (block 4), then interval 0's 0.3 kWh import and 0.5 kWh P2P.
    assert after_0[2] == 2_000_000 - 500_000 + index.interval(0)["entries"][1]["amount"]
    assert sum(after_0.values()) == 5_000_000 + 2_000_000 - 500_000  # settlements move money, never make it
    assert index.balances_after(7) == {}


def test_home_stats_are_the_mean_and_deviation_across_homes(index):
    [first, _] = index.home_stats(0, 1)
    grid = [-1200, 300, 1000]
    mean = sum(grid) / 3
    assert first["homes"] == 3 and first["grid_wh_mean"] == pytest.approx(mean)
    assert first["grid_wh_std"] == pytest.approx((sum((g - mean) ** 2 for g in grid) / 3) ** 0.5)
    assert first["load_wh_mean"] == 500 and first["load_wh_std"] == 0  # as the inputs committed


def test_home_energy_is_filled_in_for_an_index_written_before_it(index_path):
    old = Index(index_path)
    old.db.execute("DROP TABLE home_energy")
    old.close()
    again = Index(index_path)
    assert [(r["load_wh"], r["pv_wh"]) for r in again.home_series(2)] == [(500, 200), (500, 200)]
    again.close()


# -- CSV ----------------------------------------------------------------------------------


def test_downloads_hold_the_index_numbers_in_chain_units(client, index):
    intervals = rows_of(client.get("/export/intervals.csv"))
    assert [int(r["grid_import_wh"]) for r in intervals] == [1300, 2000]
    people = {int(r["id"]): r for r in rows_of(client.get("/export/participants.csv"))}
    totals = index.home_totals()[1]
    assert int(people[1]["cost_units"]) == totals["cost_units"]
    assert int(people[1]["savings_units"]) == totals["baseline_cost_units"] - totals["cost_units"]
    carol = rows_of(client.get("/export/participants/3.csv"))
    assert int(carol[-1]["balance_units"]) == index.participant(3)["balance"]
    assert [int(r["soc_wh"]) for r in carol] == [4000, 5000]
    wallets = {int(r["participant"]): int(r["balance_units"]) for r in rows_of(client.get("/export/wallets.csv?interval=0"))}
    assert wallets == {p: index.balances_after(0).get(p, 0) for p in wallets}
    entries = rows_of(client.get("/export/intervals/0.csv"))
    assert [int(r["net_from_pool_wh"]) for r in entries] == [-2000, 800, 1300]
    assert len(rows_of(client.get("/export/series.csv?from=1&to=1"))) == 1
    assert len(rows_of(client.get("/export/homes.csv"))) == 2
    assert [r["row"] for r in rows_of(client.get("/export/intervals/0/flows.csv"))] == ["bob", "alice", "carol"]  # by zone, then id


@pytest.mark.parametrize("url, status", [("/export/intervals/9.csv", 404), ("/export/participants/9.csv", 404),
                                         ("/export/series.csv?from=x", 400), ("/export/intervals/0/orders.csv", 404)])
def test_downloads_refuse_what_does_not_exist(client, url, status):
    assert client.get(url).status_code == status


def test_every_chart_and_table_links_its_csv(client):
    for url in ("/", "/participants/", "/participants/3", "/intervals/0"):
        html = page(client, url)
        charts = html.count('<svg class="chart"')
        assert html.count('class="card chart-card"') == charts
        assert "/export/" in html and 'download title="download as CSV"' in html


# -- playback and live ---------------------------------------------------------------------


def test_a_frame_is_the_dashboard_panels_at_an_interval(client):
    frame = client.get("/frames/0?from=0&to=1").get_json()
    assert frame["interval"] == 0 and frame["url"] == "/?interval=0&from=0&to=1"
    assert "Wallets after #0" in frame["panels"]["wallets-panel"]
    assert "alice: puts 2.00 kWh into the pool" in frame["panels"]["flow-panel"]
    assert "charts" not in frame["panels"]
    full = client.get("/frames/1?charts=1").get_json()["panels"]
    assert full["charts"].count('<svg class="chart"') == 6 and "Community cost" in full["kpi-cards"]
    assert client.get("/frames/5").status_code == 404


def test_the_dashboard_keeps_its_position_and_range_in_the_url(client):
    html = page(client, "/?interval=0&from=0&to=1")
    assert 'data-k="0"' in html and 'data-first="0"' in html and 'data-last="1"' in html
    assert 'href="/?interval=1&amp;from=0&amp;to=1"' in html  # the next step keeps the range


def test_live_reports_the_run_progress_from_the_index(index_path):
    idx = Index(index_path)
    idx.set_meta(run_first_interval=0, run_stop_interval=8)
    idx.close()
    live = create_app({"INDEX_PATH": str(index_path)}).test_client().get("/api/live").get_json()
    assert live["last_interval"] == 1 and live["intervals"] == 2
    assert live["run"] == {"first_interval": 0, "stop_interval": 8, "settled": 2, "total": 8}


# -- small things --------------------------------------------------------------------------


def test_nothing_rounds_to_minus_zero():
    assert fmt.kwh(-3) == "0.00 kWh" and fmt.kwh(-5) == "-0.01 kWh"
    assert fmt.money(-1) == "€0.00" and fmt.money(-5000) == "-€0.01"
    assert fmt.number(-0.0004, 3) == "0.000"


def test_times_show_the_market_zone(index_path):
    idx = Index(index_path)
    idx.set_meta(timezone="Europe/Berlin")
    idx.close()
    client = create_app({"INDEX_PATH": str(index_path)}).test_client()
    assert "2026-06-01 02:00 CEST" in page(client, "/intervals/0")  # 00:00 UTC
    assert "time (Europe/Berlin)" in page(client, "/")


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"


def test_the_grid_page_signs_energy_as_the_community_sees_it(client, index):
    html = page(client, "/participants/0")
    s = index.summary()
    net = s["grid_import_wh"] - s["grid_export_wh"]
    assert f"{net / 1000:,.2f} kWh" in html and "+ into the community (import)" in html


def test_participants_table_has_energy_and_savings_and_sorts_a_page_at_a_time(index_path, index):
    client = create_app({"INDEX_PATH": str(index_path), "PARTICIPANTS_PER_PAGE": 2}).test_client()
    html = page(client, "/participants/")
    for heading in ("Load", "PV", "Import", "Export", "Savings"):
        assert f">{heading}</a>" in html
    assert "page 1 of 2" in html
    totals = index.home_totals()
    savings = {pid: t["baseline_cost_units"] - t["cost_units"] for pid, t in totals.items()}
    best = max(savings, key=savings.get)
    ranked = page(client, "/participants/?sort=savings_units&desc=1")
    first_row = ranked[ranked.index("<tbody>"):].split("</tr>")[0]
    assert f'href="/participants/{best}"' in first_row and 'aria-sort="descending"' in ranked
    grid_last = page(client, "/participants/?sort=savings_units&page=2")  # the grid has no savings: last
    assert 'href="/participants/0"' in grid_last.split("<tbody>")[1].split("</tr>")[-2]
    assert client.get("/participants/?sort=owner;drop").status_code == 400
    assert client.get("/participants/?page=9").status_code == 404


def test_a_real_sized_community_renders_every_page(tmp_path):
    path = tmp_path / "big.sqlite"
    build_realistic_index(path, homes=60, intervals=6)
    client = create_app({"INDEX_PATH": str(path)}).test_client()
    html = page(client, "/?interval=3")
    groups = re.findall(r'href="/\?interval=3&amp;group=(g[\d-]+)"', html)
    assert 2 <= len(set(groups)) <= MAX_ROWS
    zoomed = page(client, f"/?interval=3&group={groups[0]}")
    assert "All homes</a> ›" in zoomed
    for url in ("/participants/", "/participants/7", "/intervals/3", "/frames/2"):
        page(client, url)


# -- the config form and runs ----------------------------------------------------------------


def test_every_config_field_is_documented_in_the_example_file():
    docs = field_docs()
    assert {f.key for f in form_fields(default_config())} == set(docs) and all(docs.values())
    assert load_config(EXAMPLE) == default_config()


def test_a_saved_config_loads_back_equal_and_carries_its_documentation():
    config = replace(default_config(), community=replace(default_config().community, homes=7, pv_kwp_range=(2.5, 4.0)))
    text = config_to_toml(config)
    assert config_from_form({f.key: f.value for f in form_fields(config)}) == config
    from node.data.config import config_from_mapping

    assert config_from_mapping(tomllib.loads(text)) == config
    assert "# Number of homes in the synthetic community" in text


def test_a_bad_form_value_names_its_key():
    with pytest.raises(ConfigError, match=r"the form: batteries\.min_soc: expected"):
        config_from_form({"batteries.min_soc": "2"})
    with pytest.raises(ConfigError, match=r"tariffs\.buy_per_kwh: expected a number, got 'cheap'"):
        config_from_form({"tariffs.buy_per_kwh": "cheap"})


@pytest.fixture
def runs_client(index_path, tmp_path):
    return create_app({"INDEX_PATH": str(index_path), "RUNS_DIR": str(tmp_path / "runs")}).test_client(), tmp_path / "runs"


def form_of(**changes) -> dict:
    return {f.key: f.value for f in form_fields(default_config())} | {"name": "r1"} | changes


def test_a_run_with_a_bad_dataset_is_refused_with_the_clis_row_and_column(runs_client, tmp_path):
    client, root = runs_client
    bad = "\n".join([HEADER, *replaced(4, "2026-06-01T00:15:00+00:00,a,lots,0.00")]) + "\n"
    response = client.post("/runs", data=form_of() | {"data": (io.BytesIO(bad.encode()), "meters.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert "meters.csv, row 4, column 'consumption_kwh': participant 'a': 'lots' is not a finite number" in text_of(response)
    assert not (root / "r1").exists()  # nothing was left behind


def test_a_run_with_a_bad_config_value_is_refused_naming_the_key(runs_client):
    client, root = runs_client
    response = client.post("/runs", data=form_of(**{"grid.import_capacity_kw": "-1"}))
    assert response.status_code == 400 and "grid.import_capacity_kw: expected a power > 0 kW" in text_of(response)
    response = client.post("/runs", data=form_of(**{"community.homes": "100000"}))
    assert response.status_code == 400 and "gridledger simulate" in response.get_data(as_text=True)
    response = client.post("/runs", data=form_of(name="../etc"))
    assert response.status_code == 400 and "a run's name is 1-48 lower-case letters" in text_of(response)
    assert not root.exists() or not any(root.iterdir())


def test_the_form_saves_and_loads_a_config_file(runs_client):
    client, _ = runs_client
    saved = client.post("/runs/config.toml", data=form_of(**{"community.homes": "9"}))
    assert saved.headers["Content-Disposition"] == 'attachment; filename="community.toml"'
    loaded = client.post("/runs/new/load", data={"config": (io.BytesIO(saved.data), "mine.toml")},
                         content_type="multipart/form-data")
    assert loaded.status_code == 200 and 'name="community.homes" value="9"' in loaded.get_data(as_text=True)
    broken = client.post("/runs/new/load", data={"config": (io.BytesIO(b"[market]\nspeed = 3\n"), "mine.toml")},
                         content_type="multipart/form-data")
    assert broken.status_code == 400 and "mine.toml: market.speed: unknown key" in broken.get_data(as_text=True)


def test_the_form_carries_each_fields_documentation(runs_client):
    client, _ = runs_client
    html = page(client, "/runs/new")
    assert 'title="Most power the whole community may draw from the grid, kW."' in html


def test_without_a_runs_folder_the_server_says_how_to_get_one(client):
    assert "gridledger serve --runs DIR" in page(client, "/runs")
    assert client.post("/runs", data=form_of()).status_code == 404



def test_two_finished_runs_compare_kpi_by_kpi(runs_client):
    import json

    client, root = runs_client
    for name, savings in (("a", 1.5), ("b", -0.25)):
        results = root / name / "state" / "results"
        results.mkdir(parents=True)
        (root / name / "job.json").write_text(json.dumps({"name": name, "created": "2026-06-01T00:00:00+00:00",
                                                          "pid": 0, "returncode": 0}))
        (results / "kpis.json").write_text(json.dumps({  # as node.simulation.replay.write_results writes it
            "intervals": 24, "participants": 3, "gas_used": 10, "currency": "EUR",
            "market": {"cost": 2.0, "self_sufficiency": 0.5}, "baseline": {"cost": 3.5},
            "comparison": {"savings": savings, "savings_percent": 10 * savings}}))
    assert "done" in page(client, "/runs")
    rows = {r["kpi"]: r for r in rows_of(client.get("/runs/compare.csv?a=a&b=b"))}
    assert (rows["savings"]["a"], rows["savings"]["b"]) == ("1.5", "-0.25")
    assert rows["self_sufficiency"]["unit"] == "share" and rows["baseline_self_sufficiency"]["a"] == ""
    html = page(client, "/runs/compare?a=a&b=b")
    assert "€1.50" in html and "-€0.25" in html and "50.0%" in html
    assert client.get("/runs/compare?a=a&b=nope").status_code == 404
