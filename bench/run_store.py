"""A metrics file read and a run stored, against the previous and naive ways, in one run.

    python bench/run_store.py [--rows 1000000] [--signals 72000] [--trades 36000]
                              [--run-bars 170000] [--pipeline-bars 200000] [--parts abc]
                              [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

(a) ``read_series_csv`` on a --rows equity CSV (1m random walk) against ``pandas.read_csv`` of
    the same file (no checks at all) and the previous path (``read_series_csv_precise``, the
    pandas reader that names every defect, once); then ``python app.py metrics FILE`` as a
    fresh process, from spawn to exit (median of 3). Goal: <= 1 s.
(b) ``StrategyRepository.save_run`` of one run: SMA crossover 2/5 both on --run-bars 1m
    random-walk bars, backtested; its first --signals signals, first --trades trades and its
    equity curve (every bar), on SQLite (a file) and PostgreSQL (a scratch database),
    committed. Lines: now (schema head: the signals as one ``SignalBlock`` as the pipeline
    passes them, stored as one Arrow IPC block in strategy_signal_blocks (migration 0008);
    the trades and equity as Arrow IPC in strategy_run_results); ``records``: the same
    through ``to_records()`` rows;
    ``previous``: schema 0001 and ``previous_insert_signals`` below (config and metadata JSON
    on every row, CSV COPY checked against a FOREIGN KEY per row; signals only: no trades were
    stored then); ``to_sql``: ``DataFrame.to_sql`` of the signals (JSON made per row, as pandas
    needs) and of the trades; ``floor``: the same signal rows by the same path into a bare copy
    of the table (no index, trigger or CHECK), what the rows alone cost on this machine. Median
    of 5 (records, to_sql 3). Goal: <= 300 ms on each database.
(c) ``services.backtests.run_request`` on --pipeline-bars stored 1m bars (SMA crossover 10/30
    both): seconds per step. Not judged.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from sqlalchemy import MetaData, Table, bindparam, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from analytics.backtest import BacktestSettings, run_backtest
from analytics.series_io import read_series_csv, read_series_csv_precise
from database import migrate
from database.models import UTCDateTime
from database.records import RunResultRecord, SignalBlock, SignalRecord
from database.repositories import CandleRepository, StrategyRepository
from database.repositories._columnar import json_texts, utc_texts
from database.repositories._common import DEFAULT_CHUNK_ROWS, chunks
from database.repositories._signal_io import insert_signals as insert_signal_rows
from database.session import make_engine, make_session_factory
from market.sample_data import generate_random_walk
from services.backtests import BacktestRequest, open_context, run_request
from strategies import registry

ROOT = Path(__file__).resolve().parent.parent
GOAL_METRICS_S = 1.0
GOAL_STORE_S = 0.300
PREVIOUS_REVISION = "0001"  # the schema before the run store (migration 0003)
PARAMS = {"fast": 10, "slow": 30, "direction": "both"}


def _median(run: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- (a) the metrics file ---------------------------------------------------------------------


def bench_metrics_file(folder: Path, rows: int) -> bool:
    path = folder / "equity.csv"
    stamps = pd.date_range("2020-01-01", periods=rows, freq="min", tz="UTC")
    steps = np.random.default_rng(7).normal(0, 1e-4, rows)
    equity = pd.DataFrame({"timestamp": stamps, "equity": 10_000 * np.exp(np.cumsum(steps))})
    equity.to_csv(path, index=False)
    print(f"(a) {rows:,}-row equity CSV ({path.stat().st_size / 1e6:.0f} MB), seconds")
    ours = _median(lambda: read_series_csv(path), 3)
    pandas_plain = _median(lambda: pd.read_csv(path), 3)
    previous = _median(lambda: read_series_csv_precise(path), 1)
    print(f"    read_series_csv (pyarrow)       {ours:7.3f}")
    print(f"    pandas.read_csv (no checks)     {pandas_plain:7.3f}   "
          f"ours {pandas_plain / ours:5.1f}x")  # fmt: skip
    print(f"    previous path (pandas, checked) {previous:7.3f}   ours {previous / ours:5.1f}x")
    command = [sys.executable, str(ROOT / "app.py"), "metrics", str(path)]

    def fresh() -> None:
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)

    wall = _median(fresh, 3)
    ok = wall <= GOAL_METRICS_S
    print(f"    app.py metrics, fresh process   {wall:7.3f}   goal <= {GOAL_METRICS_S:g} s  "
          + _verdict(ok))  # fmt: skip
    return ok


# -- (b) a run's signals ----------------------------------------------------------------------


_PREVIOUS_COLUMNS = (
    "strategy_name", "strategy_config", "symbol", "timeframe", "timestamp", "signal_type",
    "price", "confidence", "signal_metadata", "run_id",
)  # fmt: skip
_PREVIOUS_SQLITE_ROWS = 99


def previous_insert_signals(
    session: Session,
    records: Sequence[SignalRecord],
    chunk_rows: int,
    *,
    run_id: int | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> None:
    """The insert_signals of schema 0001 (before migration 0003), kept to measure against:
    every signal's config and metadata as JSON text (columnar, ``_columnar``), the time as
    text; CSV COPY on PostgreSQL (the server parses every field, checks the FOREIGN KEY and
    builds JSONB per row), 99-row INSERTs on SQLite."""
    postgresql = session.connection().dialect.name == "postgresql"
    config = json.dumps(dict(run_config or {}))
    dumps: dict[int, str] = {}

    def config_text(own: Mapping[str, Any] | None) -> str:
        if not own:
            return config
        if (text := dumps.get(id(own))) is None:
            text = dumps[id(own)] = json.dumps(dict(own))
        return text

    columns = {
        "strategy_name": [r.strategy_name for r in records],
        "strategy_config": [config_text(r.strategy_config) for r in records],
        "symbol": [r.symbol for r in records],
        "timeframe": [r.timeframe for r in records],
        "timestamp": utc_texts([r.timestamp for r in records], zone=postgresql),
        "signal_type": [r.signal_type for r in records],
        "price": [r.price for r in records],
        "confidence": [r.confidence for r in records],
        "signal_metadata": json_texts([r.metadata for r in records]),
        "run_id": [run_id if run_id is not None else r.run_id for r in records],
    }
    rows = list(zip(*columns.values(), strict=True))
    connection = session.connection()
    target = f"strategy_signals ({', '.join(_PREVIOUS_COLUMNS)})"
    if postgresql:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for chunk in chunks(rows, chunk_rows):
            buffer = io.StringIO()
            csv.writer(buffer).writerows(chunk)
            buffer.seek(0)
            cursor.copy_expert(f"COPY {target} FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.close()
        return
    row = f"({', '.join('?' * len(_PREVIOUS_COLUMNS))})"
    many = f"INSERT INTO {target} VALUES {', '.join([row] * _PREVIOUS_SQLITE_ROWS)}"
    for chunk in chunks(rows, chunk_rows):
        whole = len(chunk) - len(chunk) % _PREVIOUS_SQLITE_ROWS
        if whole:
            flat = list(itertools.chain.from_iterable(chunk[:whole]))
            step = _PREVIOUS_SQLITE_ROWS * len(_PREVIOUS_COLUMNS)
            groups = [tuple(flat[start : start + step]) for start in range(0, len(flat), step)]
            connection.exec_driver_sql(many, groups)
        if whole < len(chunk):
            connection.exec_driver_sql(f"INSERT INTO {target} VALUES {row}", list(chunk[whole:]))


RUN_PARAMS = {"fast": 2, "slow": 5, "direction": "both"}  # a crossover every few bars


class BenchRun(NamedTuple):
    """One run to store: its signals as the pipeline passes them (a block) and as records,
    and its result (trades and equity)."""

    block: SignalBlock
    records: list[SignalRecord]
    result: RunResultRecord
    bars: int


def previous_save_run(
    session: Session, config: Mapping[str, Any], records: Sequence[SignalRecord]
) -> None:
    """save_run of schema 0001: the run row (0001's columns), then its signals through
    ``previous_insert_signals``."""
    run_id = session.execute(
        text(
            "INSERT INTO strategy_runs (strategy_name, config, symbol, timeframe, mode, "
            "started_at, finished_at, status) VALUES ('sma_crossover', :config, 'BENCH', '1m', "
            "'backtest', :now, :now, 'finished') RETURNING id"
        ).bindparams(bindparam("now", type_=UTCDateTime())),
        {"config": json.dumps(dict(config)), "now": datetime.now(UTC)},
    ).scalar_one()
    previous_insert_signals(session, records, DEFAULT_CHUNK_ROWS, run_id=run_id, run_config=config)


def _run(bars: int, signals: int, trades: int) -> BenchRun:
    """SMA crossover 2/5 both on ``bars`` 1m random-walk bars, backtested: its first
    ``signals`` signals and ``trades`` trades, and its equity curve (every bar)."""
    frame = generate_random_walk("BENCH", "1m", "2020-01-01", bars, seed=7)
    generated = registry.create("sma_crossover", **RUN_PARAMS).generate(
        frame, symbol="BENCH", timeframe="1m"
    )
    backtest = run_backtest(frame, generated, BacktestSettings())
    block = generated.to_block()
    if len(block) < signals or len(backtest.trades) < trades:
        raise SystemExit(
            f"{bars:,} bars give {len(block):,} signals and {len(backtest.trades):,} trades, "
            f"fewer than {signals:,} / {trades:,}"
        )
    cut = SignalBlock(
        strategy_name=block.strategy_name, symbol=block.symbol, timeframe=block.timeframe,
        timestamp=block.timestamp[:signals], signal_type=block.signal_type[:signals],
        price=block.price[:signals], confidence=block.confidence[:signals],
        metadata={k: v[:signals] for k, v in block.metadata.items()},
        strategy_config=block.strategy_config,
    )  # fmt: skip
    result = RunResultRecord(
        trades=backtest.trades.iloc[:trades].copy(),
        equity=backtest.equity,
        warmup_bars=generated_warmup(bars),
        drawdown_halt=backtest.drawdown_halt,
    )
    return BenchRun(cut, generated.to_records()[:signals], result, bars)


def generated_warmup(bars: int) -> int:
    return registry.create("sma_crossover", **RUN_PARAMS).benchmark_start(bars)


def bench_run_store(url: str, previous_url: str, label: str, run: BenchRun) -> bool:
    """save_run of one run now (schema head: its signals as a block, its trades and equity
    with it), through records (the same schema), the previous path (schema 0001,
    ``previous_insert_signals``: signals only, no trades were stored) and ``DataFrame.to_sql``
    of the signals and the trades (schema head; JSON made per row, as pandas needs), each
    committed."""
    config = {**RUN_PARAMS, "backtest": {"cash": 10_000}}

    def saver(database_url: str, signals: Any, result: Any) -> tuple[Callable[[], None], Any]:
        engine = make_engine(database_url)
        factory = make_session_factory(engine)

        def save() -> None:
            with factory.begin() as session:
                StrategyRepository(session).save_run(
                    "sma_crossover", config, "BENCH", "1m", "backtest", signals, result=result
                )

        return save, engine

    save, engine = saver(url, run.block, run.result)
    save_records, _ = saver(url, run.records, run.result)
    previous_engine = make_engine(previous_url)
    previous_sessions = make_session_factory(previous_engine)

    def save_before() -> None:
        with previous_sessions.begin() as session:
            previous_save_run(session, config, run.records)

    records = run.records

    def to_sql() -> None:
        frame = pd.DataFrame(
            {
                "strategy_name": [r.strategy_name for r in records],
                "strategy_config": [json.dumps(dict(r.strategy_config)) for r in records],
                "symbol": [r.symbol for r in records],
                "timeframe": [r.timeframe for r in records],
                "timestamp": [r.timestamp for r in records],
                "signal_type": [r.signal_type for r in records],
                "price": [r.price for r in records],
                "confidence": [r.confidence for r in records],
                "signal_metadata": [json.dumps(dict(r.metadata)) for r in records],
            }
        )
        trades = run.result.trades.astype({"side": str, "exit_reason": str})
        with engine.begin() as connection:
            frame.to_sql("strategy_signals", connection, if_exists="append", index=False)
            trades.to_sql("bench_trades", connection, if_exists="append", index=False)

    bare = _bare_table(engine)
    bare_sessions = make_session_factory(engine)

    def floor() -> None:
        with bare_sessions.begin() as session:
            insert_signal_rows(session, bare, run.block, DEFAULT_CHUNK_ROWS, run_id=1,
                               run_config=config, typed_keys=tuple(run.block.metadata))  # fmt: skip

    save()  # warm: imports, statement caches
    save_before()
    floor()
    bare_time = _median(floor, 5)
    ours = _median(save, 5)
    through_records = _median(save_records, 3)
    before = _median(save_before, 5)
    pandas_time = _median(to_sql, 3)
    engine.dispose()
    previous_engine.dispose()
    ok = ours <= GOAL_STORE_S
    print(f"    {label:<11} save_run {ours * 1e3:7.1f} ms   goal <= {GOAL_STORE_S * 1e3:.0f} ms  "
          f"{_verdict(ok)}\n"
          f"    {'':<11} records  {through_records * 1e3:7.1f} ms ({through_records / ours:4.1f}x)"
          f"   previous {before * 1e3:7.1f} ms ({before / ours:4.1f}x, signals only)"
          f"   to_sql {pandas_time * 1e3:7.1f} ms ({pandas_time / ours:4.1f}x)\n"
          f"    {'':<11} floor    {bare_time * 1e3:7.1f} ms: the same signal rows, same path, "
          "into a bare copy of the table (no index, trigger or CHECK), no trades")  # fmt: skip
    return ok


def _bare_table(engine: Any) -> Table:
    """An empty copy of strategy_signals' columns without indexes, triggers or CHECKs."""
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS bench_bare_signals")
        connection.exec_driver_sql(
            "CREATE TABLE bench_bare_signals AS SELECT * FROM strategy_signals WHERE 1 = 0"
        )
        return Table("bench_bare_signals", MetaData(), autoload_with=connection)


@contextmanager
def _postgres_database(server_url: str | None, revision: str = "head") -> Iterator[str | None]:
    """A scratch database migrated to ``revision``, dropped afterwards; None if unreachable."""
    if server_url is None:
        yield None
        return
    server = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"stratlens_bench_{uuid.uuid4().hex[:12]}"
    try:
        with server.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # a benchmark without PostgreSQL still reports SQLite
        print(f"    PostgreSQL unreachable ({type(exc).__name__}): skipped")
        server.dispose()
        yield None
        return
    url = server.url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url, revision)
        yield url
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()


# -- (c) the pipeline's store step ------------------------------------------------------------


def bench_pipeline(url: str, label: str, bars: int) -> None:
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        frame = generate_random_walk("PIPE", "1m", "2020-01-01", bars, seed=11)
        CandleRepository(session).upsert("PIPE", "1m", frame)
    engine.dispose()
    context = open_context(url, None)
    request = BacktestRequest("sma_crossover", PARAMS, "PIPE", "1m")

    def steps() -> dict[str, float]:
        marks: list[tuple[str, float]] = []
        result = run_request(request, context, progress=lambda i, n, name: marks.append(
            (name, time.perf_counter())))  # fmt: skip
        marks.append(("end", time.perf_counter()))
        seconds = {a: tb - ta for (a, ta), (_, tb) in itertools.pairwise(marks)}
        seconds["signals"] = len(result.backtest.trades)
        return seconds

    steps()  # warm: the integrator's cache, numba
    now = steps()
    context.close()
    print(f"    {label:<11} " + "  ".join(f"{k} {v:.3f}" for k, v in now.items() if k != "signals")
          + f"   ({int(now['signals']):,} trades)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--signals", type=int, default=72_000)
    parser.add_argument("--trades", type=int, default=36_000)
    parser.add_argument("--run-bars", type=int, default=170_000)
    parser.add_argument("--pipeline-bars", type=int, default=200_000)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. b")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if "a" in args.parts:
            ok &= bench_metrics_file(folder, args.rows)
        run = _run(args.run_bars, args.signals, args.trades)
        print(f"(b) save_run of one run: {len(run.block):,} signals, {len(run.result.trades):,} "
              f"trades, a {run.bars:,}-bar equity curve; committed, median of 5 (records, "
              "to_sql 3)")  # fmt: skip
        sqlite_url = f"sqlite:///{folder / 'bench.db'}"
        sqlite_previous = f"sqlite:///{folder / 'previous.db'}"
        migrate.upgrade(sqlite_url)
        migrate.upgrade(sqlite_previous, PREVIOUS_REVISION)
        with (
            _postgres_database(args.postgres) as postgres_url,
            _postgres_database(args.postgres, PREVIOUS_REVISION) as postgres_previous,
        ):
            urls = [("SQLite", sqlite_url, sqlite_previous)]
            if postgres_url and postgres_previous:
                urls.append(("PostgreSQL", postgres_url, postgres_previous))
            for label, url, previous_url in urls:
                if "b" in args.parts:
                    ok &= bench_run_store(url, previous_url, label, run)
            if "c" in args.parts:
                print(f"(c) run_request on {args.pipeline_bars:,} stored 1m bars, seconds per step")
                for label, url, _ in urls:
                    bench_pipeline(url, label, args.pipeline_bars)
    print("overall:", _verdict(ok))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
