"""The runner's bar transactions on SQLite: their commits never checkpoint the WAL (a
checkpoint's fsyncs were the runner's p99); BarSessions.checkpoint does, off their path."""

from __future__ import annotations

from pathlib import Path

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
