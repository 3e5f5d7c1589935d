"""The web UI against a real index fed with contract-shaped events."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.chain.events import Event
from node.chain.settlement import entry_word
from node.index.store import Index
from node.clearing.inputs import BatteryInputs, IntervalInputs
from webui import create_app
from webui.flows import p2p_flows

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
OWNERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 40)] + ["0x" + f"{i:040x}" for i in range(40, 1100)]
BUY, SELL, P2P = 300_000, 60_000, 180_000  # minor units per kWh


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def settle_events(index: Index, k: int, entries: list[tuple[int, int, int]], block: int, homes: int,
                  import_cap: int = 15_000, export_cap: int = 10_000, soc: dict[int, tuple[int, int]] | None = None,
                  p2p_price: int = P2P) -> list[Event]:
    """Events of one settlement of `entries` (participant, grid_wh, p2p_wh), priced as
    the contract checks them, with its inputs stored in the index."""
    soc = soc or {}
    inputs = IntervalInputs(
        interval=k, start=(START + timedelta(minutes=15 * k)).isoformat(), participants=list(range(1, homes + 1)),
        load_wh=[[500] for _ in range(homes)], pv_wh=[[200] for _ in range(homes)], buy_price=[BUY], sell_price=[SELL],
        import_capacity_wh=[import_cap], export_capacity_wh=[export_cap], p2p_cost=0,
        batteries=[BatteryInputs(pid, cap, 2500, 2500, 950_000, 950_000, s, 0) for pid, (s, cap) in soc.items()],
    )
    index.store_inputs(inputs)
    words, amounts = [], []
    for pid, grid_wh, p2p_wh in entries:
        amount = -(grid_wh * (BUY if grid_wh > 0 else SELL) + p2p_wh * p2p_price) // 1000
        amounts.append(amount)
        words.append(entry_word(pid, grid_wh, p2p_wh, amount))
    chunk = Event("EntriesSettled", {"interval": k, "chunk": 0, "entries": words}, block, tx(k + 1000), 0)
    header = Event("IntervalSettled", {
        "interval": k, "inputsHash": inputs.hash(), "importPrice": BUY, "exportPrice": SELL, "p2pPrice": p2p_price,
        "p2pFee": 0, "gridImportWh": sum(g for _, g, _ in entries if g > 0),
        "gridExportWh": -sum(g for _, g, _ in entries if g < 0), "gridAmount": -sum(amounts),
        "participants": len(entries), "payAsBid": False, "entriesRoot": b"\0" * 32, "finalAt": 0,
    }, block, tx(k + 1000), 1)
    return [chunk, header]


def register_events(names: list[str]) -> list[Event]:
    events = [Event("ParticipantRegistered", {"participant": 0, "owner": OWNERS[0], "zone": 0, "name": "grid"}, 1, tx(1), 0)]
    for i, name in enumerate(names, start=1):
        events.append(Event("ParticipantRegistered", {"participant": i, "owner": OWNERS[i], "zone": 1 + i % 2, "name": name}, 2, tx(2), i))
    return events


@pytest.fixture
def index_path(tmp_path):
    """Three homes, two settled intervals, a deposit and a withdrawal."""
    path = tmp_path / "index.sqlite"
    index = Index(path)
    index.set_meta(chain_id=31337, market="0x" + "5a" * 20, description="Sunny Street", token="0x" + "70" * 20, currency="EUR", interval_minutes=15, start=START.isoformat())
    index.apply(register_events(["alice", "bob", "carol"]))
    index.apply([
        Event("Deposited", {"participant": 1, "from": OWNERS[1], "amount": 5_000_000}, 3, tx(3), 0),
        Event("Deposited", {"participant": 2, "from": OWNERS[2], "amount": 2_000_000}, 3, tx(3), 1),
        Event("Withdrawn", {"participant": 2, "to": OWNERS[2], "amount": 500_000}, 4, tx(4), 0),
    ])
    # Interval 0: alice exports 1.2 kWh and sells 0.8 kWh; bob and carol buy it pro rata.
    index.apply(settle_events(index, 0, [(1, -1200, -800), (2, 300, 500), (3, 1000, 300)], block=5, homes=3,
                              soc={3: (4000, 10000)}), gas_used={tx(1000): 123_456})
    index.apply(settle_events(index, 1, [(1, 2000, 0), (2, 0, 0), (3, -500, 0)], block=6, homes=3, soc={3: (5000, 10000)}))
    index.store_baseline([(0, 1, 0, 2000, -120_000), (0, 2, 800, 0, 240_000), (0, 3, 1300, 0, 390_000),
                          (1, 1, 2000, 0, 600_000), (1, 2, 0, 0, 0), (1, 3, 0, 500, -30_000)])
    index.close()
    return path


@pytest.fixture
def app(index_path):
    return create_app({"TESTING": True, "INDEX_PATH": str(index_path)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def index(index_path):
    idx = Index(index_path)
    yield idx
    idx.close()


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.data[:500]
    return response.get_data(as_text=True)


# -- pages ---------------------------------------------------------------------------


def test_create_app_attaches_one_index(app):
    assert isinstance(app.extensions["gridledger_index"], Index)


def test_dashboard_shows_balances_and_kpis_from_the_index(client, index):
    html = page(client, "/")
    balances = index.balances()
    # alice: deposit 5 EUR + export 1.2 kWh at 0.06 + 0.8 kWh P2P at 0.18 - 2 kWh at 0.30
    assert balances[1] == 5_000_000 + 72_000 + 144_000 - 600_000
    assert "€4.62" in html  # 4.616 EUR
    # bob: deposit 2, withdrawal 0.5, 0.3 kWh from the grid and 0.5 kWh from alice
    assert balances[2] == 2_000_000 - 500_000 - 90_000 - 90_000
    assert "€1.32" in html
    summary = index.summary()
    assert f"€{summary['community_cost'] / 1e6:,.2f}" in html
    assert "Sunny Street" in html
    assert "2 intervals settled" in html


def test_dashboard_marks_negative_balances(client, index):
    html = page(client, "/")
    carol = index.participant(3)["balance"]
    assert carol < 0
    assert f'<span class="neg">-€{abs(carol) / 1e6:,.2f}</span>' in html


def test_dashboard_draws_the_pooled_flows_of_the_selected_interval_with_prev_next(client):
    latest = page(client, "/")
    assert "Interval <strong>#1</strong>" in latest
    assert "/?interval=0" in latest
    first = page(client, "/?interval=0")
    assert '<svg class="flowview"' in first
    # Interval 0 is one pool: alice puts her 2 kWh (grid export and P2P sale) into it,
    # bob and carol take 0.8 and 1.3 kWh out; the grid brings the 0.1 kWh difference.
    assert "alice: puts 2.00 kWh into the pool" in first
    assert "bob: takes 0.80 kWh from the pool" in first
    assert "carol: takes 1.30 kWh from the pool" in first
    assert "alice → bob" not in first  # no bilateral arrows: none were traded
    assert "/?interval=1" in first


def test_dashboard_rejects_unknown_or_malformed_interval(client):
    assert client.get("/?interval=7").status_code == 404
    response = client.get("/?interval=abc")
    assert response.status_code == 400
    assert "interval must be a whole number" in response.get_data(as_text=True)


def test_dashboard_charts_render(client):
    html = page(client, "/")
    for title in ("P2P price and grid tariffs", "Community grid import vs capacity", "Community grid export vs capacity", "Battery state of charge"):
        assert title in html


def test_participant_page_shows_wallet_and_history(client, index):
    html = page(client, "/participants/3")
    p = index.participant(3)
    assert "carol" in html and p["owner"] in html
    assert "10.0 kWh" in html  # battery capacity from the inputs
    assert f"-€{abs(p['balance']) / 1e6:,.2f}" in html
    for h in index.participant_history(3):
        assert f"#{h['interval']}" in html
        assert h["tx_hash"] in html  # full hash in the title attribute
    assert "1.00 kWh" in html and "0.30 kWh" in html
    assert "Energy per interval" in html and "Wallet balance after each interval" in html


def test_participant_page_lists_deposits_and_withdrawals(client):
    html = page(client, "/participants/2")
    assert "deposit" in html and "withdraw" in html
    assert "€2.00" in html and "-€0.50" in html


def test_grid_participant_page_shows_grid_side(client, index):
    html = page(client, "/participants/0")
    assert "grid" in html
    assert f"{index.balances()[0] / 1e6:,.2f}" in html


def test_participants_list(client):
    html = page(client, "/participants/")
    assert all(name in html for name in ("grid", "alice", "bob", "carol"))


def test_interval_page_shows_settlement(client, index):
    html = page(client, "/intervals/0")
    i = index.interval(0)
    assert i["tx_hash"] in html and i["inputs_hash"] in html
    assert f'/api/inputs/{i["inputs_hash"]}' in html
    assert "€0.1800/kWh" in html and "€0.3000/kWh" in html
    assert "1.30 kWh" in html and "15.00 kWh" in html  # import of capacity
    assert "1.20 kWh" in html and "10.00 kWh" in html  # export of capacity
    assert "0.80 kWh" in html  # P2P volume
    assert "123,456" in html  # gas


def test_interval_list_paginates_newest_first(tmp_path):
    path = tmp_path / "many.sqlite"
    build_realistic_index(path, homes=4, intervals=120)
    client = create_app({"INDEX_PATH": str(path), "INTERVALS_PER_PAGE": 50}).test_client()
    first = page(client, "/intervals/")
    assert "page 1 of 3" in first
    assert first.index("#119") < first.index("#70")
    assert "#69" not in first
    last = page(client, "/intervals/?page=3")
    assert "#0<" in last and "#19<" in last
    assert client.get("/intervals/?page=4").status_code == 404
    assert client.get("/intervals/?page=x").status_code == 400


def test_unknown_pages_are_html_404(client):
    for url in ("/nope", "/participants/99", "/intervals/99"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "404" in response.get_data(as_text=True)
    malformed = client.get("/participants/abc")
    assert malformed.status_code == 400 and "participant id must be a whole number" in malformed.get_data(as_text=True)


# -- empty index -----------------------------------------------------------------------


@pytest.fixture
def empty_client(tmp_path):
    index = Index(tmp_path / "empty.sqlite")
    index.set_meta(currency="EUR", description="New Street")
    index.apply(register_events(["alice"]))
    index.close()
    return create_app({"INDEX_PATH": str(tmp_path / "empty.sqlite")}).test_client()


def test_empty_index_renders_friendly_pages(empty_client):
    assert "Nothing settled yet" in page(empty_client, "/")
    assert "Nothing settled yet" in page(empty_client, "/intervals/")
    assert "alice" in page(empty_client, "/participants/1")
    assert empty_client.get("/api/summary").get_json()["intervals"] == 0
    series = empty_client.get("/api/series").get_json()
    assert series["interval"] == [] and series["batteries"] == {}
    assert empty_client.get("/api/intervals").get_json()["intervals"] == []


def test_brand_new_index_file_renders(tmp_path):
    client = create_app({"INDEX_PATH": str(tmp_path / "fresh.sqlite")}).test_client()
    assert "Nothing settled yet" in page(client, "/")


# -- API -------------------------------------------------------------------------------


def test_api_summary_equals_index_summary_with_units(client, index):
    data = client.get("/api/summary").get_json()
    s = index.summary()
    assert data["intervals"] == s["intervals"] == 2
    assert data["grid_import_wh"] == s["grid_import_wh"] == 3300
    assert data["grid_export_wh"] == s["grid_export_wh"] == 1700
    assert data["p2p_wh"] == s["p2p_wh"] == 800
    assert data["community_cost_units"] == s["community_cost"]
    assert data["baseline_cost_units"] == s["baseline_cost"] == 1_080_000
    assert data["savings_units"] == s["savings"]
    assert data["gas_used"] == 123_456
    assert "1 EUR = 1000000 units" in data["units"]["_units"]
    assert data["meta"]["description"] == "Sunny Street"


def test_api_participants_equal_index(client, index):
    data = client.get("/api/participants").get_json()["participants"]
    assert [(p["id"], p["name"], p["owner"], p["balance_units"]) for p in data] == [
        (p["id"], p["name"], p["owner"], p["balance"]) for p in index.participants()
    ]
    assert data[3]["battery_capacity_wh"] == 10_000


def test_api_participant_has_history_and_wallet_events(client, index):
    data = client.get("/api/participants/2").get_json()
    assert data["balance_units"] == index.participant(2)["balance"]
    assert [(h["interval"], h["grid_wh"], h["p2p_wh"], h["amount_units"], h["p2p_price_units_per_kwh"]) for h in data["history"]] == [
        (h["interval"], h["grid_wh"], h["p2p_wh"], h["amount"], h["p2p_price"]) for h in index.participant_history(2)
    ]
    assert [(e["kind"], e["amount_units"]) for e in data["wallet_events"]] == [("deposit", 2_000_000), ("withdraw", 500_000)]


def test_api_intervals_page_through_the_index(client, index):
    data = client.get("/api/intervals?limit=1&offset=1").get_json()
    assert data["total"] == 2 and data["limit"] == 1 and data["offset"] == 1
    [row] = data["intervals"]
    expected = index.intervals(limit=1, offset=1)[0]
    assert row["interval"] == 1
    assert row["grid_import_wh"] == expected["grid_import_wh"] == 2000
    assert row["p2p_price_units_per_kwh"] == expected["p2p_price"] == P2P
    assert row["import_capacity_wh"] == 15_000
    assert row["tx_hash"] == expected["tx_hash"]


def test_api_interval_has_entries_and_conserving_flows(client, index):
    data = client.get("/api/intervals/0").get_json()
    expected = index.interval(0)
    assert data["inputs_hash"] == expected["inputs_hash"]
    assert [(e["participant"], e["grid_wh"], e["p2p_wh"], e["amount_units"]) for e in data["entries"]] == [
        (e["participant"], e["grid_wh"], e["p2p_wh"], e["amount"]) for e in expected["entries"]
    ]
    assert data["p2p_flows"] == [{"seller": 1, "buyer": 2, "wh": 500}, {"seller": 1, "buyer": 3, "wh": 300}]
    assert sum(f["wh"] for f in data["p2p_flows"]) == data["p2p_wh"] == 800


def test_api_inputs_returns_the_committed_bytes(client, index):
    digest = index.interval(0)["inputs_hash"]
    response = client.get(f"/api/inputs/{digest}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == index.inputs(digest)
    assert IntervalInputs.from_json(response.data).hash().hex() == digest[2:]


def test_api_series_follows_the_intervals(client):
    data = client.get("/api/series").get_json()
    assert data["interval"] == [0, 1]
    assert data["grid_import_wh"] == [1300, 2000]
    assert data["import_capacity_wh"] == [15_000, 15_000]
    assert data["p2p_price_units_per_kwh"] == [P2P, P2P]
    assert data["battery_soc_wh"] == [4000, 5000]
    assert data["batteries"]["3"]["capacity_wh"] == [10_000, 10_000]
    assert data["start"][0] == START.isoformat()


@pytest.mark.parametrize(
    "url, status, message",
    [
        ("/api/participants/abc", 400, "participant id must be a whole number from 0 to 9223372036854775807, got 'abc'"),
        ("/api/participants/-1", 400, "participant id must be a whole number from 0"),
        ("/api/participants/99", 404, "there is no participant 99"),
        ("/api/participants/99999999999999999999999", 400, "participant id must be a whole number from 0 to 9223372036854775807"),
        ("/api/intervals/x1", 400, "interval must be a whole number from 0"),
        ("/api/intervals/42", 404, "interval 42 is not settled"),
        ("/api/intervals?limit=0", 400, "limit must be a whole number from 1 to 1000, got '0'"),
        ("/api/intervals?limit=1001", 400, "limit must be a whole number from 1 to 1000"),
        ("/api/intervals?limit=ten", 400, "limit must be a whole number"),
        ("/api/intervals?offset=-5", 400, "offset must be a whole number"),
        ("/api/inputs/0x1234", 400, "an inputs hash is 0x and 64 hex digits"),
        ("/api/inputs/" + "0x" + "ab" * 32, 404, "no inputs with hash"),
        ("/api/series?last=all", 400, "last must be a whole number"),
        ("/api/nothing-here", 404, "no API endpoint /api/nothing-here"),
    ],
)
def test_api_bad_input_is_json_error(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert message in response.get_json()["error"]
    if status == 400:  # and names the field
        field = "digest" if "inputs hash" in message else message.split(" must")[0]
        assert response.get_json()["field"] == field


# -- flows -----------------------------------------------------------------------------


def test_p2p_flows_split_pro_rata():
    entries = [{"participant": 1, "p2p_wh": -600}, {"participant": 2, "p2p_wh": -400},
               {"participant": 3, "p2p_wh": 750}, {"participant": 4, "p2p_wh": 250}]
    flows = {(f.seller, f.buyer): f.wh for f in p2p_flows(entries)}
    assert flows == {(1, 3): 450, (1, 4): 150, (2, 3): 300, (2, 4): 100}


def test_p2p_flows_empty_without_trades():
    assert p2p_flows([{"participant": 1, "p2p_wh": 0}, {"participant": 2, "p2p_wh": 0}]) == []


balanced_entries = st.lists(st.integers(-50_000, 50_000), min_size=1, max_size=25).map(
    lambda values: [{"participant": i + 1, "p2p_wh": v} for i, v in enumerate(values)] + [
        {"participant": len(values) + 1, "p2p_wh": -sum(values)}
    ]
)


@given(balanced_entries)
def test_p2p_flows_conserve_energy_per_participant(entries):
    flows = p2p_flows(entries)
    volume = sum(e["p2p_wh"] for e in entries if e["p2p_wh"] > 0)
    assert sum(f.wh for f in flows) == volume
    for e in entries:
        sent = sum(f.wh for f in flows if f.seller == e["participant"])
        received = sum(f.wh for f in flows if f.buyer == e["participant"])
        assert received - sent == e["p2p_wh"]
        assert not (sent and received)
    assert all(f.wh > 0 for f in flows)


@given(st.lists(st.integers(-5_000, 5_000), min_size=0, max_size=12))
def test_p2p_flows_match_the_smaller_side_when_unbalanced(values):
    entries = [{"participant": i, "p2p_wh": v} for i, v in enumerate(values)]
    sold = -sum(v for v in values if v < 0)
    bought = sum(v for v in values if v > 0)
    assert sum(f.wh for f in p2p_flows(entries)) == min(sold, bought)


# -- real-sized data -------------------------------------------------------------------


def build_realistic_index(path, homes: int = 20, intervals: int = 96, seed: int = 7) -> None:
    """A community shaped like the demo: PV at midday, evening peaks, batteries."""
    rng = random.Random(seed)
    index = Index(path)
    index.set_meta(chain_id=31337, market="0x" + "5a" * 20, description="Demo community", token="0x" + "ee" * 20, currency="EUR",
                   interval_minutes=15, start=START.isoformat())
    index.apply(register_events([f"home-{i:02d}" for i in range(1, homes + 1)]))
    index.apply([Event("Deposited", {"participant": i, "from": OWNERS[i], "amount": 20_000_000}, 3, tx(3), i) for i in range(1, homes + 1)])
    batteries = {pid: [5000, 10_000 if pid % 2 else 5000] for pid in range(1, homes + 1) if pid % 3 == 0}
    baseline = []
    for k in range(intervals):
        hour = (k * 15 / 60) % 24
        sun = max(0.0, 1 - abs(hour - 13) / 6)
        # Every other home has PV, so at midday the PV homes sell to the others.
        net = {pid: int(rng.gauss(250, 80) + (300 if 17 <= hour < 21 else 0) - (pid % 2 == 0) * sun * rng.uniform(600, 1400))
               for pid in range(1, homes + 1)}
        sellers = {p: -v for p, v in net.items() if v < 0}
        buyers = {p: v for p, v in net.items() if v > 0}
        volume = min(sum(sellers.values()), sum(buyers.values())) * 7 // 10
        entries, sold_left, bought_left = [], volume, volume
        for pid in range(1, homes + 1):
            p2p = 0
            if pid in sellers and sold_left:
                p2p = -min(sellers[pid], sold_left)
                sold_left += p2p
            elif pid in buyers and bought_left:
                p2p = min(buyers[pid], bought_left)
                bought_left -= p2p
            entries.append([pid, net[pid] - p2p, p2p])
        assert sold_left == 0 and bought_left == 0
        soc = {}
        for pid, state in batteries.items():
            state[0] = min(state[1], max(0, state[0] + int(sun * 600) - (400 if 17 <= hour < 23 else 50)))
            soc[pid] = (state[0], state[1])
        index.apply(settle_events(index, k, [tuple(e) for e in entries], block=10 + k, homes=homes,
                                  import_cap=15_000, export_cap=10_000, soc=soc, p2p_price=(BUY + SELL) // 2),
                    gas_used={tx(k + 1000): 180_000 + 9_000 * homes})
        baseline += [(k, pid, max(v, 0), max(-v, 0), max(v, 0) * BUY // 1000 - max(-v, 0) * SELL // 1000) for pid, v in net.items()]
    index.store_baseline(baseline)
    index.close()


def test_pages_handle_a_real_sized_community(tmp_path):
    path = tmp_path / "demo.sqlite"
    build_realistic_index(path)
    client = create_app({"INDEX_PATH": str(path)}).test_client()
    index = Index(path)
    for url in ("/", "/?interval=50", "/participants/", "/participants/3", "/participants/0", "/intervals/", "/intervals/95", "/intervals/0"):
        page(client, url)
    for k in range(96):
        data = client.get(f"/api/intervals/{k}").get_json()
        assert sum(f["wh"] for f in data["p2p_flows"]) == data["p2p_wh"]
    series = client.get("/api/series").get_json()
    assert len(series["interval"]) == 96 and len(series["batteries"]) == 6
    html = page(client, "/")
    for p in index.participants():
        assert f'href="/participants/{p["id"]}"' in html
    index.close()
