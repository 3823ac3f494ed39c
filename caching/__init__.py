"""Caching: the SharedCache every layer above config keys its computed values in.

>>> cache = SharedCache.from_url(None)            # in this process; a Redis URL shares it
>>> cache.set("key", value); cache.get("key"); cache.stats()

Layer 2 (above config, below market and everything else): it imports no other package of the
project, so any layer that does I/O (database-backed services, the integrator) may use it.
"""

from caching.shared import CacheStats, SharedCache

__all__ = ["CacheStats", "SharedCache"]
