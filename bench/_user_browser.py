"""The browser rows of bench/user_paths.py: the app served on a port of its own, driven by a
headless Chromium (selenium), each figure measured inside the page with performance.now().

- backtest page: the form filled for the symbol (SMA crossover 10/30, both sides, backtesting.py
  compat), then from the click on Run (a script clicks it and notes the time) to the frame
  after the KPI cards show the new run's trade count;
- live page: ``/?symbol=S&tf=1m&lod=1`` (the whole history, level of detail) from the start of
  the navigation (performance.now() is 0 there) to the frame after the price chart first holds
  traces. A script installed before any page script (Chrome DevTools'
  Page.addScriptToEvaluateOnNewDocument) watches for it.

Waits are WebDriverWait conditions, never sleeps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# a condition that takes longer is a failure, reported as such (BENCH_WAIT_S: seconds)
WAIT_S = float(os.environ.get("BENCH_WAIT_S", 180))

# runs before any page script on every navigation: the first drawn live chart
WATCH_CHART = """
window.__chartDrawn = null;
(function watch() {
  const check = () => {
    const g = document.querySelector('#price-chart .js-plotly-plot');
    if (window.__chartDrawn === null && g && g.data && g.data.length > 0 && g._fullLayout) {
      requestAnimationFrame(() => { window.__chartDrawn = performance.now(); });
      return true;
    }
    return false;
  };
  const start = () => {
    if (check()) return;
    const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
    observer.observe(document.documentElement, {subtree: true, childList: true});
  };
  if (document.documentElement) start(); else document.addEventListener('readystatechange', start);
})();
"""

# clicks Run and notes when the status line names a new stored run and the trade count shows
CLICK_RUN = """
const expected = arguments[0];
const status = document.querySelector('#bt-status');
const before = status.textContent;
window.__btShown = null;
const shown = () => {
  const kpi = document.querySelector('#bt-kpi-trades');
  return status.textContent !== before && status.textContent.includes('stored')
    && kpi && kpi.textContent.replace(/[^0-9]/g, '') === expected;
};
const observer = new MutationObserver(() => {
  if (window.__btShown === null && shown()) {
    observer.disconnect();
    requestAnimationFrame(() => { window.__btShown = performance.now() - window.__btClicked; });
  }
});
observer.observe(document.body, {subtree: true, childList: true, characterData: true});
window.__btClicked = performance.now();
document.querySelector('#bt-run').click();
"""


def free_port() -> int:
    """A port between 18000 and 19999 nobody listens on (never 8050: other runs share it)."""
    import random

    for _ in range(200):
        port = random.randint(18000, 19999)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port between 18000 and 19999")


@contextmanager
def served(env: Mapping[str, str], log: Path) -> Iterator[str]:
    """``python app.py serve`` on a free port with ``env``; yields its base URL; stops it."""
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited ({server.returncode}); see {log}")
            try:
                urllib.request.urlopen(base + "/", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer in 120 s; see {log}") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


@contextmanager
def chromium(size: str = "1280,800") -> Iterator[Any]:
    """A headless Chromium window of ``size`` ("width,height"), quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    sys.path.insert(0, str(ROOT))
    from scripts.headless import HEADLESS_CHROME_ARGS

    options = Options()
    for argument in (*HEADLESS_CHROME_ARGS, f"--window-size={size}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _until(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}") from None


def _select(driver: Any, css: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def has_option(d: Any) -> bool:
        options = d.find_element(By.CSS_SELECTOR, css).find_elements(By.TAG_NAME, "option")
        return any(o.get_attribute("value") == value for o in options)

    _until(driver, has_option, f"option {value!r} in {css}")
    Select(driver.find_element(By.CSS_SELECTOR, css)).select_by_value(value)
    _until(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, css).get_attribute("value") == value,
        f"{css} = {value!r}",
    )


def _set_param(driver: Any, name: str, value: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = next(
        e
        for e in driver.find_elements(By.CSS_SELECTOR, "#bt-params input")
        if f'"name":"{name}"' in (e.get_attribute("id") or "")
    )
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value))
    _until(driver, lambda d: field.get_attribute("value") == str(value), f"param {name}={value}")


def backtest_page_runs(driver: Any, base: str, symbol: str, trades: int, runs: int) -> list[float]:
    """Seconds from the click on Run to the KPI cards showing ``trades`` trades, per run (the
    first is the warm-up)."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/backtest")
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#bt-run"), "the Run button")
    _select(driver, "#bt-strategy", "sma_crossover")
    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#bt-params input"), "params")
    _select(driver, "#bt-symbol", symbol)
    _select(driver, "#bt-timeframe", "1m")
    _set_param(driver, "fast", 10)
    _set_param(driver, "slow", 30)
    _select(driver, "#bt-direction", "both")
    compat = driver.find_element(By.CSS_SELECTOR, "#bt-compat")
    if not compat.is_selected():
        driver.execute_script("arguments[0].click()", compat)
    _until(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#bt-compat").is_selected(), "compat")
    _until(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, "#bt-form-message").text == "",
        "a valid form",
    )
    times = []
    for _ in range(runs + 1):
        _until(
            driver,
            lambda d: d.find_element(By.CSS_SELECTOR, "#bt-run").get_attribute("disabled") is None,
            "Run enabled",
        )
        driver.execute_script(CLICK_RUN, str(trades))
        shown = _until(
            driver,
            lambda d: d.execute_script("return window.__btShown"),
            f"the KPI cards of a new run with {trades} trades (status: "
            f"{driver.find_element(By.CSS_SELECTOR, '#bt-status').text!r})",
        )
        times.append(float(shown) / 1000)
    return times


def live_page_runs(driver: Any, base: str, symbol: str, runs: int) -> list[float]:
    """Seconds from the navigation's start to the first drawn LOD chart, per run (the first
    is the warm-up)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_CHART})
    times = []
    for _ in range(runs + 1):
        driver.get("about:blank")
        driver.get(f"{base}/?symbol={symbol}&tf=1m&lod=1")
        drawn = _until(
            driver, lambda d: d.execute_script("return window.__chartDrawn"), "the live chart"
        )
        times.append(float(drawn) / 1000)
    return times


def browser_env(env: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: no feed, warnings only."""
    return dict(env) | {"FEEDS": "none", "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING")}
