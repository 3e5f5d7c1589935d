"""Classroom mode: generators' offers by key, the admin's clearing, durable state, the
pages and their protections, and a class driven through a real browser."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import time
from html import unescape
from pathlib import Path

import pytest

from node.classroom.session import KEYS_FILE, STATE_FILE, Classroom
from node.errors import InputError
from tests.conftest import served
from tests.helpers import start_gridledger
from webui.classroom import create_classroom_app

REPO = Path(__file__).resolve().parent.parent
CASE = REPO / "examples" / "mini-iso" / "three_zones.json"


@pytest.fixture
def case_dir(tmp_path) -> Path:
    """A copy of the example case the test may change."""
    target = tmp_path / "cases"
    shutil.copytree(CASE.parent, target)
    return target


@pytest.fixture
def room(case_dir, tmp_path) -> Classroom:
    return Classroom.from_files([case_dir / CASE.name], tmp_path / "state")


def keys(room: Classroom) -> dict[str, str]:
    with open(room.state_dir / KEYS_FILE) as file:
        return {row["name"]: row["key"] for row in csv.DictReader(file)}


def state_bytes(room: Classroom) -> bytes:
    return (room.state_dir / STATE_FILE).read_bytes()


# -- the engine ---------------------------------------------------------------------------------


def test_every_generator_and_the_admin_get_a_key_only_its_hash_is_in_the_state(room):
    issued = keys(room)
    assert set(issued) == {"admin", "Hydro", "Gas", "Peaker"}
    assert stat.S_IMODE(os.stat(room.state_dir / KEYS_FILE).st_mode) == 0o600
    assert room.authenticate(issued["Gas"]).name == "Gas" and room.authenticate(issued["admin"]).is_admin
    assert room.authenticate("not-a-key") is None and room.authenticate("") is None
    assert not any(key in state_bytes(room).decode() for key in issued.values())


def test_offers_then_a_round_price_the_binding_line_and_conserve_money(room):
    room.submit_offers("Gas", [("a", 100, 19), ("b", 50, 22)])
    cleared = room.clear()
    assert cleared.ok and cleared.number == 1
    # North 10 (Hydro marginal), East 19 (Gas marginal), City 2 x 19 - 10 = 28 behind the 80 MW line.
    assert cleared.lmp() == {"North": 10.0, "East": 19.0, "City": 28.0}
    binding = [line for line in cleared.lines if line.binding]
    assert [(line.name, line.flow_mw, line.limit_mw) for line in binding] == [("north-city", 80.0, 80.0)]
    assert cleared.load_payment - cleared.generator_revenue == pytest.approx(cleared.congestion_rent)
    assert cleared.congestion_rent == pytest.approx(sum(line.rent for line in cleared.lines))
    gas = next(g for g in cleared.generators if g.name == "Gas")
    assert (gas.dispatched_mw, gas.revenue, gas.cost, gas.profit) == (60.0, 60 * 19.0, 60 * 18.0, 60.0)
    assert not room.pending()


def test_an_offer_beyond_capacity_or_absurd_changes_nothing(room):
    before = state_bytes(room)
    for tranches, problem in [
        ([("a", 100, 19), ("b", 51, 22)], "at most its capacity of 150 MW; these tranches add up to 151 MW"),
        ([("a", -1, 19)], "quantity must be 0 MW or more"),
        ([("a", 10, 1e9)], "beyond"),
        ([("a", 10, float("nan"))], "price must be a number"),
        ([("a", 10, 1), ("a", 10, 2)], "'a' appears twice"),
        ([(f"t{k}", 1, 1) for k in range(11)], "at most 10 tranches"),
    ]:
        with pytest.raises(InputError, match=re.escape(problem)):
            room.submit_offers("Gas", tranches)
    with pytest.raises(InputError, match="no generator 'Coal'"):
        room.submit_offers("Coal", [("a", 1, 1)])
    assert state_bytes(room) == before


def test_a_restart_keeps_offers_loads_rounds_keys_and_schedule(room):
    issued = keys(room)
    room.submit_offers("Peaker", [("x", 40, 5)])
    room.set_loads({"City": 120.0})
    room.set_auto_clear(30)
    first = room.clear()
    again = Classroom(room.cases, room.state_dir)
    assert again.case.offers_of("Peaker")[0].price_per_mwh == 5.0 and again.case.loads_mw["City"] == 120.0
    assert again.rounds() == [first] and again.auto_clear_s == 30.0 and again.submitted() == {"Peaker"}
    assert keys(again) == issued and again.authenticate(issued["Hydro"]).name == "Hydro"
    assert again.secret == room.secret


def test_loading_a_case_again_starts_from_its_files(room):
    room.submit_offers("Gas", [("a", 10, 1)])
    room.load_case("three_zones")
    assert room.case.offers_of("Gas")[0].quantity_mw == 100.0 and room.submitted() == set()
    with pytest.raises(InputError, match="no case 'other'"):
        room.load_case("other")


def test_a_round_the_offers_cannot_serve_is_kept_with_the_reason(room):
    room.set_loads({"City": 1000.0})
    cleared = room.clear()
    assert not cleared.ok and "cannot cover the load" in cleared.error
    assert room.latest() == cleared


def test_a_value_of_lost_load_sheds_instead(case_dir, tmp_path):
    room = Classroom.from_files([case_dir / CASE.name], tmp_path / "voll", value_of_lost_load=3000.0)
    room.set_loads({"City": 400.0})
    cleared = room.clear()
    assert cleared.ok and cleared.lmp()["City"] == 3000.0


def test_bad_loads_and_schedules_are_refused(room):
    for loads, problem in [({"City": -5.0}, "from 0 to"), ({"Mars": 1.0}, "no zone 'Mars'"), ({"City": float("inf")}, "from 0 to")]:
        with pytest.raises(InputError, match=problem):
            room.set_loads(loads)
    with pytest.raises(InputError, match="0 .never. or 1 to 86400"):
        room.set_auto_clear(0.5)


def test_the_clock_clears_only_when_something_changed_and_n_seconds_passed(case_dir, tmp_path):
    now = [1000.0]
    room = Classroom.from_files([case_dir / CASE.name], tmp_path / "clock", clock=lambda: now[0])
    assert not room.due()  # no schedule
    room.set_auto_clear(10)
    assert room.due()  # nothing cleared yet
    room.clear()
    now[0] += 30
    assert not room.due()  # nothing changed
    room.submit_offers("Gas", [("a", 10, 30)])
    assert room.due()
    room.clear()
    room.submit_offers("Gas", [("a", 10, 31)])
    now[0] += 5
    assert not room.due()  # too soon


def test_the_clock_thread_clears_by_itself(room):
    room.set_auto_clear(1)
    room.start()
    try:
        deadline = time.monotonic() + 20
        while room.latest() is None:
            assert time.monotonic() < deadline, "the clock did not clear"
            time.sleep(0.1)
    finally:
        room.stop()
    assert room.latest().ok


def test_a_corrupt_state_or_a_foreign_directory_is_refused_not_overwritten(case_dir, tmp_path):
    state = tmp_path / "broken"
    state.mkdir()
    (state / STATE_FILE).write_text("{not json")
    with pytest.raises(InputError, match="cannot be read.*move it away"):
        Classroom.from_files([case_dir / CASE.name], state)
    assert (state / STATE_FILE).read_text() == "{not json"
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.sqlite").write_text("")
    with pytest.raises(InputError, match="holds other files"):
        Classroom.from_files([case_dir / CASE.name], other)


def test_a_case_edited_under_the_saved_offers_drops_only_what_no_longer_fits(room, case_dir):
    room.submit_offers("Gas", [("a", 150, 19)])
    room.submit_offers("Hydro", [("a", 20, 9)])
    generators = case_dir / "generators.csv"
    generators.write_text(generators.read_text().replace("Gas,East,150", "Gas,East,100"))
    offers = case_dir / "offers.csv"
    offers.write_text(offers.read_text().replace("Gas,t2,50,25", "Gas,t2,0,25"))
    again = Classroom(room.cases, room.state_dir)
    assert again.case.offers_of("Hydro")[0].quantity_mw == 20.0  # still fits
    assert [o.quantity_mw for o in again.case.offers_of("Gas")] == [100.0, 0.0]  # the file's


# -- the pages -----------------------------------------------------------------------------------


@pytest.fixture
def client(room):
    return create_classroom_app(room, {"TESTING": True}).test_client()


def sign_in(client, key: str) -> str:
    """Signs in and returns the session's form token."""
    response = client.post("/login", data={"key": key})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def test_a_generator_enters_offers_the_admin_clears_and_everyone_sees_the_tables(client, room):
    issued = keys(room)
    token = sign_in(client, issued["Gas"])
    response = client.post("/offers", data={"csrf": token, "tranche": ["a", "b", ""], "quantity": ["100", "50", ""],
                                            "price": ["19", "22", ""]})
    assert response.status_code == 302
    assert "Offers saved" in text(client.get("/offers"))
    assert [o.price_per_mwh for o in room.case.offers_of("Gas")] == [19.0, 22.0]
    assert client.get("/admin").status_code == 403

    client.post("/logout", data={"csrf": token})
    token = sign_in(client, issued["admin"])
    assert client.post("/admin/clear", data={"csrf": token}).status_code == 302
    page = client.get("/")
    shown = text(page)
    assert "Round 1 cleared" in shown and "North → City 80.0 80.0 100%" in shown
    assert re.search(r'data-zone="City"><td>City</td><td class="num lmp">28.00', page.get_data(as_text=True))
    assert "<svg" in page.get_data(as_text=True) and 'data-line="north-city"' in page.get_data(as_text=True)
    data = client.get("/api/rounds/latest").get_json()
    assert {z["name"]: z["lmp"] for z in data["zones"]} == {"North": 10.0, "East": 19.0, "City": 28.0}
    assert client.get("/api/rounds").get_json()["rounds"][0] | {"cleared_at": None} == {
        "number": 1, "cleared_at": None, "case": "three_zones", "ok": True}
    assert client.get("/api/rounds/7").status_code == 404


def test_the_offer_form_explains_a_refusal_and_keeps_what_was_typed(client, room):
    token = sign_in(client, keys(room)["Peaker"])
    response = client.post("/offers", data={"csrf": token, "tranche": ["a", "b"], "quantity": ["30", "20"], "price": ["50", "60"]})
    assert response.status_code == 400
    assert "at most its capacity of 40 MW; these tranches add up to 50 MW" in text(response)
    assert 'value="20"' in response.get_data(as_text=True)
    response = client.post("/offers", data={"csrf": token, "tranche": ["a"], "quantity": ["ten"], "price": ["50"]})
    assert "row 1: 'ten' MW at '50' is not two numbers" in text(response)
    response = client.post("/offers", data={"csrf": token, "tranche": ["a"], "quantity": [""], "price": ["50"]})
    assert "row 1: give the tranche a name, a quantity" in text(response)
    assert room.case.offers_of("Peaker")[0].price_per_mwh == 45.0


def test_posts_without_the_sessions_token_are_refused(client, room):
    sign_in(client, keys(room)["Gas"])
    before = state_bytes(room)
    for data in ({}, {"csrf": "forged"}):
        response = client.post("/offers", data=data | {"tranche": ["a"], "quantity": ["1"], "price": ["1"]})
        assert response.status_code == 403
    assert state_bytes(room) == before


def test_pages_need_the_right_key(client, room):
    assert client.get("/offers").headers["Location"].startswith("/login")
    assert client.get("/admin").headers["Location"].startswith("/login")
    response = client.post("/login", data={"key": "guess"})
    assert response.status_code == 400 and "not known here" in text(response)
    # After signing in, a next= pointing at another site goes home instead.
    response = client.post("/login?next=//evil.example/x", data={"key": keys(room)["admin"]})
    assert response.headers["Location"] == "/admin"


def test_the_admin_sets_loads_schedule_and_case_and_bad_values_are_named(client, room):
    token = sign_in(client, keys(room)["admin"])
    client.post("/admin/loads", data={"csrf": token, "load-North": "0", "load-East": "10", "load-City": "140"})
    assert room.case.loads_mw == {"North": 0.0, "East": 10.0, "City": 140.0}
    client.post("/admin/loads", data={"csrf": token, "load-North": "0", "load-East": "x", "load-City": "140"})
    assert "zone East: 'x' is not a load in MW" in text(client.get("/admin"))
    client.post("/admin/auto", data={"csrf": token, "seconds": "15"})
    assert room.auto_clear_s == 15.0
    assert '<meta http-equiv="refresh" content="15">' in client.get("/").get_data(as_text=True)
    client.post("/admin/case", data={"csrf": token, "case": "three_zones"})
    assert room.case.loads_mw["City"] == 150.0


# -- the command ---------------------------------------------------------------------------------


def test_gridledger_classroom_serves_the_case_and_says_where_the_keys_are(tmp_path):
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = tmp_path / "room"
    process = start_gridledger("classroom", "--case", str(CASE), "--state", str(state), "--port", str(port),
                               "--clear-every", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first and str(state / KEYS_FILE) in first
        deadline = time.monotonic() + 30
        while True:  # the schedule clears the case as loaded
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/rounds/latest", timeout=5) as response:
                    data = json.load(response)
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.3)
        assert {z["name"]: z["lmp"] for z in data["zones"]} == {"North": 10.0, "East": 20.0, "City": 30.0}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_gridledger_classroom_refuses_a_bad_case_in_one_line(tmp_path, case_dir):
    offers = case_dir / "offers.csv"
    offers.write_text(offers.read_text().replace("Peaker,t1,40", "Peaker,t1,41"))
    process = start_gridledger("classroom", "--case", str(case_dir / CASE.name), "--state", str(tmp_path / "s"),
                               stdout=-1, stderr=-1, text=True)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "Traceback" not in err
    assert "offers.csv, row 6, column 'quantity'" in err and "capacity of 40 MW" in err


# -- a real browser -------------------------------------------------------------------------------

from tests.test_webui_orders import browser  # noqa: E402,F401  (the headless chromium fixture)


def test_a_class_in_a_real_browser_offers_clears_and_sees_the_map(room, browser):  # noqa: F811
    issued = keys(room)
    with served(create_classroom_app(room)) as url:
        def sign_in_as(key: str, lands_on: str) -> None:
            browser.call("Page.navigate", url=f"{url}/login")
            browser.wait_for("document.readyState === 'complete' && !!document.getElementById('login-form')")
            browser.eval(f"document.querySelector('input[name=key]').value = {json.dumps(key)};"
                         "document.getElementById('login-form').submit()")
            browser.wait_for(f"location.pathname === '{lands_on}' && document.readyState === 'complete'")

        browser.call("Page.enable")
        sign_in_as(issued["Gas"], "/offers")
        browser.eval("""
          const f = document.getElementById('offer-form');
          const set = (name, k, v) => f.querySelectorAll(`input[name=${name}]`)[k].value = v;
          set('tranche', 0, 'cheap'); set('quantity', 0, '100'); set('price', 0, '19');
          set('tranche', 1, 'dear'); set('quantity', 1, '50'); set('price', 1, '22');
          f.submit();""")
        browser.wait_for("document.readyState === 'complete' && document.body.innerText.includes('Offers saved')")
        assert browser.eval("document.getElementById('offered').innerText") == "150.0 MW"
        browser.eval("document.querySelector('.inline-form').submit()")
        browser.wait_for("location.pathname === '/' && document.readyState === 'complete'")

        sign_in_as(issued["admin"], "/admin")
        browser.eval("document.getElementById('clear-now').click()")
        browser.wait_for("location.pathname === '/' && !!document.getElementById('round-number')")
        prices = browser.eval("Object.fromEntries([...document.querySelectorAll('#zones tbody tr')]"
                              ".map(r => [r.dataset.zone, r.querySelector('.lmp').innerText]))")
        assert prices == {"North": "10.00", "East": "19.00", "City": "28.00"}
        # The map draws the binding line in red and every zone with its price.
        assert browser.eval("[...document.querySelectorAll('svg .zm-line.binding')].map(g => g.dataset.line)") == ["north-city"]
        assert browser.eval("document.querySelector('svg [data-zone=City] .zm-price').textContent") == "28.00"
        assert browser.eval("document.querySelector('svg.zone-map').getBoundingClientRect().width") > 200
