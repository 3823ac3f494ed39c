"""A bar's part of the stored market contexts, stored once (database/repositories/_trade_context,
_market_bars; migration 0018), on SQLite and PostgreSQL: the fills of a bar name one row of
``market_bars`` keyed by the digest of its text and read back as the contexts recorded; values
only equal (-0.0 and 0.0, 1 and 1.0) keep their own text; the keys noted as stored are those
of committed transactions only; the rows are immutable."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from analytics.market_context import CONTEXT_KEYS
from database.records import TradeRecord
from database.repositories._market_bars import known_keys
from database.repositories._trade_context import BAR_REF, FILL_KEYS, bar_key, context_texts
from database.repositories._trade_io import insert_trades
from database.repositories.trade_pages import TradePages
from database.repositories.trades import TradeRepository, _columns
from tests.conftest import ONLY_POSTGRESQL

T0 = datetime(2024, 3, 1, 14, 0, tzinfo=UTC)


def bar_part(**values) -> dict:
    """A bar's part of the annotator's context (its indicators), as the annotator makes it."""
    context = dict.fromkeys(CONTEXT_KEYS)
    context.update(
        volatility_regime="high", trend="uptrend", volume_profile="low",
        bar_open="2024-03-01T13:59:00+00:00", close=101.5, atr=1.25, atr_pct=1.2315270935960592,
        atr_pct_rank=87.5, sma=100.25, close_vs_sma_atr=1.0, sma_slope_pct=0.03, volume=1234.5,
        volume_z=-0.25, donchian_high=102.0, donchian_low=99.0, rsi=61.2,
        bollinger_upper=103.1, bollinger_lower=98.9, momentum_atr=2.5,
    )  # fmt: skip
    context.update(values)
    return context


def of_fill(bar: dict, price: float, session: str = "regular", **extra) -> dict:
    """A fill's context: a copy of its bar's (the same value objects), then its own part."""
    context = bar.copy()
    context.update(
        market_session=session, price_level="neutral",
        to_high_atr=(bar["donchian_high"] - price) / bar["atr"],
        to_low_atr=(price - bar["donchian_low"]) / bar["atr"],
    )  # fmt: skip
    context.update(extra)
    return context


def record(k: int, context: dict, account: str = "acc") -> TradeRecord:
    return TradeRecord(
        trade_id=f"t{k}", account_id=account, strategy_id="s", symbol="BTC",
        side="buy" if k % 2 == 0 else "sell", price=100.0 + k, volume=1.0, commission=0.1,
        execution_time=T0 + timedelta(seconds=k), market_context=context, labels=(), source="api",
    )  # fmt: skip


def stored_bars(session) -> dict[str, str]:
    return dict(session.execute(text("SELECT key, body FROM market_bars")).all())


def stored_contexts(session) -> list[dict]:
    values = session.execute(text("SELECT market_context FROM trades ORDER BY id")).scalars()
    return [orjson.loads(v) if isinstance(v, str) else v for v in values]


def token(session) -> str:
    return session.execute(text("SELECT token FROM database_identity")).scalar_one()


def test_the_fills_of_a_bar_name_one_row_and_read_back_as_recorded(session_factory):
    bar, other = bar_part(), bar_part(bar_open="2024-03-01T14:00:00+00:00", close=101.75)
    contexts = [
        of_fill(bar, 100.0), of_fill(bar, 100.5, "after_hours"), of_fill(other, 101.0),
        of_fill(bar, 100.25, reason="stop_loss", note=None),  # a source's keys after them
        of_fill(bar_part(volatility_regime=None, rsi=None), 100.0),  # nulls left out
    ]  # fmt: skip
    records = [record(k, c) for k, c in enumerate(contexts)]
    with session_factory.begin() as session:
        TradeRepository(session).add_many(records)
    with session_factory() as session:
        repo = TradeRepository(session)
        listed = [r.market_context for r in repo.list(account_id="acc")]
        frame = list(repo.frame("acc", context=True)["market_context"])
        paged = [r.market_context for _, r in TradePages(session).page("acc")]
        single = repo.get("t2", "acc")
        bars, stored = stored_bars(session), stored_contexts(session)
    for got in (listed, frame, paged):
        assert got == contexts
        # the annotator's keys in their order (a source's after them: jsonb orders its own)
        assert [list(c)[: len(CONTEXT_KEYS)] for c in got] == [list(CONTEXT_KEYS)] * len(got)
    assert single is not None
    assert single.market_context == contexts[2]
    # three bars: two of the first bar's fills and the source's one share a row
    assert len(bars) == 3
    assert {c[BAR_REF] for c in stored} == set(bars)
    assert stored[0][BAR_REF] == stored[1][BAR_REF] == stored[3][BAR_REF]
    for key, body in bars.items():  # keyed by the digest of the text stored
        assert bar_key(body) == key
        assert "market_session" not in orjson.loads(body)
    assert all(len(orjson.dumps(c)) < 260 for c in stored)  # not ~680 bytes a fill
    assert stored[3]["reason"] == "stop_loss"
    assert stored[3]["note"] is None


def test_values_only_equal_keep_their_own_text(session_factory):
    """-0.0 and 0.0, 1 and 1.0 compare equal; the contexts read back as given, sign and type."""
    bar = bar_part(momentum_atr=0.0, volume=1.0)
    contexts = [
        of_fill(bar, 100.0),
        of_fill({**bar, "momentum_atr": -0.0}, 100.0),
        of_fill({**bar, "volume": 1}, 100.0),
    ]
    with session_factory.begin() as session:
        TradeRepository(session).add_many([record(k, c) for k, c in enumerate(contexts)])
    with session_factory() as session:
        back = [r.market_context for r in TradeRepository(session).list(account_id="acc")]
        assert len(stored_bars(session)) == 3
    assert back == contexts
    assert math.copysign(1.0, back[0]["momentum_atr"]) == 1.0
    assert math.copysign(1.0, back[1]["momentum_atr"]) == -1.0
    assert type(back[0]["volume"]) is float
    assert type(back[2]["volume"]) is int


def test_keys_are_noted_at_the_commit_only(session_factory, engine):
    """A rolled-back transaction, savepoint or released savepoint of a rolled-back
    transaction notes no key: the next writer stores the bar again."""
    bar = bar_part(close=105.0, bar_open="2024-03-01T15:00:00+00:00")
    with session_factory() as session:
        database = token(session)
    with session_factory() as session:
        with session.begin():
            TradeRepository(session).add_many([record(0, of_fill(bar, 100.0))])
            session.rollback()
        with session.begin():
            nested = session.begin_nested()
            TradeRepository(session).add_many([record(1, of_fill(bar, 100.0))])
            nested.commit()  # released: its transaction is rolled back below
            session.rollback()
        assert known_keys(engine, database) == frozenset()
        assert stored_bars(session) == {}
    with session_factory.begin() as session:
        nested = session.begin_nested()  # another bar, its savepoint rolled back
        other = bar_part(close=107.0, bar_open="2024-03-01T15:01:00+00:00")
        TradeRepository(session).add_many([record(2, of_fill(other, 100.0))])
        nested.rollback()
        TradeRepository(session).add_many([record(3, of_fill(bar, 101.0))])
    with session_factory() as session:
        bars = stored_bars(session)
        assert known_keys(engine, database) == frozenset(bars)
        assert len(bars) == 1
        [got] = TradeRepository(session).list(account_id="acc")
    assert got.trade_id == "t3"
    assert got.market_context == of_fill(bar, 101.0)


def test_a_bar_known_stored_is_not_sent_again(session_factory, engine):
    bar = bar_part(close=106.0, bar_open="2024-03-01T16:00:00+00:00")
    with session_factory.begin() as session:
        TradeRepository(session).add_many([record(0, of_fill(bar, 100.0))])
    with session_factory() as session:
        [key] = stored_bars(session)
        assert key in known_keys(engine, token(session))
    statements: list[str] = []
    from sqlalchemy import event

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_factory.begin() as session:
            TradeRepository(session).add_many([record(1, of_fill(bar, 101.0))])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "INTO market_bars" in s]
    with session_factory() as session:
        contexts = [r.market_context for r in TradeRepository(session).list(account_id="acc")]
    assert contexts == [of_fill(bar, 100.0), of_fill(bar, 101.0)]


def test_contexts_of_key_set_1_stay_readable(session_factory):
    """Rows stored before the bars were apart (whole context, key set 1) read as before."""
    context = of_fill(bar_part(), 100.0)
    with session_factory.begin() as session:
        columns = _columns([record(0, context)])
        columns["market_context"] = context_texts([context])  # no bars: key set 1
        del columns["market_bars"]
        insert_trades(session, columns)
    with session_factory() as session:
        [stored] = stored_contexts(session)
        assert BAR_REF not in stored
        assert stored["close"] == 101.5  # the bar's values in the trade's own context
        assert stored_bars(session) == {}
        [got] = TradeRepository(session).list(account_id="acc")
    assert got.market_context == context


def test_a_context_whose_bar_is_missing_is_named(session_factory):
    context = of_fill(bar_part(), 100.0)
    with session_factory.begin() as session:
        columns = _columns([record(0, context)])
        key = orjson.loads(columns["market_context"][0])[BAR_REF]
        del columns["market_bars"]  # the trade written without its bar
        insert_trades(session, columns)
    with session_factory() as session, pytest.raises(LookupError, match=key):
        TradeRepository(session).list(account_id="acc")


def test_stored_bars_are_immutable(session_factory):
    with session_factory.begin() as session:
        TradeRepository(session).add_many([record(0, of_fill(bar_part(), 100.0))])
    for statement in ("UPDATE market_bars SET body = '{}'", "DELETE FROM market_bars"):
        with session_factory() as session, pytest.raises(DBAPIError, match="immutable"):
            session.execute(text(statement))
    with session_factory() as session:
        assert len(stored_bars(session)) == 1


@pytest.mark.parametrize("database_backend", [ONLY_POSTGRESQL], indirect=True)
def test_stored_bars_refuse_a_truncate_on_postgresql(session_factory):
    with session_factory() as session, pytest.raises(DBAPIError, match="immutable"):
        session.execute(text("TRUNCATE market_bars"))


def test_a_fills_text_is_what_orjson_writes_of_its_part():
    """The fill's text, made from the JSON of its parts, is byte for byte orjson's text of
    {its part without nulls, _bar, _compact: 2}, whatever is null or a numpy number."""
    bar = bar_part()
    cases = [
        of_fill(bar, 100.0),
        {**of_fill(bar, 100.0), "volatility_regime": None, "price_level": None},
        {**of_fill(bar, 100.0), "to_high_atr": None, "to_low_atr": np.float64(-0.0)},
        {**of_fill(bar, 100.0), "market_session": 'quote " and \\ back', "to_high_atr": 1e-7},
        {**of_fill(bar, 100.0), "volatility_regime": None, "market_session": None,
         "price_level": None, "to_high_atr": None, "to_low_atr": None},
    ]  # fmt: skip
    bars: dict[str, str] = {}
    texts = context_texts(cases, bars)
    for context, stored in zip(cases, texts, strict=True):
        key = orjson.loads(stored)[BAR_REF]
        assert bar_key(bars[key]) == key
        part = {k: context[k] for k in FILL_KEYS if context[k] is not None}
        expected = {**part, BAR_REF: key, "_compact": 2}
        assert stored == orjson.dumps(expected, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    assert len(bars) == 1  # every case read against the one bar
