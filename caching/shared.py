"""The shared cache: cachelib's SimpleCache in process, flask-caching's RedisCache with REDIS_URL.

Keys always carry the data version (the cursor of the series) and the parameters, so a new
candle or another window can never be served a stale value. Hits and misses are counted.

Redis down: a get or set that fails falls back to an in-process SimpleCache (logged once per
outage) and Redis is tried again after ``REDIS_RETRY_S``; the pages keep working, each
process computing for itself meanwhile. ``stats().redis`` says ``up`` or ``down: <why>``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a cache is made: redis, flask (through flask_caching)
    import redis  # cost ~0.1 s, which a one-shot command that never caches should not pay
    from cachelib.base import BaseCache

log = logging.getLogger("stratlens.cache")
REDIS_RETRY_S = 5.0  # after a failed call, the in-process cache this long
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_TIMEOUT_S = 10.0  # a large series' value takes a while to move


@dataclass(frozen=True)
class CacheStats:
    backend: str
    hits: int
    misses: int
    redis: str | None = None  # with a Redis backend: "up" or "down: <why>"


class SharedCache:
    def __init__(
        self,
        backend: BaseCache | None,
        name: str,
        client: redis.Redis | None = None,
        *,
        timeout_s: int = 600,
    ) -> None:
        self._made = backend  # None: a SimpleCache made on first use
        self._timeout_s = timeout_s
        self._name = name
        self._client = client
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._down_until = 0.0
        self._down: str | None = None  # why Redis failed last, None while it answers
        self._fallback: BaseCache | None = None  # with Redis: this process's, while it is down
        if client is not None:
            from cachelib.simple import SimpleCache

            self._fallback = SimpleCache(threshold=256, default_timeout=timeout_s)

    @classmethod
    def from_url(
        cls, redis_url: str | None, timeout_s: int = 600, key_prefix: str = "stratlens:"
    ) -> SharedCache:
        """SimpleCache (this process only) without a URL, else RedisCache (shared)."""
        if not redis_url:
            return cls(None, "simple", timeout_s=timeout_s)
        import redis
        from flask_caching.backends import RedisCache

        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
        )  # fmt: skip
        backend = RedisCache(host=client, default_timeout=timeout_s, key_prefix=key_prefix)
        return cls(backend, "redis", client)

    @classmethod
    def disabled(cls) -> SharedCache:
        """A cache that keeps nothing: for a one-shot process that never asks twice (the
        SimpleCache pickles every value it keeps: ~70 ms for a 1,000,000-bar series)."""
        from cachelib import NullCache

        return cls(NullCache(), "none")

    @property
    def _backend(self) -> BaseCache:
        if self._made is None:
            from cachelib.simple import SimpleCache  # flask-caching's, without flask

            with self._lock:
                if self._made is None:
                    self._made = SimpleCache(threshold=256, default_timeout=self._timeout_s)
        return self._made

    def _call(self, method: str, *args: Any) -> Any:
        """``method`` of the backend; with Redis down, of the in-process fallback."""
        if self._client is not None and time.monotonic() < self._down_until:
            return getattr(self._fallback, method)(*args)
        try:
            result = getattr(self._backend, method)(*args)
        except Exception as exc:
            if self._client is None or not _redis_failure(exc):
                raise
            self._down_until = time.monotonic() + REDIS_RETRY_S
            if self._down is None:
                log.warning("cache: Redis unavailable (%s); caching in this process", exc)
            self._down = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            return getattr(self._fallback, method)(*args)
        if self._down is not None:
            log.info("cache: Redis answers again")
            self._down = None
        return result

    def get(self, key: str) -> Any | None:
        value = self._call("get", key)
        with self._lock:
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
        return value

    def set(self, key: str, value: Any) -> None:
        self._call("set", key, value)

    def clear(self) -> None:
        self._call("clear")
        if self._fallback is not None:
            self._fallback.clear()

    def stats(self) -> CacheStats:
        redis = None if self._client is None else ("up" if self._down is None else
                                                    f"down: {self._down}")  # fmt: skip
        with self._lock:
            return CacheStats(self._name, self._hits, self._misses, redis)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _redis_failure(exc: BaseException) -> bool:
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)
