"""Candles in and out of the database: CandleRepository against pandas, on SQLite and PostgreSQL.

    python bench/candle_io.py [--bars 1000000] [--repeat 3] [--postgres postgresql+psycopg2://...]

The same --bars 1m random-walk bars (market.sample_data) on each database, a fresh SQLite file
and a fresh PostgreSQL database (created and dropped here; --postgres names the server,
"none" skips it), the columnar candle cache in a temporary folder. Timed, best of --repeat
(the naive ways once each: they take seconds):

- write: ``CandleRepository.upsert`` of every bar into an empty series, committed (the cache
  file it leaves included), against ``DataFrame.to_sql(..., if_exists="append")`` into the
  same table (plain INSERTs, no upsert, no check);
- read, cold: ``CandleRepository.frame`` of the whole series from the database (the cache
  switched off), against ``pandas.read_sql`` of the same query turned into a candle frame;
- read, hit: a fresh process (``python -c``) opens the repository and loads the whole series
  from the cache; printed: the load alone (what the goal is about) and the process from start
  to exit (interpreter and imports included), median of --repeat processes;
- ``app.py import`` of a --bars-row CSV as a fresh process into a new series (wall time,
  interpreter start, parse, validation, write and commit included), median of --repeat,
  against ``to_sql``.

Goals (issue 11, PASS/FAIL): frame() of 1,000,000 stored bars <= 300 ms in a fresh process; the
import command >= 300,000 rows/s; on both databases. Ratios are of one run; absolute figures
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from sqlalchemy import Engine, create_engine, make_url, text  # noqa: E402

from database import migrate  # noqa: E402
from database.repositories import CandleRepository  # noqa: E402
from database.session import make_engine, make_session_factory  # noqa: E402
from market.candles import CANDLE_COLUMNS  # noqa: E402
from market.sample_data import generate_random_walk  # noqa: E402
from market.timeframes import from_epoch_ms, to_epoch_ms  # noqa: E402

SYMBOL, TIMEFRAME = "BENCH", "1m"
FRAME_GOAL_S = 0.300
IMPORT_GOAL_ROWS_S = 300_000
QUERY = (
    "SELECT ts, open, high, low, close, volume FROM candles "
    f"WHERE symbol = '{SYMBOL}' AND timeframe = '{TIMEFRAME}' ORDER BY ts"
)
# a fresh process: time the load alone, and print what it read to check it
HIT_PROBE = """
import sys, time
sys.path.insert(0, sys.argv[2])
from database.repositories import CandleRepository
from database.session import make_engine, make_session_factory
sessions = make_session_factory(make_engine(sys.argv[1]))
start = time.perf_counter()
with sessions() as session:
    frame = CandleRepository(session).frame(sys.argv[3], sys.argv[4])
print(time.perf_counter() - start, len(frame), float(frame["close"].sum()))
"""


def best(
    run: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def fresh_process_hit(url: str, frame: pd.DataFrame, repeat: int) -> tuple[float, float]:
    """(median load seconds, median process seconds) of the whole series in new processes."""
    loads, walls = [], []
    command = [sys.executable, "-c", HIT_PROBE, url, str(ROOT), SYMBOL, TIMEFRAME]
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - start)
        if done.returncode:
            raise SystemExit(f"the fresh-process read failed: {done.stderr}")
        load, bars, close_sum = done.stdout.split()
        if int(bars) != len(frame) or float(close_sum) != float(frame["close"].sum()):
            raise SystemExit(f"the fresh process read other bars: {done.stdout}")
        loads.append(float(load))
    return statistics.median(loads), statistics.median(walls)


def app_import(url: str, csv: Path, repeat: int) -> float:
    """Median wall seconds of ``app.py import`` into a new series, each a fresh process."""
    walls = []
    for run in range(repeat):
        command = [sys.executable, str(ROOT / "app.py"), "import", str(csv)]
        command += ["--symbol", f"CSV{run}", "--timeframe", TIMEFRAME]
        start = time.perf_counter()
        done = subprocess.run(
            command, env=os.environ | {"DATABASE_URL": url}, capture_output=True, text=True
        )
        walls.append(time.perf_counter() - start)
        if done.returncode:
            raise SystemExit(f"app.py import failed: {done.stderr}")
    return statistics.median(walls)


def bench_database(name: str, url: str, frame: pd.DataFrame, csv: Path, repeat: int) -> list[bool]:
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    bars = len(frame)

    def empty() -> None:
        with factory.begin() as session:
            CandleRepository(session).delete_series(SYMBOL, TIMEFRAME)
        with engine.begin() as connection:  # what to_sql wrote, behind the repository's back
            connection.execute(text("DELETE FROM candles WHERE symbol = 'NAIVE'"))

    def upsert() -> None:
        with factory.begin() as session:
            CandleRepository(session).upsert(SYMBOL, TIMEFRAME, frame)

    def to_sql() -> None:
        table = pd.DataFrame(
            {"symbol": "NAIVE", "timeframe": TIMEFRAME, "ts": to_epoch_ms(frame.index)}
            | {c: frame[c].to_numpy() for c in CANDLE_COLUMNS}
        )
        with engine.begin() as connection:
            table.to_sql("candles", connection, if_exists="append", index=False, chunksize=10_000)

    def read() -> pd.DataFrame:
        with factory() as session:
            return CandleRepository(session).frame(SYMBOL, TIMEFRAME)

    def read_sql() -> pd.DataFrame:
        with engine.connect() as connection:
            table = pd.read_sql(text(QUERY), connection)
        return table.drop(columns="ts").set_index(from_epoch_ms(table["ts"].to_numpy()))

    naive_write = best(to_sql, 1, empty)
    ours_write = best(upsert, repeat, empty)  # the last one leaves the series and its cache
    cache_setting = os.environ["CANDLE_CACHE_DIR"]
    os.environ["CANDLE_CACHE_DIR"] = "off"  # the SQL path
    try:
        cold_read = best(read, repeat)
        pd.testing.assert_frame_equal(read(), frame, check_freq=False)
    finally:
        os.environ["CANDLE_CACHE_DIR"] = cache_setting
    naive_read = best(read_sql, 1)
    pd.testing.assert_frame_equal(read(), frame, check_freq=False)  # through the cache
    engine.dispose()
    hit_load, hit_process = fresh_process_hit(url, frame, repeat)
    wall = app_import(url, csv, repeat)

    print(f"\n{name}: {bars:,} bars")
    print(f"  upsert          {ours_write * 1000:9.0f} ms  {bars / ours_write:>10,.0f} rows/s")
    print(f"  to_sql          {naive_write * 1000:9.0f} ms  {bars / naive_write:>10,.0f} rows/s"
          f"   ours {naive_write / ours_write:5.1f}x faster")  # fmt: skip
    print(f"  frame() cold    {cold_read * 1000:9.0f} ms  (SQL path, cache off)"
          f"   {naive_read / cold_read:5.1f}x read_sql")  # fmt: skip
    print(f"  read_sql        {naive_read * 1000:9.0f} ms")
    print(f"  frame() hit     {hit_load * 1000:9.0f} ms  (fresh process, load only)"
          f"   {naive_read / hit_load:5.1f}x read_sql")  # fmt: skip
    print(f"  hit process     {hit_process * 1000:9.0f} ms  (fresh process, start to exit)")
    print(f"  app.py import   {wall * 1000:9.0f} ms  {bars / wall:>10,.0f} rows/s"
          f"   {naive_write / wall:5.1f}x to_sql (fresh process, start to exit)")  # fmt: skip
    checks = [
        (
            f"frame() of {bars:,} bars in a fresh process <= {FRAME_GOAL_S * 1000:.0f} ms",
            hit_load <= FRAME_GOAL_S,
        ),
        (f"app.py import >= {IMPORT_GOAL_ROWS_S:,} rows/s", bars / wall >= IMPORT_GOAL_ROWS_S),
    ]
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {label}")
    return [ok for _, ok in checks]


def postgres_database(server_url: str) -> tuple[Engine, str, str]:
    url = make_url(server_url)
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"stratlens_bench_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return server, name, url.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    if args.bars < 1 or args.repeat < 1:
        parser.error("--bars and --repeat must be >= 1")

    frame = generate_random_walk(SYMBOL, TIMEFRAME, "2020-01-01", args.bars, seed=7)
    results: list[bool] = []
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CANDLE_CACHE_DIR"] = str(Path(folder) / "candle_cache")
        csv = Path(folder) / "bars.csv"
        frame.rename_axis("timestamp").to_csv(csv)
        sqlite_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        results += bench_database("SQLite", sqlite_url, frame, csv, args.repeat)
        if args.postgres != "none":
            server, name, url = postgres_database(args.postgres)
            try:
                results += bench_database("PostgreSQL", url, frame, csv, args.repeat)
            finally:
                with server.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                server.dispose()
    print(f"\n{sum(results)}/{len(results)} goals met")


if __name__ == "__main__":
    main()
