"""A busy database: the per-transaction lock wait (``lock_wait_ms``) and which failures are
transient (worth retrying) - on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from database.errors import failure_reason, is_transient_failure
from database.models import Candle
from database.retry import backoff_wait, retry_transient
from database.session import (
    LOCK_WAIT_OPTION,
    SQLITE_BUSY_TIMEOUT_MS,
    make_engine,
    make_session_factory,
)
from tests.database.locks import write_lock


def write_candle(factory, ts: int, lock_wait_ms: int | None = None) -> None:
    with factory.begin() as session:
        if lock_wait_ms is not None:
            session.connection(execution_options={LOCK_WAIT_OPTION: lock_wait_ms})
        insert_candle(session, ts)


def insert_candle(session, ts: int) -> None:
    session.add(Candle(symbol="X", timeframe="1m", ts=ts, open=1, high=1, low=1, close=1, volume=0))


def test_a_short_lock_wait_fails_fast_on_a_held_lock_and_is_transient(engine, database_url):
    factory = make_session_factory(engine)
    with write_lock(database_url):
        started = time.monotonic()
        with pytest.raises(OperationalError) as failure:
            write_candle(factory, 0, lock_wait_ms=100)
        waited = time.monotonic() - started
    assert 0.09 <= waited < 5  # it waited for the lock, briefly
    assert is_transient_failure(failure.value)
    reason = failure_reason(failure.value)
    assert "\n" not in reason
    assert "INSERT" not in reason
    assert "locked" in reason or "lock timeout" in reason
    write_candle(factory, 0, lock_wait_ms=100)  # the lock is gone: the same write succeeds


def test_the_lock_wait_applies_to_its_transaction_only(engine, database_backend):
    factory = make_session_factory(engine)
    query = "PRAGMA busy_timeout" if database_backend == "sqlite" else "SHOW lock_timeout"
    with factory.begin() as session:
        session.connection(execution_options={LOCK_WAIT_OPTION: 250})
        assert str(session.execute(text(query)).scalar()) in ("250", "250ms")
    with factory.begin() as session:  # the same pooled connection, back to the default
        default = str(session.execute(text(query)).scalar())
    assert default == (str(SQLITE_BUSY_TIMEOUT_MS) if database_backend == "sqlite" else "0")


def test_a_lock_wait_that_is_not_milliseconds_is_refused(engine):
    factory = make_session_factory(engine)
    for bad in (0, -5, "1; DROP TABLE candles", True):
        with pytest.raises(ValueError, match="lock_wait_ms"), factory.begin() as session:
            session.connection(execution_options={LOCK_WAIT_OPTION: bad})


def test_a_writer_waits_on_the_default_busy_timeout_instead_of_failing(tmp_path):
    """SQLite: WAL, and a second writer queues behind the first for up to the busy timeout."""
    engine = make_engine(f"sqlite:///{tmp_path / 'wait.db'}")
    try:
        with engine.begin() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        holder = sqlite3.connect(
            tmp_path / "wait.db", isolation_level=None, check_same_thread=False
        )
        holder.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
        timer.start()
        started = time.monotonic()
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started >= 0.4
        timer.join()
        holder.close()
    finally:
        engine.dispose()


def test_permanent_failures_are_not_transient(engine, database_backend):
    with pytest.raises(DBAPIError, match="no_such_table") as missing, engine.connect() as c:
        c.execute(text("SELECT * FROM no_such_table"))
    assert not is_transient_failure(missing.value)  # SQLite: an OperationalError too
    factory = make_session_factory(engine)
    write_candle(factory, 0)
    with pytest.raises(IntegrityError) as duplicate:
        write_candle(factory, 0)
    assert not is_transient_failure(duplicate.value)
    assert not is_transient_failure(ValueError("a bar with high below low"))


def test_an_unreachable_postgresql_is_transient():
    # nothing listens on port 1: the connection is refused at once
    engine = make_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    try:
        with pytest.raises(OperationalError) as refused, engine.connect():
            pass
    finally:
        engine.dispose()
    assert is_transient_failure(refused.value)
    assert "\n" not in failure_reason(refused.value)


@contextmanager
def lock_for(database_url: str, seconds: float) -> Iterator[None]:
    """Another connection takes the write lock now and releases it after ``seconds``."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with write_lock(database_url):
            taken.set()
            done.wait(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        done.set()
        holder.join(10)


def test_retry_transient_waits_out_a_held_lock_and_writes_once(engine, database_url):
    factory = make_session_factory(engine)
    attempts = []

    def work() -> str:
        attempts.append(time.monotonic())
        write_candle(factory, 0, lock_wait_ms=50)
        return "stored"

    with lock_for(database_url, 0.5):
        started = time.monotonic()
        assert retry_transient(work, what="test", first_wait_s=0.02, max_wait_s=0.1) == "stored"
    assert time.monotonic() - started >= 0.4
    assert len(attempts) > 1
    with factory() as session:
        assert session.query(Candle).count() == 1


def test_retry_transient_gives_up_with_the_last_failure(engine, database_url):
    factory = make_session_factory(engine)
    with lock_for(database_url, 10), pytest.raises(OperationalError):
        retry_transient(
            lambda: write_candle(factory, 0, lock_wait_ms=20),
            what="test",
            give_up_after_s=0.3,
            first_wait_s=0.02,
            max_wait_s=0.05,
        )


def test_retry_transient_raises_other_failures_at_once(engine):
    factory = make_session_factory(engine)
    write_candle(factory, 0)
    attempts = []

    def duplicate() -> None:
        attempts.append(1)
        write_candle(factory, 0)

    with pytest.raises(IntegrityError):
        retry_transient(duplicate, what="test")
    assert attempts == [1]


def test_backoff_doubles_to_its_cap_with_jitter():
    rng = random.Random(1)
    waits = [backoff_wait(n, 0.1, 5.0, rng) for n in range(1, 10)]
    for n, wait in enumerate(waits, start=1):
        full = min(5.0, 0.1 * 2 ** (n - 1))
        assert full / 2 <= wait <= full
