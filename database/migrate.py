"""Schema migrations through Alembic, driven from code (``python app.py db upgrade``, start-up).

>>> upgrade("sqlite:///data/stratlens.db")  # doctest: +SKIP
>>> current_revision("sqlite:///data/stratlens.db") == head_revision()  # doctest: +SKIP
True

The schema is only ever built by these migrations (tests too), never by ``create_all``.
New revisions: ``alembic.command.revision(alembic_config(url), "message", autogenerate=True)``,
then set HEAD_REVISION (a test holds it to the newest revision).

``upgrade()`` to head first reads the database's revision with one query, and imports and runs
Alembic only when it is behind: a command that starts on a current database (``app.py import``,
``app.py backtest``) does not pay Alembic's import time (about 0.3 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from database.session import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

HEAD_REVISION = "0002"
"""The newest revision in migrations/versions (tests/database/test_migrations.py checks it)."""

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# serializes concurrent upgrades (several gunicorn workers starting at once) on PostgreSQL
_POSTGRES_LOCK_KEY = 0x5374_7261_744C

UrlOrEngine = str | URL | Engine


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic Config for StratLens's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")  # Alembic 1.20 warns without it
    if url is not None:
        rendered = make_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(url_or_engine: UrlOrEngine, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` in one transaction (a no-op when there)."""
    if revision == "head" and _stored_revisions(url_or_engine) == [HEAD_REVISION]:
        return
    with _transaction(url_or_engine) as connection:
        _run(connection, "upgrade", revision)


def downgrade(url_or_engine: UrlOrEngine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"``: drop everything)."""
    with _transaction(url_or_engine) as connection:
        _run(connection, "downgrade", revision)


def current_revision(url_or_engine: UrlOrEngine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with _engine(url_or_engine) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision the code knows (read from the migration scripts)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return head


def _stored_revisions(url_or_engine: UrlOrEngine) -> list[str] | None:
    """alembic_version's rows, without Alembic; None when there is no such table."""
    with _engine(url_or_engine) as engine, engine.connect() as connection:
        try:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return [str(version) for version in rows.scalars()]
        except DBAPIError:
            return None


def _run(connection: Connection, action: str, revision: str) -> None:
    from alembic import command

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
