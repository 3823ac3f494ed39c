"""Server CPU per live tab: the real app served on a random port, watched by simulated tabs.

    python bench/live_tabs.py [--tabs 0,1,4,50] [--window 30] [--code DIR ...] [--panels shown]
                              [--browser-tabs 1,4]

For each code tree (``--code``, default this one; give two, e.g. an export of the base commit
and this worktree, to print before and after in one run), the script starts
``python app.py serve`` from that tree in a subprocess, on a random port in 18000-19999, over
a temporary SQLite database (bundled series, the default feeds, FEED_SPEED=1, REFRESH_MS=1000;
REPLAY_BARS=2000 so that no replay starts over inside a window). Then, for each tab count, it
opens that many simulated tabs: each loads the page (/, /_dash-layout, /_dash-dependencies),
sends the page's own load callbacks (URL -> controls, the figure, the panel's strategy picker,
the panels) and then, once a second (REFRESH_MS), the interval tick with its own chart state,
applying each delta to that state as assets/chart_view.js does, and the panel refreshes that
the page's clientside callbacks would send (the panel is scrolled into view with
``--panels shown``; hidden below the chart by default, as a page opens in a 1280x800 window).
Each tab shows SP500 1d with RSI, Bollinger and two strategies.

The server's CPU time is read from /proc/PID/stat (utime + stime) over ``--window`` seconds
after every tab has loaded and ``--warmup`` seconds have passed; printed as % of one core, in
total and per tab, with the tick answer time p50/p99 (client-measured, request to body) and
the errors (any answer other than 200 or 204, or a failed request). ``--browser-tabs 1,4``
adds rows for real headless Chromium windows on the same page (the page's own requests, the
server's CPU only; their errors are the browser console's). Each row's "% per tab" is set
against the idle row measured last before it: the Chromium rows get an idle row of their own
(the server's idle CPU after the 50-tab row is not the fresh server's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
QUERY = (
    "?symbol=SP500&tf=1d&ind=rsi&ind=bbands"
    "&strat=ema_crossover(direction%3Dboth)&strat=rsi_reversion(direction%3Dboth)"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_CONTROLS = {  # the live layout's values before the URL sets them
    "symbol": "SP500",
    "timeframe": "1d",
    "indicators": [],
    "strategies": [],
    "signal-types": ["entry_long", "exit_long", "entry_short", "exit_short"],
    "min-confidence": 0,
    "show-forming": True,
    "theme-switch": False,
    "lod": False,
}
CONTROLS = tuple(DEFAULT_CONTROLS)
PANEL_EVERY_S = 5.0  # the page's throttle of panel refreshes on the same chart


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    for _ in range(50):
        port = random.randint(18000, 19999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18000-19999")


@dataclass
class Server:
    process: subprocess.Popen
    base: str
    folder: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server(code: Path, python: str, extra_env: dict[str, str] | None = None) -> Server:
    folder = Path(tempfile.mkdtemp(prefix="stratlens-tabs-"))
    port = free_port()
    env = {
        **os.environ,
        "STRATLENS_DATA_DIR": str(folder),
        "FEED_SPEED": "1",
        "REFRESH_MS": "1000",
        "REPLAY_BARS": "2000",
        "PYTHONPATH": str(code),
        **(extra_env or {}),
    }
    # the defaults a trader starts with (the bundled series, the default feeds), whatever the
    # caller's environment says (bench/user_paths.py's turns both off for its commands)
    for name in ("DATABASE_URL", "REDIS_URL", "LOAD_SAMPLE_DATA", "FEEDS"):
        env.pop(name, None)
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [python, "app.py", "serve", "--port", str(port)],
        cwd=code,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(folder / 'server.log').read_text()[-2000:]}")
        try:
            if requests.get(base + "/", timeout=2).status_code == 200:
                return Server(process, base, folder)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not answer within 180 s")


def _outputs(key: str) -> Any:
    if not key.startswith(".."):
        component, prop = key.rsplit(".", 1)
        return {"id": component, "property": prop}
    found = []
    for part in key.strip(".").split("..."):
        component, prop = part.rsplit(".", 1)
        found.append({"id": component.strip("."), "property": prop})
    return found


@dataclass
class Stats:
    tick_s: list[float] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    panel_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Tab:
    """One browser tab of the live page, as the HTTP requests its page sends."""

    def __init__(self, base: str, stats: Stats, *, panels_shown: bool) -> None:
        self.base = base
        self.http = requests.Session()
        self.stats = stats
        self.panels_shown = panels_shown
        self.values: dict[str, Any] = {f"{c}.value": v for c, v in DEFAULT_CONTROLS.items()}
        self.values |= {
            "url.search": QUERY,
            "url.pathname": "/",
            "perf-preset.value": "backtesting.py",
            "panel-tabs.active_tab": "performance",
            "chart-state.data": None,
            "chart-closed.data": None,
            "perf-closed.data": None,
            "perf-figures-closed.data": None,
            "cmp-closed.data": None,
            "panels-visible.data": panels_shown,
            "perf-figures-visible.data": panels_shown,
            "price-chart.relayoutData": None,
            "tick.n_intervals": 0,
            "perf-strategy.value": None,
        }
        self.panels_at = 0.0

    # -- plumbing ---------------------------------------------------------------------------
    def load(self) -> None:
        for path in ("/", "/_dash-layout"):
            self.http.get(self.base + path, timeout=60).raise_for_status()
        self.deps = self.http.get(self.base + "/_dash-dependencies", timeout=60).json()
        self.new_panels = any("perf-closed.data" in d["output"] for d in self.deps)

    def dep(self, output_fragment: str, input_fragment: str | None = None) -> dict:
        for d in self.deps:
            if d.get("clientside_function") or output_fragment not in d["output"]:
                continue
            if input_fragment and not any(
                f"{i['id']}.{i['property']}" == input_fragment for i in d["inputs"]
            ):
                continue
            return d
        raise LookupError(output_fragment)

    def call(self, d: dict, changed: list[str], *, tick: bool = False) -> dict:
        def item(i: dict) -> dict:
            key = f"{i['id']}.{i['property']}"
            return {"id": i["id"], "property": i["property"], "value": self.values.get(key)}

        payload = {
            "output": d["output"],
            "outputs": _outputs(d["output"]),
            "inputs": [item(i) for i in d["inputs"]],
            "changedPropIds": changed,
            "state": [item(s) for s in d["state"]],
        }
        start = time.perf_counter()
        try:
            response = self.http.post(
                self.base + "/_dash-update-component", json=payload, timeout=60
            )
            body = response.content
        except requests.RequestException as exc:
            with self.stats.lock:
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            return {}
        elapsed = time.perf_counter() - start
        with self.stats.lock:
            self.stats.requests += 1
            if tick:
                self.stats.tick_s.append(elapsed)
            if response.status_code not in (200, 204):
                self.stats.errors.append(f"{response.status_code} {body[:200]!r}")
        if response.status_code != 200:
            return {}
        out = json.loads(body)["response"]
        for component, props in out.items():
            for prop, value in props.items():
                self.values[f"{component}.{prop}"] = value
        return out

    # -- what the page does ----------------------------------------------------------------
    def open(self) -> None:
        """The page load: its initial callbacks, in the order their inputs become ready."""
        self.load()
        self.call(self.dep("price-chart.figure...chart-state", "symbol.value"), [])  # defaults
        self.call(self.dep("url.search", "url.search"), [])  # the URL sets the controls
        self.call(self.dep("price-chart.figure...chart-state", "symbol.value"), ["symbol.value"])
        self.call(self.dep("perf-strategy.options"), ["strategies.value"])
        self.panel_refresh(force=True)

    def tick(self) -> None:
        self.values["tick.n_intervals"] += 1
        # the page's gate (assets/chart_view.js, gateTick) passes the interval on as tick-go
        # when the last tick was answered: a simulated tab waits for each answer too
        self.values["tick-go.data"] = self.values["tick.n_intervals"]
        out = self.call(self.dep("chart-delta.data", "tick-go.data"), ["tick-go.data"], tick=True)
        if not out:
            return
        if "price-chart" in out:  # a whole figure: its state came with it
            self.panel_refresh()
            return
        delta = out["chart-delta"]["data"]
        state = dict(self.values["chart-state.data"])
        state.update(
            v=delta["v"],
            st=delta["st"],
            fk=delta["fk"],
            pe=delta.get("pe"),
            last=delta["last"] if delta["c"] else state["last"],
            n=state["n"] + len(delta["c"]),
        )
        self.values["chart-state.data"] = state
        self.panel_refresh()

    def panel_refresh(self, force: bool = False) -> None:
        """The panel requests the page's clientside callbacks send after a chart state."""
        state = self.values["chart-state.data"] or {}
        last = [state.get("k"), state.get("last")]
        now = time.monotonic()
        if self.new_panels:
            if not self.panels_shown:
                return
            key = [state.get("k"), state.get("pe", state.get("last"))]
            if key == self.values["perf-closed.data"]:
                return
            self.values["perf-closed.data"] = key
            self.stats.panel_requests += 1
            self.call(self.dep("perf-kpis.children"), ["perf-closed.data"])
            if any("perf-figures-closed.data" in d["output"] for d in self.deps):
                # shown: the whole panel is in view, its figures too (their own refresh)
                self.values["perf-figures-closed.data"] = key
                self.call(self.dep("perf-figure.figure"), ["perf-figures-closed.data"])
            return
        held = self.values["chart-closed.data"]
        if last == held:
            return
        same = held is not None and held[0] == last[0]
        if same and now - self.panels_at < PANEL_EVERY_S and not force:
            return
        self.panels_at = now
        self.values["chart-closed.data"] = last
        self.stats.panel_requests += 1
        self.call(self.dep("perf-kpis.children"), ["chart-closed.data"])
        self.call(self.dep("cmp-table.children"), ["chart-closed.data"])


def tick_each_second(tab: Tab, stop: threading.Event) -> None:
    """The page's interval: ``tab`` ticks once a second (its own phase) until ``stop``."""
    next_at = time.monotonic() + random.random()
    while not stop.is_set():
        delay = next_at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        next_at += 1.0
        tab.tick()


def run_tabs(base: str, count: int, warmup: float, window: float, pid: int, shown: bool) -> dict:
    stats = Stats()
    stop = threading.Event()
    measuring = threading.Event()
    ready = threading.Barrier(count + 1) if count else None

    def drive() -> None:
        tab = Tab(base, stats, panels_shown=shown)
        try:
            tab.open()
        finally:
            ready.wait()  # type: ignore[union-attr]
        tick_each_second(tab, stop)

    threads = [threading.Thread(target=drive, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    if ready is not None:
        ready.wait()
    time.sleep(warmup)
    with stats.lock:
        stats.tick_s.clear()
        stats.requests = 0
        stats.panel_requests = 0
    measuring.set()
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    with stats.lock:
        ticks = sorted(stats.tick_s)
        requests_n, panels_n, errors = stats.requests, stats.panel_requests, list(stats.errors)
    stop.set()
    for thread in threads:
        thread.join(30)
    percent = 100 * (cpu1 - cpu0) / (t1 - t0)
    return {
        "tabs": count,
        "cpu": percent,
        "ticks": len(ticks),
        "p50": statistics.median(ticks) * 1e3 if ticks else float("nan"),
        "p99": ticks[min(len(ticks) - 1, int(0.99 * len(ticks)))] * 1e3 if ticks else float("nan"),
        "requests": requests_n,
        "panels": panels_n,
        "errors": errors,
    }


def run_browser_tabs(base: str, count: int, warmup: float, window: float, pid: int) -> dict:
    """The same figure with ``count`` real headless Chromium windows on the live page (one
    browser, a window each: each window renders and ticks as a visible page)."""
    sys.path.insert(0, str(ROOT))
    from bench._user_browser import _until, chromium

    drawn = (
        "const g = document.querySelector('#price-chart .js-plotly-plot');"
        " return !!(g && g.data && g.data.length > 4);"  # candles, volume, RSI, bands, marks
    )
    with chromium("1280,800") as driver:
        for index in range(count):
            if index:
                driver.switch_to.new_window("window")
            driver.get(base + "/" + QUERY)
            _until(driver, lambda d: d.execute_script(drawn), f"window {index + 1}'s chart", 120)
        time.sleep(warmup)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(window)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        errors = []
        for handle in driver.window_handles:
            driver.switch_to.window(handle)
            logs = driver.get_log("browser")
            errors += [e["message"][:200] for e in logs if e["level"] == "SEVERE"]
    nan = float("nan")
    return {"tabs": count, "cpu": 100 * (cpu1 - cpu0) / (t1 - t0), "ticks": 0, "p50": nan,
            "p99": nan, "requests": 0, "panels": 0, "errors": errors}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", default="0,1,4,50")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--code", action="append", type=Path, help="code tree(s) to serve")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--panels", choices=("hidden", "shown"), default="hidden")
    parser.add_argument(
        "--browser-tabs", default="", help="also real headless Chromium windows, e.g. 1,4"
    )
    args = parser.parse_args()
    codes = args.code or [ROOT]
    counts = [int(n) for n in args.tabs.split(",")]
    shown = args.panels == "shown"
    print(
        f"SP500 1d, RSI + Bollinger + 2 strategies per tab; FEED_SPEED=1, REFRESH_MS=1000; "
        f"panels {args.panels}; {args.window:g} s windows after {args.warmup:g} s warm-up; "
        f"{os.cpu_count()} cores (shared)"
    )
    results: dict[Path, list[dict]] = {}
    for code in codes:
        server = start_server(code.resolve(), args.python)
        try:
            pid = server.process.pid
            results[code] = rows = []
            for count in counts:
                row = run_tabs(server.base, count, args.warmup, args.window, pid, shown)
                rows.append(row)
                print(f"  {code}: {count} tabs: {row['cpu']:.1f}% total", flush=True)
            browser_counts = [int(n) for n in args.browser_tabs.split(",") if n]
            if browser_counts and counts[-1:] != [0]:
                # the idle server as the Chromium rows find it: after the simulated tabs left,
                # its idle CPU is not the fresh server's (at 22:30 UTC on 2026-12-04: 1.1 %
                # fresh, 1.8 % after the 50-tab row): the Chromium rows are set against this one
                row = run_tabs(server.base, 0, args.warmup, args.window, pid, shown)
                rows.append(row)
                print(f"  {code}: 0 tabs again: {row['cpu']:.1f}% total", flush=True)
            for count in browser_counts:
                row = run_browser_tabs(server.base, count, args.warmup, args.window, pid)
                row["browser"] = True
                rows.append(row)
                print(f"  {code}: {count} Chromium tabs: {row['cpu']:.1f}% total", flush=True)
        finally:
            server.stop()
    header = f"{'code':<28}{'tabs':>5}{'cpu %':>8}{'% per tab':>11}{'ticks':>7}"
    header += f"{'p50 ms':>9}{'p99 ms':>9}{'panel req':>10}{'errors':>8}"
    print(header)
    ok = True
    for code, rows in results.items():
        idle = 0.0
        for r in rows:
            if r["tabs"] == 0:
                idle = r["cpu"]  # each row against the idle row measured last before it
            per_tab = (r["cpu"] - idle) / r["tabs"] if r["tabs"] else float("nan")
            tabs = f"{r['tabs']}{' C' if r.get('browser') else ''}"
            print(
                f"{str(code)[-28:]:<28}{tabs:>5}{r['cpu']:>8.1f}{per_tab:>11.2f}"
                f"{r['ticks']:>7}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['panels']:>10}"
                f"{len(r['errors']):>8}"
            )
            for error in r["errors"][:3]:
                print(f"      error: {error}")
            ok = ok and not r["errors"]
    print(
        "% per tab = (total - idle) / tabs; idle = the server with its feeds and no tab, the "
        "idle row measured last before the row (the Chromium rows follow an idle row of their "
        "own); "
        "C: real headless Chromium windows (their own CPU not counted: the server's only)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
