"""The web UI in a real browser (headless Chromium driven by playwright): playback, the
flow view at 1,000 homes, a CSV download, the live view, a simulation started from the
browser, and a participant's order from sign-in to its settled interval.

One demo shared by all but the 1,000-home test: `gridledger demo --mechanism auction`
as a user starts it (real chain, real oracle, real server), whose last intervals
settle one every TICK seconds while the tests watch and place orders. The 1,000-home
flow view reads an index written directly (settling 1,000 homes takes minutes).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from eth_account.messages import encode_defunct, encode_typed_data

from node.simulation.setup import demo_key
from tests.conftest import served
from tests.helpers import start_gridledger
from tests.test_webui import build_realistic_index
from webui import create_app

CHROMIUM = "/usr/bin/chromium"
HOMES, TICK, LIVE = 4, 2.0, 80  # the demo's last LIVE intervals settle one every TICK s
SEED = 42  # the demo's default seed: its homes' keys are demo_key(SEED, name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def wait_for_js(page, expression: str, seconds: float = 30):
    """Until `expression` is true in the page. Not page.wait_for_function: it polls with
    eval inside the page, which the server's Content-Security-Policy (no unsafe-eval)
    refuses, as it should; page.evaluate runs through the DevTools protocol instead."""
    return wait_until(lambda: page.evaluate(expression), seconds, expression)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"no chromium at {CHROMIUM}: install it with apt-get install chromium")
        pytest.skip("no chromium at " + CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM,
                                     args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"the page's scripts failed: {errors}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`gridledger demo --mechanism auction` with its UI; yields its base URL once the
    replayed intervals are settled and the last LIVE ones have begun to settle in turn."""
    root = tmp_path_factory.mktemp("demo")
    port = _free_port()
    log = (root / "demo.log").open("w")
    process = start_gridledger("demo", "--state", str(root / "state"), "--homes", str(HOMES), "--mechanism", "auction",
                               "--live-intervals", str(LIVE), "--tick", str(TICK), "--port", str(port), "--no-progress",
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def ready():
        assert process.poll() is None, (root / "demo.log").read_text()[-3000:]
        try:
            return get_json(base + "/api/live")["intervals"] >= 96 - LIVE
        except OSError:
            return False

    try:
        wait_until(ready, 180, "the demo to settle its replayed intervals")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def last_settled(base: str) -> int:
    return get_json(base + "/api/live")["last_interval"]


# -- a participant's order, from sign-in to its settled interval -------------------------------


def test_an_order_signed_in_the_browser_settles_and_shows_on_its_interval(demo, page):
    key = demo_key(SEED, "home-01")  # participant 1's owner: the test holds the key, the page a wallet

    def sign(method: str, params: str) -> str:
        params = json.loads(params)
        if method == "personal_sign":
            signed = key.sign_message(encode_defunct(hexstr=params[0]))
        else:
            assert method == "eth_signTypedData_v4" and params[0].lower() == key.address.lower()
            signed = key.sign_message(encode_typed_data(full_message=json.loads(params[1])))
        return "0x" + bytes(signed.signature).hex()

    page.expose_function("testWalletSign", sign)
    page.add_init_script(f"""
      window.ethereum = {{ request: async ({{method, params}}) => {{
        if (method === "eth_requestAccounts" || method === "eth_accounts") return ["{key.address.lower()}"];
        if (method === "personal_sign" || method === "eth_signTypedData_v4") return await window.testWalletSign(method, JSON.stringify(params));
        throw new Error("the test wallet does not do " + method);
      }} }};""")
    page.goto(demo + "/wallet")
    page.click("[data-sign-in]")
    page.wait_for_selector("text=Signed in as")
    assert "home-01" in page.inner_text("#mine")

    k = last_settled(demo) + 5  # a few ticks ahead: still open when the form is filled in
    page.goto(f"{demo}/orders?participant=1&side=buy&energy_kwh=0.5&limit_price=0.45&interval={k}"
              f"&expiry=2100-01-01T00:00:00Z&nonce={int(time.time() * 1000)}")
    page.click("#wallet")  # the browser wallet signs the EIP-712 order and the page submits it
    page.wait_for_selector("text=accepted")
    assert f"in interval #{k}" in page.inner_text("main")

    wait_until(lambda: last_settled(demo) >= k, 7 * TICK + 30, f"interval {k} to settle")
    page.goto(f"{demo}/intervals/{k}")
    mine = page.locator("#auction-orders tr.yours")
    assert mine.count() == 1
    row = mine.inner_text()
    assert "#1" in row and "buy" in row and "0.50 kWh" in row
    page.goto(demo + "/wallet")
    assert "settled: see how it cleared" in page.inner_text("#orders-table")


# -- live ------------------------------------------------------------------------------------


def test_the_dashboard_follows_intervals_as_they_settle(demo, page):
    page.goto(demo + "/")
    before = int(page.get_attribute("#player", "data-k"))
    wait_for_js(page, f"Number(document.getElementById('player').dataset.k) > {before}", 20)
    assert page.is_visible("#live") and "live" in page.inner_text("#live")
    now = int(page.get_attribute("#player", "data-k"))
    assert f"Wallets after #{now}" in page.inner_text("#wallets-panel")
    assert int(page.inner_text("#settled-count").split()[0]) >= now + 1  # the lead follows the index too


# -- playback -------------------------------------------------------------------------------


def test_playback_plays_pauses_steps_and_keeps_the_position_in_the_url(demo, page):
    # Within the replayed intervals (0..15): those after them settle live, one every TICK s.
    page.goto(f"{demo}/?interval=0&from=0&to=15")
    marker = page.locator("#charts line.marker").first
    start_x = float(marker.get_attribute("x1"))
    page.select_option("#speed", "10")
    page.click("#play")
    wait_until(lambda: int(page.get_attribute("#player", "data-k")) >= 6, 20, "playback to reach #6")
    page.click("#play")  # pause
    page.wait_for_timeout(300)  # a frame requested just before the pause may still land
    paused = int(page.get_attribute("#player", "data-k"))
    page.wait_for_timeout(800)
    assert int(page.get_attribute("#player", "data-k")) == paused
    assert f"interval={paused}" in page.url and "speed=10" in page.url
    # The drawing, the wallets and every chart's marker moved together.
    assert f"Wallets after #{paused}" in page.inner_text("#wallets-panel")
    assert f"Interval #{paused}" in page.inner_text("#flow-panel")
    assert float(marker.get_attribute("x1")) > start_x
    # The slider jumps, the arrow keys step.
    page.locator("#step").fill("12")
    wait_for_js(page, "document.getElementById('position').textContent.startsWith('#12 ')")
    page.locator("body").press("ArrowRight")
    wait_for_js(page, "document.getElementById('position').textContent.startsWith('#13 ')")
    assert "Wallets after #13" in page.inner_text("#wallets-panel") and "interval=13" in page.url
    page.reload()  # the URL keeps the position
    assert page.get_attribute("#player", "data-k") == "13"


# -- the flow view at 1,000 homes ------------------------------------------------------------


@pytest.fixture(scope="module")
def thousand(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "index.sqlite"
    build_realistic_index(path, homes=1000, intervals=3)
    with served(create_app({"INDEX_PATH": str(path)})) as url:
        yield url


def label_boxes(page) -> list[dict]:
    return page.eval_on_selector_all(
        "svg.flowview text",
        "els => els.map(e => { const b = e.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height, t: e.textContent}; })")


def assert_apart(boxes: list[dict], svg: dict) -> None:
    for i, a in enumerate(boxes):
        assert a["w"] > 0 and a["x"] >= svg["x"] - 0.5 and a["x"] + a["w"] <= svg["x"] + svg["width"] + 0.5, a
        for b in boxes[i + 1:]:
            overlap = (min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]),
                       min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
            assert overlap[0] <= 0.5 or overlap[1] <= 0.5, f"labels overlap: {a} and {b}"


def test_the_flow_view_of_1000_homes_has_no_overlapping_labels(thousand, page):
    page.goto(f"{thousand}/?interval=2")
    svg = page.locator("svg.flowview").bounding_box()
    boxes = label_boxes(page)
    names = [b for b in boxes if b["t"].startswith("zone")]
    assert 10 <= len(names) <= 40  # 1,000 homes in at most 40 rows
    assert_apart(boxes, svg)
    page.locator("svg.flowview a.fv-row").nth(2).click()  # zoom into a group
    page.wait_for_selector("text=All homes")
    zoomed = label_boxes(page)
    assert any(b["t"].startswith("home-") for b in zoomed) and any(b["t"].startswith("other ") for b in zoomed)
    assert_apart(zoomed, page.locator("svg.flowview").bounding_box())


# -- downloads -------------------------------------------------------------------------------


def test_a_table_downloads_as_csv(demo, page):
    page.goto(f"{demo}/participants/")
    with page.expect_download() as download:
        page.click("a.csv")
    rows = Path(download.value.path()).read_text().splitlines()
    assert download.value.suggested_filename == "participants.csv"
    assert rows[0].startswith("id,name,owner,zone") and "savings_units" in rows[0]
    assert len(rows) == 1 + 1 + HOMES  # the header, the grid, the homes


# -- a simulation started from the browser ------------------------------------------------------


def test_a_simulation_started_in_the_browser_runs_to_its_results(demo, page):
    page.goto(demo + "/runs/new")
    assert "Most power the whole community may draw from the grid" in page.get_attribute(
        "input[name='grid.import_capacity_kw']", "title")
    page.fill("input[name='community.homes']", "2")
    page.fill("input[name='market.interval_minutes']", "60")
    page.fill("input[name='market.horizon_steps']", "24")
    page.fill("input[name='name']", "from-the-browser")
    page.click("text=Start the run")
    page.wait_for_url("**/runs/from-the-browser")
    page.wait_for_selector("#run-status:text('done')", timeout=150_000)  # the page follows the run and reloads
    assert "24" in page.inner_text("#run-kpis")  # intervals settled, as kpis.json says
    page.goto(demo + "/runs")
    assert "from-the-browser" in page.inner_text("#runs") and "done" in page.inner_text("#runs")
