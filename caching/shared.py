"""The shared cache: cachelib's SimpleCache in process, flask-caching's RedisCache with REDIS_URL.

Keys always carry the data version (the cursor of the series) and the parameters, so a new
candle or another window can never be served a stale value. Hits and misses are counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a cache is made: redis, flask (through flask_caching)
    import redis  # cost ~0.1 s, which a one-shot command that never caches should not pay
    from cachelib.base import BaseCache


@dataclass(frozen=True)
class CacheStats:
    backend: str
    hits: int
    misses: int


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

    @classmethod
    def from_url(
        cls, redis_url: str | None, timeout_s: int = 600, key_prefix: str = "stratlens:"
    ) -> SharedCache:
        """SimpleCache (this process only) without a URL, else RedisCache (shared)."""
        if not redis_url:
            return cls(None, "simple", timeout_s=timeout_s)
        import redis
        from flask_caching.backends import RedisCache

        client = redis.Redis.from_url(redis_url)
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

    def get(self, key: str) -> Any | None:
        value = self._backend.get(key)
        with self._lock:
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
        return value

    def set(self, key: str, value: Any) -> None:
        self._backend.set(key, value)

    def clear(self) -> None:
        self._backend.clear()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._name, self._hits, self._misses)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
