"""What the user meets: each command timed as a fresh process, start to exit, against its peers.

    python bench/user_paths.py [--bars 1000000] [--runs 3] [--sweep-runs 1] [--postgres URL]
                               [--skip-browser] [--only browser|sweep|startup] [--quick]
                               [--scratch DIR]

Issue 11's user paths, in one run, on the same bars: --bars 1m random-walk bars of two symbols
(market.sample_data, seeds 7 and 8) written as CSV into a scratch directory, imported once into a
SQLite database there (and into a PostgreSQL database created and dropped here, --postgres).
Every figure is the median of --runs fresh processes after one warm-up process (the numba
cache, the OS file cache); the slow peers say how many runs they had. The strategy everywhere:
SMA crossover 10/30 on both sides, traded with backtesting.py's fill rules (``--compat
backtesting.py``); our trades and final equity must equal backtesting.py's, and are printed.

- ``app.py import`` of the CSV (rows/s; validation included) against a pandas script:
  ``read_csv`` + ``DataFrame.to_sql`` (the naive way); both into the same empty table of a
  database migrated beforehand (the migration's time is printed apart: once per database);
- ``app.py backtest --json`` (statistics, every trade as JSON, the run stored) against a
  backtesting.py script reading the same CSV (``Backtest.run``, its statistics) and a vectorbt
  script (``Portfolio.from_signals`` + ``stats()``) on the same crossover signals;
- ``app.py sweep`` of a 3 x 3 grid (fast 5,10,15 x slow 20,30,40) on the two symbols, runs
  stored as a sweep stores them (config and window: opening one runs it again), against
  backtesting.py's ``Backtest.optimize`` of the same grid on both: --sweep-runs each
  (default 1, no warm-up: each takes a minute or more at 1,000,000 bars);
- in a real browser (headless Chromium, bench/_user_browser.py; --skip-browser leaves it out):
  the backtest page's Run from the click to the KPI cards, and the live page's first chart of
  the symbol in level of detail (``lod=1``) from the request to drawn;
- server CPU per live tab: bench/live_tabs.py --tabs 0,1,4,50 (its own table, printed above).

``--only browser``: the browser rows alone (the CSVs imported once, untimed, into a SQLite
database of the scratch directory, kept there for the next run with the same --scratch; one
untimed ``app.py backtest --json`` for the trade count the KPI cards must show). ``--only
sweep``: the sweep row alone, on that database. ``--only startup``: the SQLite import rows
and the start-up rows (``--help``, the backtest's imports).

The peers' scripts are in bench/_user_peers.py. bench/backtest.py times the kernel alone (arrays
in memory); this file times what the user waits for. Goals are issue 11's (PASS/FAIL). Ratios
come from one run of this script; absolute figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _user_browser as browser  # noqa: E402
from bench._user_peers import SCRIPTS  # noqa: E402

SYMBOLS = ("BENCH", "BENCH2")
SEEDS = (7, 8)
GRID = {"fast": [5, 10, 15], "slow": [20, 30, 40]}
STRATEGY = ["--strategy", "sma_crossover", "--set", "direction=both", "--compat", "backtesting.py"]
GOAL_BACKTEST_S = 2.0
GOAL_VS_BACKTESTING = 30.0
GOAL_IMPORT_ROWS_S = 300_000
GOAL_RUN_CLICK_S = 3.0
GOAL_LIVE_CHART_S = 1.5
GOAL_HELP_S = 0.3
GOAL_IMPORTS_S = 0.5
Row = tuple[str, str, str, str, str, bool | None]  # figure, ours, peer, ratio, goal, ok


class Bench:
    """The scratch directory, the environment of the fresh processes and the result rows."""

    def __init__(self, scratch: Path, runs: int, bars: int) -> None:
        self.scratch, self.runs, self.bars = scratch, runs, bars
        self.rows: list[Row] = []
        for name, text in SCRIPTS.items():
            (scratch / name).write_text(text)
        data = scratch / "data"
        data.mkdir(exist_ok=True)
        self.base_env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
            "STRATLENS_DATA_DIR": str(data),  # the server's background-callback cache
            "LOAD_SAMPLE_DATA": "false",
            "FEEDS": "none",
            "LOG_LEVEL": "WARNING",
            "TQDM_DISABLE": "1",  # backtesting.py's progress bars
        }

    def env(self, url: str) -> dict[str, str]:
        return self.base_env | {"DATABASE_URL": url}

    def run(self, command: Sequence[str], url: str | None = None, out: Path | None = None) -> float:
        """Wall seconds of one fresh process, from spawn to exit; raises naming it if it fails."""
        env = self.env(url) if url else self.base_env
        stdout = out.open("w") if out else subprocess.PIPE
        start = time.perf_counter()
        try:
            done = subprocess.run(
                list(command), env=env, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True
            )
        finally:
            if out:
                stdout.close()  # type: ignore[union-attr]
        wall = time.perf_counter() - start
        if done.returncode:
            tail = "\n".join(done.stderr.splitlines()[-20:])
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
        self.last_stdout = done.stdout if out is None else out.read_text()
        return wall

    def median(
        self, command: Sequence[str], url: str | None = None, *, runs: int | None = None,
        warmup: bool = True, out: Path | None = None,
    ) -> tuple[float, list[float]]:  # fmt: skip
        """(median wall seconds, every run's) of ``runs`` fresh processes after a warm-up."""
        times = []
        for _ in range((self.runs if runs is None else runs) + (1 if warmup else 0)):
            times.append(self.run(command, url, out))
        timed = times[1:] if warmup else times
        return statistics.median(timed), times

    def add(self, figure: str, ours: str, peer: str, ratio: str, goal: str, ok: bool | None):
        self.rows.append((figure, ours, peer, ratio, goal, ok))


def app(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "app.py"), *args]


def peer(bench: Bench, script: str, *args: str) -> list[str]:
    return [sys.executable, str(bench.scratch / script), *args]


def seconds(times: Sequence[float]) -> str:
    return " ".join(f"{t:.2f}" for t in times)


# -- the steps --------------------------------------------------------------------------------


def write_csvs(bench: Bench) -> list[Path]:
    from market.sample_data import generate_random_walk

    paths = []
    for symbol, seed in zip(SYMBOLS, SEEDS, strict=True):
        path = bench.scratch / f"{symbol}_{bench.bars}.csv"
        if not path.exists():  # --scratch reuses them
            frame = generate_random_walk(symbol, "1m", "2020-01-01", bench.bars, seed=seed)
            frame.rename_axis("timestamp").to_csv(path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        paths.append(path)
    return paths


def imports(bench: Bench, name: str, urls: list[str], csvs: list[Path], fresh: Any) -> str:
    """Time app.py import, each run into a fresh database of ``urls``, and to_sql once into
    another; returns the last timed run's database, the other symbols imported into it too."""
    from database import migrate

    rows = bench.bars
    command = app("import", str(csvs[0]), "--symbol", SYMBOLS[0], "--timeframe", "1m")
    times, migrations = [], []
    for url in urls[: bench.runs + 1]:  # the first is the warm-up
        fresh(url)
        # into an empty migrated database, as the naive script's (migrating a new database
        # is once per database, not per import: timed apart and printed)
        began = time.perf_counter()
        migrate.upgrade(url)
        migrations.append(time.perf_counter() - began)
        times.append(bench.run(command, url))
    wall, url = statistics.median(times[1:]), urls[bench.runs]
    naive_url = urls[bench.runs + 1]
    fresh(naive_url)
    migrate.upgrade(naive_url)  # the naive script appends to the same, empty, migrated table
    naive = bench.run(peer(bench, "to_sql.py", str(csvs[0]), naive_url, SYMBOLS[0]))
    for other in (*urls[: bench.runs], naive_url):
        fresh(other)  # no need to keep them
    print(f"{name} import: app.py import {seconds(times)} s (first is the warm-up); "
          f"to_sql {naive:.2f} s (1 run); migrating the new database first (untimed "
          f"above, both sides) {statistics.median(migrations):.2f} s")  # fmt: skip
    bench.add(
        f"{name}: app.py import, rows/s",
        f"{rows / wall:,.0f}",
        f"{rows / naive:,.0f} (to_sql)",
        f"{naive / wall:.1f}x",
        f">= {GOAL_IMPORT_ROWS_S:,}",
        rows / wall >= GOAL_IMPORT_ROWS_S,
    )
    for symbol, csv in zip(SYMBOLS[1:], csvs[1:], strict=True):
        bench.run(app("import", str(csv), "--symbol", symbol, "--timeframe", "1m"), url)
    return url


# runs app.py as its __main__ would, then prints the modules it imported, in their order
_MODULES_PROBE = """
import json, runpy, sys
sys.argv = ["app.py", *json.loads(sys.argv[1])]
try:
    runpy.run_path("app.py", run_name="__main__")
except SystemExit:
    pass
sys.stdout.flush()
print("\\nMODULES " + json.dumps(list(sys.modules)))
"""
# imports those modules in that order, as the command imports them (inside its
# cli.common.importing(): the cyclic GC paused, then frozen), and prints the seconds it took
_IMPORTS_TIMER = """
import importlib, json, sys, time
names = json.load(open(sys.argv[1]))
guarded = sys.argv[2] == "guarded"
began = time.perf_counter()
if guarded:
    from cli.common import importing
    guard = importing()
    guard.__enter__()
for name in names:
    if name not in sys.modules:
        try:
            importlib.import_module(name)
        except Exception:  # __main__-only or platform modules: not part of the overhead
            pass
if guarded:
    guard.__exit__(None, None, None)
print(time.perf_counter() - began)
"""


def startup(bench: Bench, url: str) -> None:
    """``app.py --help`` as a fresh process, and the import overhead of ``app.py backtest``:
    the modules the command loads (recorded by a probe run), imported in their order by a
    fresh process as the command imports them (inside cli.common.importing: the cyclic GC
    paused, as in the command), timed from its first import to its last (the interpreter's
    own start excluded, the same for any Python program). The same imports with the GC
    running throughout are printed beside it."""
    wall, times = bench.median(app("--help"))
    print(f"app.py --help: {seconds(times)} s")
    bench.add("app.py --help", f"{wall:.2f} s", "", "", f"<= {GOAL_HELP_S:g} s",
              wall <= GOAL_HELP_S)  # fmt: skip
    args = ["backtest", "--symbol", SYMBOLS[0], "--timeframe", "1m", *STRATEGY, "--json"]
    bench.run([sys.executable, "-c", _MODULES_PROBE, json.dumps(args)], url)
    names = json.loads(bench.last_stdout.rsplit("MODULES ", 1)[1])
    listed = bench.scratch / "backtest_modules.json"
    listed.write_text(json.dumps([n for n in names if n not in ("__main__", "__mp_main__")]))
    overheads, plain = [], []
    for _ in range(bench.runs + 1):
        bench.run([sys.executable, "-c", _IMPORTS_TIMER, str(listed), "guarded"])
        overheads.append(float(bench.last_stdout))
        bench.run([sys.executable, "-c", _IMPORTS_TIMER, str(listed), "plain"])
        plain.append(float(bench.last_stdout))
    overhead = statistics.median(overheads[1:])
    print(f"app.py backtest imports ({len(names)} modules), as the command makes them (the "
          f"GC paused, cli.common.importing): {seconds(overheads)} s; with the GC running "
          f"throughout: {seconds(plain)} s (first of each is the warm-up)")  # fmt: skip
    bench.add("app.py backtest: import overhead", f"{overhead:.2f} s", "", "",
              f"<= {GOAL_IMPORTS_S:g} s", overhead <= GOAL_IMPORTS_S)  # fmt: skip


def backtest(bench: Bench, name: str, url: str, csv: Path, peers: bool) -> dict[str, Any] | None:
    out = bench.scratch / "backtest.json"
    command = app("backtest", "--symbol", SYMBOLS[0], "--timeframe", "1m", *STRATEGY, "--json")
    command += ["--set", "fast=10", "--set", "slow=30"]
    wall, times = bench.median(command, url, out=out)
    ours = json.loads(out.read_text())
    mine = {"trades": ours["# Trades"], "equity_final": ours["Equity Final [$]"]}
    print(f"{name} app.py backtest --json: {seconds(times)} s; trades {mine['trades']}, final "
          f"equity {mine['equity_final']!r}, {len(ours['trades'])} trades in the JSON")  # fmt: skip
    goal = f"<= {GOAL_BACKTEST_S:g} s"
    bench.add(f"{name}: app.py backtest, warm", f"{wall:.2f} s", "", "", goal,
              wall <= GOAL_BACKTEST_S)  # fmt: skip
    if not peers:
        return mine
    grid = json.dumps(GRID)
    bt_wall, bt_times = bench.median(peer(bench, "backtesting_py.py", "run", grid, str(csv)))
    theirs = json.loads(bench.last_stdout)[str(csv)]
    same = theirs["trades"] == mine["trades"] and theirs["equity_final"] == mine["equity_final"]
    verdict = "IDENTICAL to ours" if same else "DIFFERENT from ours"
    print(f"backtesting.py script: {seconds(bt_times)} s; trades {theirs['trades']}, final "
          f"equity {theirs['equity_final']!r}: {verdict}")  # fmt: skip
    bench.add(
        f"{name}: app.py backtest vs backtesting.py",
        f"{wall:.2f} s",
        f"{bt_wall:.2f} s",
        f"{bt_wall / wall:.1f}x",
        f">= {GOAL_VS_BACKTESTING:g}x",
        bt_wall / wall >= GOAL_VS_BACKTESTING,
    )
    bench.add("  same trades and final equity as backtesting.py", str(mine["trades"]),
              str(theirs["trades"]), "", "identical", same)  # fmt: skip
    vbt_wall, vbt_times = bench.median(peer(bench, "vectorbt_run.py", str(csv)))
    vbt = json.loads(bench.last_stdout)
    print(f"vectorbt[{vbt['engine']}] script: {seconds(vbt_times)} s; trades {vbt['trades']}, "
          f"final value {vbt['equity_final']!r} (its own sizing: not compared)")  # fmt: skip
    bench.add(f"{name}: app.py backtest vs vectorbt", f"{wall:.2f} s", f"{vbt_wall:.2f} s",
              f"{vbt_wall / wall:.2f}x", "> 1x", vbt_wall > wall)  # fmt: skip
    return mine


def sweep(bench: Bench, url: str, csvs: list[Path], runs: int) -> None:
    """Ours and Backtest.optimize, ``runs`` times each (a minute or more a run at 1,000,000
    bars: no warm-up, the backtest rows before have warmed the numba and file caches)."""
    command = app("sweep", "--timeframe", "1m", *STRATEGY)
    for symbol in SYMBOLS:
        command += ["--symbol", symbol]
    for param, values in GRID.items():
        command += ["--grid", f"{param}={','.join(map(str, values))}"]
    wall, times = bench.median(command, url, runs=runs, warmup=False)
    print(f"app.py sweep (3 x 3 x {len(SYMBOLS)} symbols): {seconds(times)} s")
    print(bench.last_stdout.rstrip())
    grid = json.dumps(GRID)
    opt = peer(bench, "backtesting_py.py", "optimize", grid, *map(str, csvs))
    bt_wall, bt_times = bench.median(opt, runs=runs, warmup=False)
    for path, best in json.loads(bench.last_stdout).items():
        print(f"backtesting.py optimize {Path(path).name}: best {best['best']} Sharpe "
              f"{best['sharpe']:.4f}")  # fmt: skip
    print(f"backtesting.py optimize script: {seconds(bt_times)} s")
    bench.add(
        f"app.py sweep 3x3 x {len(SYMBOLS)} symbols vs Backtest.optimize",
        f"{wall:.2f} s",
        f"{bt_wall:.2f} s",
        f"{bt_wall / wall:.1f}x",
        f">= {GOAL_VS_BACKTESTING:g}x",
        bt_wall / wall >= GOAL_VS_BACKTESTING,
    )


def browser_rows(bench: Bench, url: str, trades: int) -> None:
    env = browser.browser_env(bench.env(url))
    log = bench.scratch / "server.log"
    try:
        with browser.served(env, log) as base, browser.chromium() as driver:
            runs = browser.backtest_page_runs(driver, base, SYMBOLS[0], trades, bench.runs)
            live = browser.live_page_runs(driver, base, SYMBOLS[0], bench.runs)
    except Exception as exc:  # a missing browser or a page that never shows: say so
        print(f"browser: {type(exc).__name__}: {exc}")
        bench.add("browser rows", "", "", "", "", None)
        return
    print(f"backtest page Run -> KPI cards: {seconds(runs)} s (first is the warm-up)")
    print(f"live page first LOD chart: {seconds(live)} s (first is the warm-up)")
    run, chart = statistics.median(runs[1:]), statistics.median(live[1:])
    bench.add("backtest page: Run -> KPI cards", f"{run:.2f} s", "", "",
              f"<= {GOAL_RUN_CLICK_S:g} s", run <= GOAL_RUN_CLICK_S)  # fmt: skip
    bench.add("live page: first LOD chart drawn", f"{chart:.2f} s", "", "",
              f"<= {GOAL_LIVE_CHART_S:g} s", chart <= GOAL_LIVE_CHART_S)  # fmt: skip


def live_tabs(bench: Bench) -> None:
    script = ROOT / "bench" / "live_tabs.py"
    if not script.exists():
        bench.add("server CPU per live tab", "", "", "", "", None)
        print("live tabs: bench/live_tabs.py does not exist (yet): row skipped")
        return
    args = ["--tabs", "0,1,4,50", "--browser-tabs", "1,4", "--warmup", "10", "--window", "20"]
    done = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, text=True,
                          capture_output=True, env=bench.base_env)  # fmt: skip
    print(f"bench/live_tabs.py {' '.join(args)}:\n" + done.stdout.rstrip() + done.stderr[-2000:])
    bench.add("server CPU per live tab (bench/live_tabs.py)", "see above", "", "", "",
              None if done.returncode == 0 else False)  # fmt: skip


def scratch_database(bench: Bench, csvs: list[Path]) -> str:
    """The URL of --only's database: the CSVs imported once into the scratch directory's
    ``browser.db`` (reused when there)."""
    path = bench.scratch / "browser.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        for symbol, csv in zip(SYMBOLS, csvs, strict=True):
            bench.run(app("import", str(csv), "--symbol", symbol, "--timeframe", "1m"), url)
    return url


def browser_database(bench: Bench, csvs: list[Path]) -> tuple[str, int]:
    """(URL, trade count) of --only browser: :func:`scratch_database`, the trade count of one
    backtest."""
    url = scratch_database(bench, csvs)
    out = bench.scratch / "backtest.json"
    command = app("backtest", "--symbol", SYMBOLS[0], "--timeframe", "1m", *STRATEGY, "--json")
    bench.run([*command, "--set", "fast=10", "--set", "slow=30"], url, out=out)
    return url, int(json.loads(out.read_text())["# Trades"])


def postgres_database(server_url: str) -> tuple[Any, str, str]:
    from sqlalchemy import create_engine, make_url

    url = make_url(server_url)
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"stratlens_userpaths_{uuid.uuid4().hex[:8]}"
    return server, name, url.set(database=name).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=None, help="per symbol (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per figure (3)")
    parser.add_argument("--sweep-runs", type=int, default=1, help="runs of each sweep (1)")
    parser.add_argument("--postgres", default=None, help="postgresql+psycopg2://... server URL")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument(
        "--only",
        choices=["browser", "sweep", "startup"],
        help="only these rows (see the docstring); startup: the SQLite import and the start-up",
    )
    parser.add_argument("--quick", action="store_true", help="50,000 bars, 1 run: a smoke run")
    parser.add_argument("--scratch", type=Path, help="keep and reuse this directory's CSVs")
    args = parser.parse_args()
    bars = args.bars or (50_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    if bars < 100 or runs < 1 or args.sweep_runs < 1:
        parser.error("--bars must be >= 100, --runs and --sweep-runs >= 1")
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="stratlens-userpaths-"))
    scratch.mkdir(parents=True, exist_ok=True)
    bench = Bench(scratch, runs, bars)
    began = time.perf_counter()
    print(f"{bars:,} 1m bars x {len(SYMBOLS)} symbols; median of {runs} fresh processes after "
          f"a warm-up; scratch {scratch}; {os.cpu_count()} CPUs")  # fmt: skip
    try:
        csvs = write_csvs(bench)
        sqlite_urls = [f"sqlite:///{scratch / f'import_{i}.db'}" for i in range(runs + 2)]

        def fresh_sqlite(url: str) -> None:
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)

        if args.only == "browser":
            browser_rows(bench, *browser_database(bench, csvs))
            return report(bench, began)
        if args.only == "sweep":
            sweep(bench, scratch_database(bench, csvs), csvs, args.sweep_runs)
            return report(bench, began)
        url = imports(bench, "SQLite", sqlite_urls, csvs, fresh_sqlite)
        startup(bench, url)
        if args.only == "startup":
            return report(bench, began)
        mine = backtest(bench, "SQLite", url, csvs[0], peers=True)
        sweep(bench, url, csvs, args.sweep_runs)
        if args.postgres:
            postgres(bench, args.postgres, csvs)
        if args.skip_browser:
            bench.add("browser rows", "skipped (--skip-browser)", "", "", "", None)
        elif mine is not None:
            browser_rows(bench, url, int(mine["trades"]))
        live_tabs(bench)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return report(bench, began)


def report(bench: Bench, began: float) -> int:
    """Prints the rows as a table; 0 when no row failed."""
    print(f"\n{'figure':<52} {'ours':>12} {'peer':>22} {'ratio':>7}  {'goal':<11} verdict")
    for figure, ours, other, ratio, goal, ok in bench.rows:
        verdict = "n/a" if ok is None else "PASS" if ok else "FAIL"
        print(f"{figure:<52} {ours:>12} {other:>22} {ratio:>7}  {goal:<11} {verdict}")
    print(f"\n(the whole bench: {time.perf_counter() - began:.0f} s)")
    return 0 if all(ok is not False for *_, ok in bench.rows) else 1


def postgres(bench: Bench, server_url: str, csvs: list[Path]) -> None:
    server, name, url = postgres_database(server_url)
    names = [f"{name}_{i}" for i in range(bench.runs + 2)]
    urls = [url.replace(name, n) for n in names]

    def fresh_postgres(target: str) -> None:
        database = names[urls.index(target)]
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{database}"')

    try:
        kept = imports(bench, "PostgreSQL", urls, csvs, fresh_postgres)
        backtest(bench, "PostgreSQL", kept, csvs[0], peers=False)
    finally:
        with server.connect() as connection:
            for database in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        server.dispose()


if __name__ == "__main__":
    sys.exit(main())
