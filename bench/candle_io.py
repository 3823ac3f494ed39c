"""Candles in and out of the database: CandleRepository against pandas, on SQLite and PostgreSQL.

    python bench/candle_io.py [--bars 1000000] [--repeat 3] [--postgres postgresql+psycopg2://...]

The same --bars 1m random-walk bars (market.sample_data) on each database, a fresh SQLite file
and a fresh PostgreSQL database (created and dropped here; --postgres names the server,
"none" skips it). Timed, best of --repeat (the naive ways once each: they take seconds):

- write: ``CandleRepository.upsert`` of every bar into an empty table, committed, against
  ``DataFrame.to_sql(..., if_exists="append")`` into the same table (plain INSERTs, no upsert);
- read: ``CandleRepository.frame`` of the whole series against ``pandas.read_sql`` of the same
  query turned into a candle frame (the ORM path it replaced was as slow: rows into Python);
- ``app.py import`` of a --bars-row CSV as a fresh process (wall time, interpreter start,
  parse, validation and write included), once per database.

Goals (issue 11, PASS/FAIL): frame() of 1,000,000 bars <= 300 ms; the import command >= 300,000
rows/s; on both databases. Ratios are of one run; absolute figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
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


def bench_database(name: str, url: str, frame: pd.DataFrame, csv: Path, repeat: int) -> list[bool]:
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    bars = len(frame)

    def empty() -> None:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM candles"))

    def upsert() -> None:
        with factory.begin() as session:
            CandleRepository(session).upsert(SYMBOL, TIMEFRAME, frame)

    def to_sql() -> None:
        table = pd.DataFrame(
            {"symbol": SYMBOL, "timeframe": TIMEFRAME, "ts": to_epoch_ms(frame.index)}
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
    ours_write = best(upsert, repeat, empty)
    ours_read = best(read, repeat)
    naive_read = best(read_sql, 1)
    assert len(read()) == bars
    pd.testing.assert_frame_equal(read(), frame, check_freq=False)
    engine.dispose()

    command = [sys.executable, str(ROOT / "app.py"), "import", str(csv)]
    command += ["--symbol", "CSV", "--timeframe", TIMEFRAME]
    start = time.perf_counter()
    done = subprocess.run(
        command, env=os.environ | {"DATABASE_URL": url}, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"app.py import failed: {done.stderr}")

    print(f"\n{name}: {bars:,} bars")
    print(f"  upsert      {ours_write * 1000:9.0f} ms  {bars / ours_write:>10,.0f} rows/s")
    print(f"  to_sql      {naive_write * 1000:9.0f} ms  {bars / naive_write:>10,.0f} rows/s"
          f"   ours {naive_write / ours_write:5.1f}x faster")  # fmt: skip
    print(f"  frame()     {ours_read * 1000:9.0f} ms")
    print(f"  read_sql    {naive_read * 1000:9.0f} ms"
          f"                     ours {naive_read / ours_read:5.1f}x faster")  # fmt: skip
    print(f"  app.py import (fresh process) {wall:6.2f} s  {bars / wall:>10,.0f} rows/s")
    checks = [
        (f"frame() of {bars:,} bars <= {FRAME_GOAL_S * 1000:.0f} ms", ours_read <= FRAME_GOAL_S),
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
