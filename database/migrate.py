"""Schema migrations through Alembic, driven from code (``python app.py db upgrade``, start-up).

>>> upgrade("sqlite:///data/stratlens.db")  # doctest: +SKIP
>>> current_revision("sqlite:///data/stratlens.db") == head_revision()  # doctest: +SKIP
True

The schema is only ever built by these migrations (tests too), never by ``create_all``.
New revisions: ``alembic.command.revision(alembic_config(url), "message", autogenerate=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, Connection, Engine, make_url, text
from sqlalchemy.exc import DBAPIError

from database.session import make_engine

if TYPE_CHECKING:  # Alembic is imported when a migration has to run, not by every command
    from alembic.config import Config

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
    """Migrate the database up to ``revision`` in one transaction (a no-op when there).

    A database already at the head is recognised with one query, without Alembic (a
    one-shot command starts about 0.1 s sooner); anything else goes through Alembic.
    """
    if revision == "head" and _at_head(url_or_engine):
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
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return head


_REVISION = re.compile(r"^revision: str = \"([^\"]+)\"", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision: [^=]+= (None|\"([^\"]+)\")", re.MULTILINE)


@cache
def _head_from_files() -> str | None:
    """The head revision read from the migration files' ``revision``/``down_revision`` lines
    (as every revision here writes them); None when that does not give exactly one head."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(url_or_engine: UrlOrEngine) -> bool:
    head = _head_from_files()
    if head is None:
        return False
    with _engine(url_or_engine) as engine, engine.connect() as connection:
        try:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:  # never migrated: no alembic_version table yet
            return False
    return [row[0] for row in stored] == [head]


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
