"""Start the app on a throw-away database and save screenshots from headless Chromium.

    python scripts/screenshot.py [--out docs/screenshots] [--size 1280x800] [--wait 8]

What a trader sees, for the README and for looking at the app as a user would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.headless import HEADLESS_CHROME_ARGS  # noqa: E402


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def wait_for_chart(driver: webdriver.Chrome, timeout: float = 120) -> None:
    """Until the live chart holds traces (the placeholder has none)."""
    script = (
        "const g = document.querySelector('#price-chart .js-plotly-plot');"
        " return g && g.data ? g.data.length : 0"
    )
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no chart after {timeout:g} s at {driver.current_url}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="1280x800")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds of live ticks first")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = args.size.split("x")
    env = dict(
        os.environ,
        STRATLENS_DATA_DIR=tempfile.mkdtemp(),
        PORT=str(args.port),
        FEED_SPEED=os.environ.get("FEED_SPEED", "2"),
        LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT)
    options = Options()
    for argument in (*HEADLESS_CHROME_ARGS, f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = None
    try:
        base = f"http://127.0.0.1:{args.port}"
        wait_for(base + "/")
        driver = webdriver.Chrome(options=options)
        layered = (
            "symbol=SP500&tf=1d&ind=ema(timeperiod=50)&ind=bbands&ind=rsi&ind=macd"
            "&strat=ema_crossover(direction=both,fast=12,slow=26)"
            "&strat=rsi_reversion(direction=both)"
        )
        shots = [
            ("live_chart_sp500_1d", "/?symbol=SP500&tf=1d", None),
            ("live_layers_sp500_1d", "/?" + layered, None),
            ("live_layers_sp500_1d_light", "/?" + layered + "&theme=light", None),
            ("live_performance_sp500_1d", "/?" + layered, "#panel-tabs"),
            ("live_comparison_sp500_1d", "/?" + layered, "comparison"),
            ("live_chart_demo_15m", "/?symbol=DEMO&tf=15m&ind=vwap&strat=donchian_breakout", None),
            ("live_lod_demo_1m", "/?symbol=DEMO&tf=1m&lod=1", None),
            ("formulas", "/docs/metrics", None),
        ]
        for name, path, then in shots:
            driver.get(base + path)
            if path.startswith("/?"):  # a live view: its first figure, however long it takes
                wait_for_chart(driver)
            time.sleep(args.wait)  # then some live ticks
            if then == "comparison":
                for link in driver.find_elements("css selector", "#panel-tabs .nav-link"):
                    if link.text == "Comparison":
                        driver.execute_script("arguments[0].click();", link)
                time.sleep(args.wait)  # four figures and a table are computed on first show
                then = "#panel-tabs"
            if then:
                element = driver.find_element("css selector", then)
                driver.execute_script("arguments[0].scrollIntoView(true);", element)
                time.sleep(1)
            driver.save_screenshot(str(args.out / f"{name}_{args.size}.png"))
        logs = driver.get_log("browser")
        for entry in logs:
            print("browser console:", entry)
        return 1 if any(e["level"] == "SEVERE" for e in logs) else 0
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
