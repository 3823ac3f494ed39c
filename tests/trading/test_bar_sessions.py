"""The runner's bar transactions on SQLite: their commits never checkpoint the WAL (a
checkpoint's fsyncs were the runner's p99); BarSessions.checkpoint does, off their path."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from database.session import make_engine, make_session_factory
from services.bar_sessions import BarSessions

PAGES = 1_200  # past SQLite's automatic checkpoint (1,000 pages)


def wal_frames(path: Path) -> int:
    """Frames of the current generation of the database's WAL (read from the file: a
    checkpoint restarts the log with new salts, so older frames do not count)."""
    data = (path.parent / f"{path.name}-wal").read_bytes()
    if len(data) < 32:
        return 0
    page, salt = int.from_bytes(data[8:12], "big"), data[16:24]
    frames, offset = 0, 32
    while offset + 24 + page <= len(data) and data[offset + 8 : offset + 16] == salt:
        frames, offset = frames + 1, offset + 24 + page
    return frames


def test_bar_commits_leave_the_wal_to_the_background_checkpoint(tmp_path: Path):
    path = tmp_path / "bars.db"
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)"))
    bars = BarSessions(sessions)
    try:
        for _ in range(PAGES // 20):  # each commit ~20 pages, as a busy bar's
            with bars.factory.begin() as session:
                session.execute(
                    text("INSERT INTO t (blob) VALUES (randomblob(:n))"), {"n": 20 * 4096}
                )
        assert wal_frames(path) >= PAGES  # no commit checkpointed (the default would at 1,000)
        bars.checkpoint()
        with bars.factory.begin() as session:  # the WAL starts over once checkpointed
            session.execute(text("INSERT INTO t (blob) VALUES (randomblob(10))"))
        assert wal_frames(path) < 20
    finally:
        bars.close()
        engine.dispose()


def test_other_connections_keep_the_automatic_checkpoint(tmp_path: Path):
    path = tmp_path / "other.db"
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    bars = BarSessions(sessions)
    try:
        with sessions.begin() as session:
            session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB)"))
        for _ in range(PAGES // 20):
            with sessions.begin() as session:
                session.execute(
                    text("INSERT INTO t (blob) VALUES (randomblob(:n))"), {"n": 20 * 4096}
                )
        assert 0 < wal_frames(path) < 1_000 + 40  # checkpointed, restarted along the way
    finally:
        bars.close()
        engine.dispose()


@pytest.mark.parametrize("database_backend", ["postgresql"], indirect=True)  # PostgreSQL's only
def test_a_bar_transaction_on_postgresql_is_opened_by_the_batch_and_atomic(session_factory):
    """PostgreSQL: the bar's connection is in autocommit mode, BEGIN leads the batch's text
    and COMMIT ends it; what fails is rolled back whole, a statement before the batch opens
    the transaction itself, a dead connection fails the first statement (invalidated)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from sqlalchemy.exc import DBAPIError, IntegrityError

    from database.repositories.trading import TradingRepository
    from database.repositories.trading_batch import TradingBatch, write_batch

    assert session_factory.kw["bind"].dialect.name == "postgresql"
    now = datetime(2024, 3, 1, tzinfo=UTC)
    with session_factory.begin() as session:
        account = TradingRepository(session).create_account("acc", 100.0, now)

    def cash() -> float:
        with session_factory() as session:
            row = TradingRepository(session).account_by_id(account.id)
            assert row is not None
            return row.cash

    def batch(value: float) -> TradingBatch:
        return TradingBatch(now, accounts=[replace(account, cash=value)], no_flush_wait=True)

    bars = BarSessions(session_factory)
    try:
        with bars.transaction() as session:
            write_batch(session, batch(5.0))
            assert session.execute(text("SELECT txid_current_if_assigned()")).scalar()
            assert session.execute(text("SHOW synchronous_commit")).scalar() == "off"
        assert cash() == 5.0
        with pytest.raises(IntegrityError):  # the server's error after the batch
            failing(bars, batch(7.0), "INSERT INTO accounts (id) VALUES (NULL)")
        assert cash() == 5.0
        with pytest.raises(RuntimeError):  # a statement before the batch, then Python's error
            failing(bars, batch(8.0), None, before="UPDATE accounts SET cash = 9")
        assert cash() == 5.0
        with bars.transaction() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        with session_factory() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as failed:
            failing(bars, batch(6.0), None)
        assert failed.value.connection_invalidated
        with bars.transaction() as session:  # a new connection
            write_batch(session, batch(6.0))
        assert cash() == 6.0
        with bars.transaction() as session:  # nothing after it: its statements commit
            write_batch(session, replace(batch(4.0), last=True))
            assert cash() == 4.0  # seen by another connection before the block ends
        assert cash() == 4.0
    finally:
        bars.close()


def failing(bars: BarSessions, batch, after: str | None, before: str | None = None) -> None:
    """A bar transaction: ``before``, the batch, ``after``, then a RuntimeError."""
    from database.repositories.trading_batch import write_batch

    with bars.transaction() as session:
        if before is not None:
            session.execute(text(before))
        write_batch(session, batch)
        if after is not None:
            session.execute(text(after))
        raise RuntimeError("the bar failed")


@pytest.mark.parametrize("database_backend", ["postgresql"], indirect=True)  # PostgreSQL's only
def test_the_bar_connection_prepares_its_statements_once_and_again_after_a_failure(
    session_factory,
):
    """The batch's statements are prepared on the bar's connection at their first use and
    executed after; a text that fails before some of its statements were prepared leaves
    none assumed (the next text drops and prepares them again); a new connection too."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    from database.repositories.trading import TradingRepository
    from database.repositories.trading_batch import TradingBatch, write_batch

    now = datetime(2024, 3, 1, tzinfo=UTC)
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        account = repo.create_account("acc", 100.0, now)
        deployment = repo.create_deployment(
            "d", account.id, "sma_crossover", {}, "SP", "1m", {}, now
        )

    def batch(cash: float, bar: int) -> TradingBatch:
        return TradingBatch(
            now, accounts=[replace(account, cash=cash)],
            states=[(deployment.id, 60_000 * bar, bar, {"bar": bar})], last=True,
        )  # fmt: skip

    def prepared(session) -> set[str]:
        rows = session.execute(text("SELECT name FROM pg_prepared_statements")).scalars()
        return set(rows)

    def stored() -> tuple[float, int]:
        with session_factory() as session:
            repo = TradingRepository(session)
            row, d = repo.account_by_id(account.id), repo.deployment("d")
            assert row is not None
            assert d is not None
            return row.cash, d.bar_index

    bars = BarSessions(session_factory)
    try:
        with bars.transaction() as session:
            write_batch(session, batch(5.0, 1))
            assert prepared(session) == {"stratlens_accounts", "stratlens_states"}
        with bars.transaction() as session:
            write_batch(session, batch(6.0, 2))  # executed, nothing prepared again
        assert stored() == (6.0, 2)
        advance = [(deployment.id, 60_000 * 3)]  # its statement not prepared yet
        with pytest.raises(IntegrityError), bars.transaction() as session:
            # the accounts' check refuses it before the advance's PREPARE is reached
            write_batch(session, replace(batch(float("inf"), 3), states=[], advanced=advance))
        assert stored() == (6.0, 2)
        with bars.transaction() as session:
            write_batch(session, replace(batch(8.0, 3), states=[], advanced=advance))
            assert "stratlens_advance" in prepared(session)
        assert stored() == (8.0, 3)
    finally:
        bars.close()
