"""The database part of a StratLens process: migrated, the bundled data stored on first use.

A one-shot command (indicator, signals, backtest, sweep) needs only this, so nothing here
imports the live stack (feeds, chart layers, the dashboard): ``app.py backtest`` stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from database import migrate
from database.repositories import CandleRepository
from database.session import make_engine, make_session_factory

if TYPE_CHECKING:  # imported by offline_services only: a command that only stores skips it
    from strategies.data_integration import StrategyDataIntegrator

log = logging.getLogger("stratlens")


def prepare_database(settings: Settings) -> Engine:
    """The engine of a migrated database, the bundled data loaded on first use."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        if settings.load_sample_data:
            seed_sample_data(make_session_factory(engine))
    except BaseException:
        engine.dispose()
        raise
    return engine


def check_writable(engine: Engine) -> None:
    """Raise the database's own error now if it cannot take a write (a read-only SQLite file,
    a read-only PostgreSQL replica or role): a server must not start with every feed failing.
    The probe rewrites alembic_version's row with its own value and is rolled back."""
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
        transaction.rollback()


@contextmanager
def offline_services(
    settings: Settings,
) -> Iterator[tuple[sessionmaker[Session], StrategyDataIntegrator]]:
    """A migrated database (bundled data loaded) and an integrator, for one command."""
    from caching import SharedCache
    from strategies.data_integration import StrategyDataIntegrator

    engine = prepare_database(settings)
    cache = SharedCache.from_url(settings.redis_url)
    try:
        sessions = make_session_factory(engine)
        yield sessions, StrategyDataIntegrator(sessions, cache)
    finally:
        cache.close()
        engine.dispose()


def seed_sample_data(sessions: sessionmaker[Session]) -> None:
    """Store each bundled series that is not stored yet (first start)."""
    from market.sample_data import SAMPLE_SERIES  # its reader (pyarrow's CSV) only if needed

    for sample in SAMPLE_SERIES.values():
        tf = sample.timeframe.label
        with sessions.begin() as session:
            repo = CandleRepository(session)
            if not repo.has_bars(sample.symbol, tf):
                frame = sample.load()
                repo.upsert(sample.symbol, tf, frame)
                log.info(
                    "loaded sample %s %s: %d bars (%s)",
                    sample.symbol,
                    tf,
                    len(frame),
                    sample.source,
                )
