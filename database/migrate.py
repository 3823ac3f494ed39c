"""Schema migrations through Alembic, driven from code (``python app.py db upgrade``, start-up).

>>> upgrade("sqlite:///data/stratlens.db")  # doctest: +SKIP
>>> current_revision("sqlite:///data/stratlens.db") == head_revision()  # doctest: +SKIP
True

The schema is only ever built by these migrations (tests too), never by ``create_all``.
New revisions: ``alembic.command.revision(alembic_config(url), "message", autogenerate=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, make_url

from database.session import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# serializes concurrent upgrades (several gunicorn workers starting at once) on PostgreSQL
_POSTGRES_LOCK_KEY = 0x5374_7261_744C

UrlOrEngine = str | URL | Engine


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic Config for StratLens's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")  # Alembic 1.20 warns without it
    if url is not None:
        rendered = make_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url_or_engine: UrlOrEngine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` in one transaction (a no-op when there)."""
    with _transaction(url_or_engine) as connection:
        _run(connection, "upgrade", revision)


def downgrade(url_or_engine: UrlOrEngine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"``: drop everything)."""
    with _transaction(url_or_engine) as connection:
        _run(connection, "downgrade", revision)


def current_revision(url_or_engine: UrlOrEngine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    with _engine(url_or_engine) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return head


def _run(connection: Connection, action: str, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_POSTGRES_LOCK_KEY})")
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


@contextmanager
def _engine(url_or_engine: UrlOrEngine) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = make_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _transaction(url_or_engine: UrlOrEngine) -> Iterator[Connection]:
    with _engine(url_or_engine) as engine, engine.connect() as connection:
        # SQLite: take the write lock up front, so a concurrent upgrade waits instead of
        # failing on a stale snapshot (see database.session)
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection
