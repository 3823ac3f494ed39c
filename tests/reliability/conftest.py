"""The API's reliability under faults and load (issue 17), as real processes: gunicorn with two
uvicorn workers, PostgreSQL (a private cluster for the restart, a fresh database on the shared
server otherwise), Redis (a private server for the outage). Helpers: bench/_api_servers.py.

A part that is missing skips its tests, unless REQUIRE_POSTGRES=1 / REQUIRE_REDIS=1 (CI) make
the skip a failure. Every wait is for a condition, with a generous deadline (a loaded 2-core
machine); timing goals are asserted in bench/api.py only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._api_servers import (
    PrivatePostgres,
    PrivateRedis,
    app_env,
    gunicorn_available,
    postgres_bin,
)
from tests.conftest import _create_postgres_database


def _missing(reason: str, required: str) -> None:
    if os.environ.get(required) == "1":
        pytest.fail(f"{reason} ({required}=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _gunicorn() -> None:
    if not gunicorn_available():
        _missing("gunicorn and uvicorn-worker are not installed (requirements-dev.txt)",
                 "REQUIRE_POSTGRES")  # fmt: skip


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A cluster of the test's own (stopped and started by it)."""
    if postgres_bin() is None:
        _missing("no /usr/lib/postgresql/*/bin/initdb", "REQUIRE_POSTGRES")
    with PrivatePostgres() as cluster:
        yield cluster


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed", "REQUIRE_REDIS")
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """A fresh database on the shared server (dropped after the test)."""
    name = _create_postgres_database(postgres_server)
    url = postgres_server.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with postgres_server.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def env_for(tmp_path: Path, database_url: str, redis_url: str | None = None, **extra: str) -> dict:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return app_env(data, database_url, redis_url, **extra)
