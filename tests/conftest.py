"""Shared fixtures. Redis: `redis_url` (a real server; REQUIRE_REDIS=1 forbids skipping) and
`cache_prefix`. Database: every test using ``database_url`` (or ``engine``, ``session_factory``,
``session``) runs twice, on SQLite and on PostgreSQL, each time on a fresh database whose schema
was built by the migrations.

PostgreSQL: the server at $TEST_POSTGRES_URL (default below). Unreachable, its tests skip,
unless REQUIRE_POSTGRES=1 (CI), where they fail. Each test gets its own database, copied from a
template migrated once per session, and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from database.migrate import upgrade
from database.session import make_engine, make_session_factory

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
# a test of PostgreSQL's behaviour alone: parametrize("database_backend", [...], indirect=True)
ONLY_POSTGRESQL = BACKENDS[1]


@pytest.fixture(scope="session", autouse=True)
def _candle_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The columnar candle cache of every test (and of the processes tests start) lives in a
    temporary folder, never in the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("candle_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CANDLE_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the server's maintenance database (creates/drops databases)."""
    url = make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    if url.drivername == "postgresql":  # SQLAlchemy 2.1 reads a bare scheme as psycopg 3
        url = url.set(drivername="postgresql+psycopg2")
    engine = create_engine(
        url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        reason = f"PostgreSQL unreachable at {url.render_as_string()}: {exc.orig}".strip()
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (REQUIRE_POSTGRES=1 forbids skipping)", pytrace=False)
        pytest.skip(reason)
    yield engine
    engine.dispose()


def _create_postgres_database(server: Engine, template: str = "template0") -> str:
    name = f"stratlens_test_{uuid.uuid4().hex[:12]}"
    with server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _drop_postgres_database(server: Engine, name: str) -> None:
    with server.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_url(server: Engine, name: str) -> str:
    return server.url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: Engine) -> Iterator[str]:
    name = _create_postgres_database(postgres_server)
    try:
        upgrade(_postgres_url(postgres_server, name))
        yield name
    finally:
        _drop_postgres_database(postgres_server, name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite_template") / "stratlens.db"
    upgrade(f"sqlite:///{path}")  # disposes its engine: the WAL is checkpointed into the file
    return path


@pytest.fixture(params=BACKENDS)
def database_backend(request: pytest.FixtureRequest) -> str:
    """'sqlite' or 'postgresql'."""
    return request.param


@pytest.fixture
def database_url(
    database_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """URL of a fresh database migrated to head."""
    if database_backend == "sqlite":
        path = tmp_path / "stratlens.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: Engine = request.getfixturevalue("postgres_server")
    name = _create_postgres_database(server, request.getfixturevalue("_postgres_template"))
    try:
        yield _postgres_url(server, name)
    finally:
        _drop_postgres_database(server, name)


@pytest.fixture
def empty_database_url(
    database_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """URL of a fresh database without any table (not migrated)."""
    if database_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: Engine = request.getfixturevalue("postgres_server")
    name = _create_postgres_database(server)
    try:
        yield _postgres_url(server, name)
    finally:
        _drop_postgres_database(server, name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is rolled back at the end; commit-sensitive tests use
    ``session_factory.begin()`` instead."""
    with session_factory() as session:
        yield session


# -- Redis: a real server for the shared-cache tests (REQUIRE_REDIS=1 turns a skip into a failure)
@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        reason = f"Redis unreachable at {url}: {exc}"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason} (REQUIRE_REDIS=1 forbids skipping)", pytrace=False)
        pytest.skip(reason)
    client.close()
    return url


@pytest.fixture
def cache_prefix() -> str:
    """Keys of one test only: tests never see each other's (or anybody's) entries."""
    return f"stratlens-test-{uuid.uuid4().hex[:10]}:"
