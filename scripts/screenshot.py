"""Start the app on a throw-away database and save screenshots from headless Chromium.

    python scripts/screenshot.py [--out docs/screenshots] [--sizes 1280x800,1920x1080]
                                 [--themes dark,light] [--only layers] [--wait 8] [--port N]

What a trader sees, for the README and for looking at the app as a user would: each view at
each viewport size (exactly, by device emulation) in each theme; light ones end in
``_light_<size>.png``. The scratch database also holds STOCK, an intraday stock-like series
(weekdays 14:30-21:00 UTC), to see the chart hide nights and weekends, and the attribution
page's accounts: a paper replay and a bot's imported fills, and the execution page's: a
desk's imported orders (scripts/sample_orders.py) with a trained cost model.
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


def wait_for_chart(driver: webdriver.Chrome, timeout: float = 300) -> None:
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


def wait_for_figures(driver: webdriver.Chrome, selector: str, timeout: float = 180) -> None:
    """Until every plotly graph under ``selector`` holds traces (panels compute on first show)."""
    script = (
        "const graphs = [...document.querySelectorAll(arguments[0] + ' .js-plotly-plot')];"
        " return graphs.length > 0 && graphs.every(g => g.data && g.data.length > 0)"
    )
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script, selector):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no figures in {selector} after {timeout:g} s")
        time.sleep(0.2)


def import_intraday_stock(env: dict[str, str], folder: Path) -> None:
    """A stock-like 1h series (weekdays 14:30-21:00 UTC) as STOCK: the chart hides its nights
    and weekends (rangebreaks by the calendar its bars follow)."""
    from market.sample_data import generate_session_walk

    path = folder / "stock_1h.csv"
    frame = generate_session_walk("STOCK", "1h", "2024-01-01", 120, seed=7)
    frame.rename_axis("timestamp").to_csv(path)
    command = [sys.executable, str(ROOT / "app.py"), "import", str(path), "--symbol", "STOCK",
               "--timeframe", "1h"]  # fmt: skip
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def deploy_paper_strategy(env: dict[str, str]) -> None:
    """A paper account "demo" trading SP500 1d with a running deployment, so the trading
    page and the live chart's executions layer have orders and fills to show."""
    app = [sys.executable, str(ROOT / "app.py"), "paper"]
    for args in (
        ["account", "create", "demo", "--cash", "10000", "--max-drawdown", "0.5"],
        ["deploy", "sma-sp500", "--account", "demo", "--strategy", "sma_crossover",
         "--set", "fast=3", "--set", "slow=8", "--symbol", "SP500", "--timeframe", "1d",
         "--take-profit", "0.3", "--commission", "0.001"],
        ["start", "sma-sp500"],
    ):  # fmt: skip
        subprocess.run([*app, *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def seed_tracked_trades(env: dict[str, str], folder: Path) -> None:
    """The attribution page's accounts: a paper replay of SP500 1d ("p1") and a bot's
    intraday fills imported from a CSV ("bot-sp500", scripts/sample_fills.py)."""
    app = [sys.executable, str(ROOT / "app.py")]
    fills = folder / "bot_fills.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sample_fills.py"), str(fills)],
                   env=env, cwd=ROOT, check=True)  # fmt: skip
    for args in (
        ["paper", "replay", "--symbol", "SP500", "--timeframe", "1d", "--strategy",
         "sma_crossover", "--account", "p1"],
        ["trades", "import", str(fills), "--format", "csv", "--account", "bot-sp500"],
    ):  # fmt: skip
        subprocess.run([*app, *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def seed_desk_orders(env: dict[str, str], folder: Path) -> None:
    """The execution page's imported account: a desk's orders and fills on DEMO 1m ("desk",
    scripts/sample_orders.py) and its cost model, trained (predicted against realised cost)."""
    app = [sys.executable, str(ROOT / "app.py")]
    orders = folder / "desk_orders.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sample_orders.py"), str(orders)],
                   env=env, cwd=ROOT, check=True)  # fmt: skip
    for args in (
        ["trades", "import", str(orders), "--format", "orders-csv", "--account", "desk"],
        ["costmodel", "train", "--account", "desk"],
    ):
        subprocess.run([*app, *args], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


LAYERED = (
    "symbol=SP500&tf=1d&ind=ema(timeperiod=50)&ind=bbands&ind=rsi&ind=macd"
    "&strat=ema_crossover(direction=both,fast=12,slow=26)"
    "&strat=rsi_reversion(direction=both)"
)
TRADED = "sma_crossover(direction=long,fast=3,slow=8)"  # the paper deployment's strategy
BOT_VIEW = "account=bot-sp500&benchmark=NASDAQ&capital=25000"  # an imported bot: no capital
# name, path, what to show: None (the page as it opens), a tab of the panels to open and show
SHOTS = (
    ("live_chart_sp500_1d", "/?symbol=SP500&tf=1d", None),
    ("live_layers_sp500_1d", "/?" + LAYERED, None),
    ("live_performance_sp500_1d", "/?" + LAYERED, "Performance"),
    ("live_comparison_sp500_1d", "/?" + LAYERED, "Comparison"),
    ("live_labels_sp500_1d", "/?" + LAYERED, "Labels"),
    ("live_chart_demo_15m", "/?symbol=DEMO&tf=15m&ind=vwap&strat=donchian_breakout", None),
    ("live_chart_stock_1h", "/?symbol=STOCK&tf=1h&ind=rsi", None),
    ("live_lod_demo_1m", "/?symbol=DEMO&tf=1m&lod=1&strat=donchian_breakout", None),
    ("formulas", "/docs/metrics", None),
    ("trading", "/trading", None),
    ("live_executions_sp500_1d", "/?symbol=SP500&tf=1d&exec=demo&strat=" + TRADED, None),
    ("attribution", "/attribution?" + BOT_VIEW, None),
    ("attribution_trade", "/attribution?" + BOT_VIEW, "trade"),
    ("attribution_paper", "/attribution?account=p1&benchmark=NASDAQ", None),
    ("execution", "/execution?account=desk&by=venue", None),
    ("execution_grid", "/execution?account=desk&by=algo", "grid"),
    ("execution_paper", "/execution?account=p1&by=side", None),
)
EXECUTION_CARDS = ("slippage", "shortfall", "markouts", "quality", "breakdown")
PANEL_FIGURES = {"Performance": "#perf-monthly", "Comparison": "#cmp-scatter"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--sizes", default="1280x800", help="viewports, e.g. 1280x800,1920x1080")
    parser.add_argument("--themes", default="dark,light", help="dark, light, dark,light or both")
    parser.add_argument("--only", default="", help="shots whose name contains this")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds of live ticks first")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    themes = ["dark", "light"] if args.themes == "both" else args.themes.split(",")
    unknown = sorted(set(themes) - {"dark", "light"})
    if unknown:
        parser.error(f"--themes: unknown theme(s) {unknown}: expected dark, light or both")
    data_dir = Path(tempfile.mkdtemp())
    env = dict(
        os.environ,
        STRATLENS_DATA_DIR=str(data_dir),
        PORT=str(args.port),
        FEED_SPEED=os.environ.get("FEED_SPEED", "2"),
        LOG_LEVEL="WARNING",
    )
    import_intraday_stock(env, data_dir)
    deploy_paper_strategy(env)
    seed_tracked_trades(env, data_dir)
    seed_desk_orders(env, data_dir)
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT)
    options = Options()
    for argument in (*HEADLESS_CHROME_ARGS, "--hide-scrollbars"):
        options.add_argument(argument)
    driver = None
    missed: list[str] = []
    try:
        base = f"http://127.0.0.1:{args.port}"
        wait_for(base + "/")
        driver = webdriver.Chrome(options=options)
        for width, height in sizes:
            # the page's viewport exactly (a window of that size is smaller inside)
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            for theme in themes:
                for name, path, panel in SHOTS:
                    if args.only not in name:
                        continue
                    file = f"{name}{'_light' if theme == 'light' else ''}_{width}x{height}.png"
                    try:
                        shot(driver, base, path, panel, theme, args.wait)
                    except TimeoutError as exc:  # a busy machine: the others still get taken
                        print(f"{file} not taken: {exc}", file=sys.stderr)
                        missed.append(file)
                        continue
                    # the paper deployment's fill toasts come and go every few seconds: the
                    # documentation's shots show the page, not whichever toasts were up
                    driver.execute_script(
                        "const t = document.getElementById('al-toasts'); if (t) t.hidden = true;"
                    )
                    driver.save_screenshot(str(args.out / file))
        logs = driver.get_log("browser")
        for entry in logs:
            print("browser console:", entry)
        return 1 if missed or any(e["level"] == "SEVERE" for e in logs) else 0
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(10)


def shot(
    driver: webdriver.Chrome, base: str, path: str, panel: str | None, theme: str, wait: float
) -> None:
    """Open ``path`` in ``theme`` and wait until it shows what the screenshot is of."""
    if theme == "light":
        path += ("&" if "?" in path else "?") + "theme=light"
    driver.get(base + path)
    if path.startswith("/?"):  # a live view: its first figure, however long it takes
        wait_for_chart(driver)
        time.sleep(wait)  # then some live ticks
    if path.startswith("/trading"):  # the account's cards, then some trading
        deadline = time.monotonic() + 120
        while not driver.find_elements("css selector", "#tr-kpi-equity"):
            if time.monotonic() > deadline:
                raise TimeoutError("the trading page showed no account")
            time.sleep(0.5)
        time.sleep(wait)
    if path.startswith("/attribution"):  # every figure, then a round trip's detail
        for card in ("labels", "heatmap", "regime", "size", "risk"):
            wait_for_figures(driver, f"#at-{card}-card")
        if panel == "trade":
            row = "#at-trades .ag-center-cols-container .ag-row[row-index='2'] [col-id='net_pnl']"
            deadline = time.monotonic() + 60
            while not driver.find_elements("css selector", row):
                if time.monotonic() > deadline:
                    raise TimeoutError("no round trips in the grid")
                time.sleep(0.2)
            # a script's click: the toasts may cover the row at the bottom of the screen
            driver.execute_script("arguments[0].click();", driver.find_element("css selector", row))
            wait_for_figures(driver, "#at-detail-card")
            card = driver.find_element("css selector", "#at-trades-card")
            driver.execute_script("arguments[0].scrollIntoView(true);", card)
        time.sleep(1)  # the figures settle
        return
    if path.startswith("/execution"):  # every figure, then the grid for its shot
        for card in EXECUTION_CARDS:
            wait_for_figures(driver, f"#ex-{card}-card")
        # the model's card: its figure, or (no model stored) the note saying how to train one
        deadline = time.monotonic() + 120
        while not driver.find_element("css selector", "#ex-model-note").text:
            if time.monotonic() > deadline:
                raise TimeoutError("the cost model's card stayed empty")
            time.sleep(0.2)
        if panel == "grid":
            deadline = time.monotonic() + 60
            row = "#ex-orders .ag-center-cols-container .ag-row"
            while not driver.find_elements("css selector", row):
                if time.monotonic() > deadline:
                    raise TimeoutError("no orders in the grid")
                time.sleep(0.2)
            card = driver.find_element("css selector", "#ex-breakdown-card")
            driver.execute_script("arguments[0].scrollIntoView(true);", card)
        time.sleep(1)  # the figures settle
        return
    if panel == "Labels":  # the trade grid filtered by the first label offered
        element = driver.find_element("css selector", "#perf-trades")
        driver.execute_script("arguments[0].scrollIntoView(true);", element)
        wait_for_figures(driver, PANEL_FIGURES["Performance"])
        driver.find_element("css selector", "#perf-labels").click()
        deadline = time.monotonic() + 60
        while not driver.find_elements("css selector", ".dash-dropdown-option"):
            if time.monotonic() > deadline:
                raise TimeoutError("the label filter offered no label")
            time.sleep(0.2)
        driver.find_elements("css selector", ".dash-dropdown-option")[0].click()
        while not driver.find_elements("css selector", "#perf-label-summary-text"):
            if time.monotonic() > deadline:
                raise TimeoutError("the label filter summed nothing up")
            time.sleep(0.2)
        from selenium.webdriver.common.keys import Keys

        driver.switch_to.active_element.send_keys(Keys.ESCAPE)  # the menu closed
        element = driver.find_element("css selector", "#perf-labels")
        driver.execute_script("arguments[0].scrollIntoView(true); scrollBy(0, -60);", element)
        time.sleep(1)
        return
    if panel:
        for link in driver.find_elements("css selector", "#panel-tabs .nav-link"):
            if link.text == panel:
                driver.execute_script("arguments[0].click();", link)
        # in view first: a panel's figures are built once they are on screen
        element = driver.find_element("css selector", "#panel-tabs")
        driver.execute_script("arguments[0].scrollIntoView(true);", element)
        wait_for_figures(driver, PANEL_FIGURES[panel])
        time.sleep(1)  # the figures settle


if __name__ == "__main__":
    sys.exit(main())
