"""Migration 0016 on SQLite and PostgreSQL: the deployments table leaves room on its pages
for the runner's updates (PostgreSQL's fillfactor); every row stays as it is, both ways."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from database.migrate import downgrade, upgrade
from database.repositories.trading import TradingRepository
from database.session import make_engine, make_session_factory

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def _rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(text("SELECT * FROM deployments ORDER BY id")).all()


def _options(engine) -> list[str] | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = 'deployments'")
        ).scalar()


def test_0016_leaves_room_in_the_deployments_pages_and_keeps_every_row(empty_database_url):
    upgrade(empty_database_url, "0015")
    engine = make_engine(empty_database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            repo = TradingRepository(session)
            account = repo.create_account("acc", 10_000.0, NOW)
            for k in range(3):
                repo.create_deployment(
                    f"d{k}", account.id, "sma_crossover", {"fast": k + 2}, "SP500", "1d", {}, NOW
                )
        before = _rows(engine)
        assert _options(engine) is None

        upgrade(engine, "0016")

        postgresql = engine.dialect.name == "postgresql"
        assert _options(engine) == (["fillfactor=40"] if postgresql else None)
        assert _rows(engine) == before
        with sessions.begin() as session:  # written as before
            TradingRepository(session).update_deployment(before[0].id, NOW, last_bar_ts=7)
        assert _rows(engine)[0].last_bar_ts == 7

        downgrade(engine, "0015")

        assert _options(engine) is None
        assert _rows(engine)[1:] == before[1:]
    finally:
        engine.dispose()
