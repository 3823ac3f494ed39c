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
from selenium.webdriver.support.ui import Select

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
        url = f"http://127.0.0.1:{args.port}/"
        wait_for(url)
        driver = webdriver.Chrome(options=options)
        driver.get(url)
        time.sleep(args.wait)
        driver.save_screenshot(str(args.out / f"live_chart_sp500_1d_{args.size}.png"))
        Select(driver.find_element("id", "symbol")).select_by_value("DEMO")
        time.sleep(2)
        for label in driver.find_elements("css selector", "#timeframe label"):
            if label.text == "15m":
                label.click()
        time.sleep(args.wait / 2)
        driver.save_screenshot(str(args.out / f"live_chart_demo_15m_{args.size}.png"))
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
