"""import_candles: staged in short transactions, visible all at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, inspect, text

from database.repositories import CandleRepository
from database.session import LOCK_WAIT_OPTION, make_engine, make_session_factory
from market.candles import CANDLE_COLUMNS
from market.sample_data import generate_random_walk
from market.timeframes import to_epoch_ms
from services.candle_import import import_candles

ROOT = Path(__file__).resolve().parents[2]
START = pd.Timestamp("2024-01-01", tz="UTC")
# a slow import in a subprocess: many small chunks, each its own transaction; its last bar is
# stored first, so that it is staged on PostgreSQL too (new history is copied straight in)
SLOW_IMPORT = """
import sys
import pandas as pd
from database.session import make_engine
from market.sample_data import generate_random_walk
from services.candle_import import import_candles
frame = generate_random_walk("SLOW", "1m", pd.Timestamp("2024-01-01", tz="UTC"), 400_000, 3)
engine = make_engine(sys.argv[1])
import_candles(engine, "SLOW", "1m", frame.iloc[-1:])
import_candles(engine, "SLOW", "1m", frame, chunk_rows=500)
print("done")
"""


def _bars(bars: int, seed: int = 1, start: pd.Timestamp = START) -> pd.DataFrame:
    return generate_random_walk("T", "1m", start, bars, seed)


def _stored(engine: Engine, symbol: str = "T") -> pd.DataFrame:
    with make_session_factory(engine).begin() as session:
        return CandleRepository(session).frame(symbol, "1m")


def _staging_tables(engine: Engine) -> list[str]:
    """Staging tables in the database, and (SQLite) the TEMP ones of the pooled connection an
    import in this process used."""
    with engine.connect() as connection:
        found = inspect(connection)
        names = found.get_table_names()
        if engine.dialect.name == "sqlite":
            names += found.get_temp_table_names()
        return [name for name in names if name.startswith("candle_import_")]


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() or 0)


def _version(engine: Engine, symbol: str = "T") -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT version FROM candle_series_versions WHERE symbol = :s"), {"s": symbol}
        ).scalar()


def test_a_staged_import_stores_every_bar_and_leaves_no_staging(engine):
    frame = _bars(2_345)

    assert import_candles(engine, "T", "1m", frame, chunk_rows=500) == 2_345

    pd.testing.assert_frame_equal(_stored(engine), frame, check_freq=False)
    assert _staging_tables(engine) == []
    assert _count(engine, "candle_imports") == 0
    if engine.dialect.name == "sqlite":  # staged as float64: stored as integers all the same
        with engine.connect() as connection:
            kinds = connection.exec_driver_sql("SELECT DISTINCT typeof(ts) FROM candles").all()
        assert kinds == [("integer",)]


def test_staging_a_chunk_does_not_block_another_writer(engine):
    from database.repositories import candle_staging

    with engine.connect() as importing:
        with importing.begin():
            import_id = candle_staging.start_import(importing, "T", "1m")
        frame = _bars(1_000)
        ts = to_epoch_ms(frame.index)
        columns = {name: frame[name].to_numpy() for name in CANDLE_COLUMNS}
        with importing.begin():  # a chunk being staged, its transaction still open
            candle_staging.stage(importing, import_id, ts, columns)
            bar = _bars(1, start=pd.Timestamp("2030-01-01", tz="UTC"))
            with make_session_factory(engine).begin() as session:  # e.g. a live feed's bar
                session.connection(execution_options={LOCK_WAIT_OPTION: 200})
                CandleRepository(session).upsert("LIVE", "1m", bar)
        with importing.begin():
            candle_staging.discard(importing, import_id)

    pd.testing.assert_frame_equal(_stored(engine, "LIVE"), bar, check_freq=False)


def test_a_staged_reimport_is_idempotent_and_keeps_the_version(engine):
    frame = _bars(2_000)
    import_candles(engine, "T", "1m", frame, chunk_rows=300)
    version = _version(engine)

    import_candles(engine, "T", "1m", frame, chunk_rows=300)

    pd.testing.assert_frame_equal(_stored(engine), frame, check_freq=False)
    assert _version(engine) == version  # nothing changed: the cache stays valid
    assert _staging_tables(engine) == []


def test_a_staged_import_merges_into_a_stored_series(engine):
    stored = _bars(1_000)
    import_candles(engine, "T", "1m", stored)
    version = _version(engine)
    changed = _bars(1_500, seed=2, start=stored.index[500])  # overlaps the last 500 bars

    import_candles(engine, "T", "1m", changed, chunk_rows=400)

    expected = pd.concat([stored.iloc[:500], changed])
    pd.testing.assert_frame_equal(_stored(engine), expected, check_freq=False)
    assert _version(engine) != version


@pytest.mark.parametrize("chunk_rows", [100, 100_000])
def test_a_rejected_frame_writes_nothing(engine, chunk_rows):
    frame = _bars(1_000)
    frame.iloc[700, frame.columns.get_loc("high")] = np.nan

    with pytest.raises(ValueError, match="'high' holds NaN"):
        import_candles(engine, "T", "1m", frame, chunk_rows=chunk_rows)

    for table in ("candles", "candle_imports"):
        assert _count(engine, table) == 0, table
    assert _staging_tables(engine) == []


def _start_slow_import(database_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_IMPORT, database_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _wait_for_staging(engine: Engine, process: subprocess.Popen) -> None:
    """Until the import is registered (its staging table made in the same transaction) and,
    where another connection can see them (PostgreSQL; SQLite stages in a TEMP table), until
    a chunk is staged."""
    deadline = time.monotonic() + 120
    while not _count(engine, "candle_imports") or (
        engine.dialect.name == "postgresql"
        and not sum(_count(engine, table) for table in _staging_tables(engine))
    ):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no staged chunk committed in 120 s"
        time.sleep(0.05)


def test_a_killed_import_leaves_nothing_visible_and_the_next_import_cleans_up(
    database_url, database_backend
):
    engine = make_engine(database_url)
    process = _start_slow_import(database_url)
    try:
        _wait_for_staging(engine, process)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)

        assert _count(engine, "candles") == 1  # the bar stored before the import
        assert len(_stored(engine, "SLOW")) == 1
        assert _count(engine, "candle_imports") == 1  # abandoned, not yet discarded
        if database_backend == "postgresql":  # the server ends the killed client's session
            _wait_for_sessions_to_end(engine)

        import_candles(engine, "T", "1m", _bars(1_000), chunk_rows=100)

        assert _staging_tables(engine) == []
        assert _count(engine, "candle_imports") == 0
        assert len(_stored(engine, "SLOW")) == 1
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # closes the pipes
        engine.dispose()


def _wait_for_sessions_to_end(engine: Engine) -> None:
    deadline = time.monotonic() + 30
    with engine.connect() as connection:
        owner = connection.exec_driver_sql("SELECT owner FROM candle_imports").scalar()
    pid = int(str(owner).removeprefix("pg:"))
    while True:
        with engine.connect() as connection:
            alive = connection.exec_driver_sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
            ).scalar()
        if not alive:
            return
        assert time.monotonic() < deadline, "the killed import's session is still open"
        time.sleep(0.1)


def test_another_writer_commits_between_the_chunks_of_an_import(database_url):
    engine = make_engine(database_url)
    process = _start_slow_import(database_url)
    try:
        _wait_for_staging(engine, process)
        bar = _bars(1, start=pd.Timestamp("2030-01-01", tz="UTC"))

        started = time.monotonic()
        with make_session_factory(engine).begin() as session:  # e.g. a live feed's bar
            CandleRepository(session).upsert("LIVE", "1m", bar)
        waited = time.monotonic() - started

        assert _count(engine, "candle_imports") == 1, "the import should still be running"
        assert waited < 5, f"the writer waited {waited:.1f} s for the import"
        assert len(_stored(engine, "SLOW")) == 1  # nothing of the import visible yet
        _out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert len(_stored(engine, "SLOW")) == 400_000
        pd.testing.assert_frame_equal(_stored(engine, "LIVE"), bar, check_freq=False)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # closes the pipes
        engine.dispose()


def test_a_staging_table_left_after_its_merge_is_dropped_by_the_next_import(engine):
    from database.repositories import candle_staging

    with engine.begin() as connection:  # as if the process died between merge and drop
        orphan = candle_staging.start_import(connection, "GONE", "1m")
        connection.exec_driver_sql(f"DELETE FROM candle_imports WHERE import_id = '{orphan}'")
    assert _staging_tables(engine) == [candle_staging.staging_table(orphan)]

    import_candles(engine, "T", "1m", _bars(500), chunk_rows=100)

    assert _staging_tables(engine) == []
    assert len(_stored(engine)) == 500


def test_new_history_is_staged_on_sqlite_and_copied_straight_in_on_postgresql(engine, monkeypatch):
    from database.repositories import candle_staging

    started = []
    start_import = candle_staging.start_import

    def spy(connection, symbol, timeframe):
        started.append((symbol, timeframe))
        return start_import(connection, symbol, timeframe)

    monkeypatch.setattr(candle_staging, "start_import", spy)
    frame = _bars(1_000)

    import_candles(engine, "T", "1m", frame, chunk_rows=100)

    pd.testing.assert_frame_equal(_stored(engine), frame, check_freq=False)
    assert started == ([("T", "1m")] if engine.dialect.name == "sqlite" else [])
