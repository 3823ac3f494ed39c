"""A trade's market context as stored (database/repositories/trades.py, SQLite and PostgreSQL):
the annotator's context is written without its null entries and read back as the same dict,
keys in the same order; a source's own keys, null or not, and contexts of any other shape come
back as they were given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import text

from analytics.market_context import CONTEXT_KEYS
from database.records import TradeRecord
from database.repositories._trade_context import CONTEXT_KEYS as STORED_KEYS
from database.repositories._trade_context import context_of, context_texts
from database.repositories.trade_pages import TradePages
from database.repositories.trades import TradeRepository

T0 = datetime(2024, 3, 1, 14, 0, tzinfo=UTC)


def annotated(**values) -> dict:
    context = dict.fromkeys(CONTEXT_KEYS)
    context.update(values)
    return context


BAR = annotated(
    volatility_regime="high", market_session="regular", trend="uptrend", atr=1.25,
    bar_open="2024-03-01T13:59:00+00:00", close=101.5, atr_pct=-0.0, rsi=55.0,
)  # fmt: skip
CONTEXTS = [
    annotated(market_session="europe"),  # no bars: one value of 23
    BAR,
    {**BAR, "reason": "stop_loss", "note": None},  # a source's keys after the annotator's
    {**annotated(market_session="asia"), "trigger": "stop", "base_price": 100},
    annotated(),  # every value null
    {k: float(n) for n, k in enumerate(CONTEXT_KEYS)},  # no value null
    {},  # a tracker without an annotator
    {"venue": "paper", "trigger": None, "base_price": 100.0},  # a source's own only
    {"_compact": 1, "x": None},  # a source's own key named like the marker
    {**annotated(market_session="us"), "_compact": 7},
    {k: BAR[k] for k in reversed(CONTEXT_KEYS)},  # the annotator's keys in another order
]


def test_the_stored_keys_are_the_annotators():
    assert STORED_KEYS == CONTEXT_KEYS


@pytest.mark.parametrize("with_bars", [False, True], ids=["key set 1", "bars apart"])
def test_contexts_round_trip_in_memory_with_their_key_order(with_bars):
    bars: dict[str, str] | None = {} if with_bars else None
    texts = context_texts(CONTEXTS, bars)
    parts = {key: orjson.loads(body) for key, body in (bars or {}).items()}
    for given, stored in zip(CONTEXTS, texts, strict=True):
        back = context_of(orjson.loads(stored), parts)
        assert back == given
        assert list(back) == list(given)
    # the annotator's contexts are stored without their nulls
    assert len(texts[0]) < 60
    assert "null" not in texts[1]
    assert orjson.loads(texts[2])["note"] is None  # a source's null stays


def record(k: int, context: dict) -> TradeRecord:
    return TradeRecord(
        trade_id=f"t{k}", account_id="acc", strategy_id="s", symbol="BTC",
        side="buy" if k % 2 == 0 else "sell", price=100.0 + k, volume=1.0, commission=0.1,
        execution_time=T0 + timedelta(minutes=k), market_context=context, labels=("breakout",),
        source="csv",
    )  # fmt: skip


def test_contexts_read_back_from_the_database_as_recorded(session_factory):
    records = [record(k, c) for k, c in enumerate(CONTEXTS)]
    with session_factory.begin() as session:
        TradeRepository(session).add_many(records)
    with session_factory() as session:
        repo = TradeRepository(session)
        listed = repo.list(account_id="acc")
        frame = repo.frame("acc", context=True)
        single = repo.get("t1", "acc")
        paged = [r for _, r in TradePages(session).page("acc", limit=100)]
        raw = session.execute(text("SELECT market_context FROM trades ORDER BY id")).scalars()
        stored_sizes = [len(v if isinstance(v, str) else orjson.dumps(v)) for v in raw]
    for got in (listed, paged):
        assert [r.market_context for r in got] == CONTEXTS
    assert list(frame["market_context"]) == CONTEXTS
    assert single is not None
    assert single.market_context == BAR
    # the columns the analyses group by are read by the database from the stored JSON
    regimes = frame["volatility_regime"]
    assert regimes.isna().iloc[0]  # a null: missing, as a null entry was
    assert list(regimes.iloc[1:3]) == ["high", "high"]
    assert list(frame["market_session"].iloc[:2]) == ["europe", "regular"]
    assert stored_sizes[0] < 80  # 23 keys, one value: not ~420 bytes


@pytest.mark.parametrize("context", [annotated(market_session="europe"), BAR])
def test_a_stored_annotated_trade_is_the_record_the_tracker_made(session_factory, context):
    """What a reader gets equals the record as made, whichever way it reads it."""
    given = record(0, context)
    with session_factory.begin() as session:
        TradeRepository(session).add_many([given])
    with session_factory() as session:
        assert TradeRepository(session).get("t0", "acc") == given
