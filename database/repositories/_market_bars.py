"""The bars' parts of the stored market contexts (table ``market_bars``, migration 0018):
stored with the trades whose contexts name them (:func:`store_bars`, in their transaction),
read back by key (:func:`bar_parts`). The key is the digest of the part's text
(``_trade_context``): a key stored is that text for good (the rows are immutable), so the
keys this process has seen committed are not sent again (a stream's next group names mostly
the same bars: 50,000 streamed fills named ~25,000 parts for ~5,000 bars). They are kept per
engine and database (its identity token, ``database_identity``: a database rebuilt at the
same URL is another one; a copy of a database file keeps its token, so the token alone does
not tell them apart), noted at the commit of the transaction that stored them: a rolled-back
transaction or savepoint notes none.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models import MarketBar
from database.repositories._at_commit import AtCommit

MARKET_BARS = MarketBar.__table__
_KEYS_PER_QUERY = 1_000
_KNOWN_AT_MOST = 200_000  # keys noted per database at most (emptied when full)
# engine -> {database token -> keys committed by this process through it}
_known: weakref.WeakKeyDictionary[Any, dict[str, set[str]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class _Stored(NamedTuple):
    """Keys a transaction stored (``_at_commit.Held``)."""

    transaction: Any
    root: Any
    engine: Any
    token: str
    keys: list[str]


def bar_parts(session: Session, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored bar parts of ``keys``, parsed (a key not stored is absent)."""
    wanted = sorted(set(keys))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _KEYS_PER_QUERY):
        part = wanted[start : start + _KEYS_PER_QUERY]
        rows = session.execute(
            select(MARKET_BARS.c.key, MARKET_BARS.c.body).where(MARKET_BARS.c.key.in_(part))
        )
        out.update((key, orjson.loads(body)) for key, body in rows)
    return out


def store_bars(session: Session, bars: Mapping[str, str]) -> None:
    """Store the bar parts ``bars`` (key -> text) in the session's transaction: those not
    known committed, in one statement (a key another writer stored meanwhile: left as it is,
    the same text)."""
    if not bars:
        return
    connection = session.connection()
    token = connection.exec_driver_sql("SELECT token FROM database_identity LIMIT 1").scalar()
    engine = connection.engine
    known = _known.get(engine, {}).get(token, ()) if token else ()
    keys = [key for key in bars if key not in known] if known else list(bars)
    if not keys:
        return
    bodies = [bars[key] for key in keys]
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "INSERT INTO market_bars (key, body) SELECT * FROM unnest(%s::text[], %s::text[])"
            " ON CONFLICT (key) DO NOTHING",
            (keys, bodies),
        )
    else:
        connection.exec_driver_sql(
            "INSERT OR IGNORE INTO market_bars (key, body) VALUES (?, ?)",
            list(zip(keys, bodies, strict=True)),
        )
    if token:
        _AT_COMMIT.hold(session, _Stored(*AtCommit.transactions(session), engine, token, keys))


def known_keys(engine: Any, token: str) -> frozenset[str]:
    """The keys noted committed through ``engine`` in the database of ``token``."""
    return frozenset(_known.get(engine, {}).get(token, ()))


def _noted(stored: _Stored) -> None:
    """The keys of a committed transaction noted as stored."""
    with _lock:
        known = _known.setdefault(stored.engine, {}).setdefault(stored.token, set())
        if len(known) + len(stored.keys) > _KNOWN_AT_MOST:
            known.clear()
        known.update(stored.keys)


_AT_COMMIT = AtCommit("stratlens_market_bars_pending", _noted)

__all__ = ["MARKET_BARS", "bar_parts", "known_keys", "store_bars"]
