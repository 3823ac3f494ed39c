"""Answers kept as JSON bytes: GET summary and metrics asked again while the account has no
new trade cost one indexed lookup (its newest row id) and a dictionary read.

>>> answers = KeptAnswers(tracking, engine)
>>> body = answers.answer("summary", SummaryResponse, account, query, compute)  # JSON bytes

Stored trades are immutable and append-only (database.models refuses updates and deletes),
so an account's newest row id names its stored trades: an answer made when the newest row
was ``n`` holds until a trade is added (as TrackingService's memo of documents, which this
keeps in front of: the document's validation and JSON are not redone either). The bytes are
those FastAPI would send for the route's ``response_model`` (validated by the model, then
pydantic's JSON; tests/api/test_answers.py holds them equal). An answer made while a newer
trade was committed is as new or newer than its key: never older.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Engine, bindparam, func, select

from database.models import Trade
from database.session import make_engine

KEPT = 512  # answers kept (route, account, query), the least recently asked dropped first
LOOKUP_POOL = 8  # PostgreSQL connections kept for the lookups (as many again when busy)
_NEWEST = select(func.max(Trade.id)).where(Trade.account_id == bindparam("account"))


def lookup_engine(engine: Engine) -> Engine:
    """The engine of the newest-row lookups. PostgreSQL: one of its own, in autocommit (no
    BEGIN and ROLLBACK round trips around the one SELECT) with a pool sized for the requests
    in flight (past the app's pool of 5 each request would open and close a connection);
    pinged before use as the app's (a restarted server is met by a new connection).
    SQLite: the app's engine."""
    if engine.dialect.name != "postgresql":
        return engine
    return make_engine(
        engine.url, isolation_level="AUTOCOMMIT", pool_size=LOOKUP_POOL, max_overflow=LOOKUP_POOL
    )


class KeptAnswers:
    def __init__(self, engine: Engine, size: int = KEPT) -> None:
        self._engine = lookup_engine(engine)
        self._disposable = self._engine is not engine
        self._size = size
        self._kept: OrderedDict[tuple, tuple[int, bytes]] = OrderedDict()
        self._adapters: dict[type, TypeAdapter] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        """Close the lookups' own connections (PostgreSQL)."""
        if self._disposable:
            self._engine.dispose()

    def newest_row(self, account: str) -> int:
        """The account's newest stored row id (0 without trades): one indexed lookup on a
        Core connection (no ORM session)."""
        with self._engine.connect() as connection:
            return int(connection.execute(_NEWEST, {"account": account}).scalar() or 0)

    def answer(
        self,
        route: str,
        model: type[BaseModel],
        account: str,
        query: Hashable,
        compute: Callable[[], Any],
    ) -> bytes:
        """The JSON of ``model`` for ``compute()`` (the route's document), kept for the
        account's newest row; run on a thread (it reads the database)."""
        newest = self.newest_row(account)
        key = (route, account, query)
        with self._lock:
            found = self._kept.get(key)
            if found is not None and found[0] == newest:
                self._kept.move_to_end(key)
                self.hits += 1
                return found[1]
            self.misses += 1
        body = self.encode(model, compute())
        if newest:  # no trade yet: nothing to key it on (compute() raised anyway)
            with self._lock:
                self._kept[key] = (newest, body)
                self._kept.move_to_end(key)
                while len(self._kept) > self._size:
                    self._kept.popitem(last=False)
        return body

    def encode(self, model: type[BaseModel], document: Any) -> bytes:
        """``document`` as FastAPI answers it for ``response_model=model``."""
        adapter = self._adapters.get(model)
        if adapter is None:
            adapter = self._adapters[model] = TypeAdapter(model)
        value = adapter.validate_python(document, from_attributes=True)
        return adapter.dump_json(value, by_alias=True)


__all__ = ["KeptAnswers"]
