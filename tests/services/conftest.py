"""A real Redis for the shared-cache tests (REQUIRE_REDIS=1 turns a skip into a failure)."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


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
