"""Web UI page timings at 20 and 1,000 homes against their targets and, with
--screenshots DIR, a screenshot of every page at both sizes (headless Chromium) for
the README.

Both communities are settled through the real pipeline, `gridledger simulate` on the
embedded chain, into --work (kept and reused: delete it to settle again). The 20-home
community is the demo's (one day of 15-minute intervals); the 1,000-home one has one
day of 60-minute intervals, 24 settlements of 1,000 entries each (some minutes).

Server time is the median of --repeat requests through Flask's test client (no
network), after one warm-up request; the browser's figure is the time to the load
event, network and rendering included, of the page as a user opens it.

    .venv/bin/python bench/bench_webui.py [--screenshots docs/screenshots] [--sizes 20 1000]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
# Server time targets: a page people open, and a playback frame (10 frames a second at 10x).
PAGE_TARGET_MS, FRAME_TARGET_MS = 300, 100
CONFIGS = {
    20: "",
    1000: "[market]\ninterval_minutes = 60\nhorizon_steps = 24\n\n[community]\nhomes = 1000\n",
}


def settle(work: Path, homes: int) -> Path:
    """The state directory of the `homes` community, settled with `gridledger simulate`."""
    state = work / f"h{homes}"
    if (state / "results" / "kpis.json").exists():
        return state
    work.mkdir(parents=True, exist_ok=True)
    config = work / f"h{homes}.toml"
    config.write_text(CONFIGS.get(homes) or f"[community]\nhomes = {homes}\n")
    print(f"settling {homes} homes into {state} (gridledger simulate) ...", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "node.cli", "simulate", "--config", str(config), "--state", str(state),
                    "--fresh", "--no-progress"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    print(f"  settled in {time.perf_counter() - started:.0f} s", flush=True)
    return state


def pages(index) -> dict[str, str]:
    """Every page of the UI (and the playback frame) for the index's community."""
    first, last = index.settled_range()
    mid = (first + last) // 2
    batteries = [p["id"] for p in index.participant_list() if p["id"] != 0 and p["battery_wh"]]
    home = batteries[0] if batteries else 1  # a home with a battery shows every chart
    out = {
        "dashboard": f"/?interval={mid}",
        "frame": f"/frames/{mid}",
        "participants": "/participants/",
        "participant": f"/participants/{home}",
        "grid": "/participants/0",
        "intervals": "/intervals/",
        "interval": f"/intervals/{mid}",
        "orders": "/orders",
        "wallet": "/wallet",
        "runs": "/runs",
        "run-form": "/runs/new",
        "audit": "/audit",
        "admin": "/admin",
        "participants.csv": "/export/participants.csv",
        "series.csv": "/export/series.csv",
    }
    from webui.flowview import group_homes

    groups = group_homes(index.participant_list())
    if len(groups[0].pids) > 1:
        out["dashboard-zoomed"] = f"/?interval={mid}&group={groups[0].key}"
    return out


def time_pages(app, urls: dict[str, str], repeat: int) -> dict[str, float]:
    client = app.test_client()
    out = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
        out[name] = statistics.median(samples)
    return out


def screenshots(app, urls: dict[str, str], out: Path, prefix: str) -> dict[str, float]:
    """Full-page screenshots; returns each page's time to its load event in the browser."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    loads = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                        "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for name, url in urls.items():
                if name.endswith(".csv") or name == "frame":
                    continue
                started = time.perf_counter()
                page.goto(base + url, wait_until="load")
                loads[name] = (time.perf_counter() - started) * 1000
                if name == "wallet":  # signed in as home 1 with the demo's test wallet
                    page.click("[data-act-as-chosen]")  # the first home
                    page.wait_for_selector("[data-acting]:not([hidden])")
                    page.click("[data-sign-in]")
                    page.wait_for_selector("text=Signed in as")
                page.screenshot(path=str(out / f"{prefix}-{name}.jpg"), full_page=True, type="jpeg", quality=75)
            browser.close()
    finally:
        server.shutdown()
    return loads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench" / ".webui", help="where the settled states are kept")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 1000], help="community sizes (homes)")
    parser.add_argument("--repeat", type=int, default=5, help="requests per page for the median")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="also write a screenshot of every page here")
    args = parser.parse_args()

    from node.index.store import Index
    from webui import create_app

    failed = 0
    for homes in args.sizes:
        state = settle(args.work, homes)
        index = Index(state / "index.sqlite")
        urls = pages(index)
        index.close()
        app = create_app({"INDEX_PATH": str(state / "index.sqlite"), "RUNS_DIR": str(args.work / "runs"), "DEMO_SEED": 42})
        timings = time_pages(app, urls, args.repeat)
        loads = screenshots(app, urls, args.screenshots, f"{homes}") if args.screenshots else {}
        print(f"\n{homes} homes: server time per page (median of {args.repeat}), and in the browser to its load event")
        for name, ms in timings.items():
            target = FRAME_TARGET_MS if name == "frame" else PAGE_TARGET_MS
            verdict = "ok" if ms <= target else "SLOW"
            failed += verdict != "ok"
            browser = f"{loads[name]:7.0f} ms in the browser" if name in loads else ""
            print(f"  {name:18s} {ms:7.1f} ms  (target {target} ms) {verdict:4s} {browser}")
    if args.screenshots:
        print(f"\nscreenshots in {args.screenshots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
