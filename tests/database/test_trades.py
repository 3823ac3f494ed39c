"""TradeRepository on SQLite and PostgreSQL: append-only, unique ids, immutable at every level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError

from database.errors import DuplicateTradeError, TradeImmutableError
from database.models import Trade
from database.repositories import TRADES, StrategyRunRepository, TradeRepository
from tests.database.builders import T0, trade


def test_trades_round_trip(session):
    run = StrategyRunRepository(session).create("sma_cross", {}, "SP500", "1d", "paper")
    records = [
        trade("t-1", run_id=run.id),
        trade("t-2", minutes=5, side="sell", price=4750.5, pnl=15.34, cumulative_pnl=15.34),
        trade("t-3", minutes=9, commission=-0.12, labels=(), market_context={}),
    ]
    trades = TradeRepository(session)

    assert trades.add_many(records) == 3

    assert [trades.get(r.trade_id) for r in records] == records
    assert trades.get("t-1").labels == ("breakout", "morning")
    assert trades.get("t-1").execution_time.utcoffset() == timedelta(0)
    assert trades.get("missing") is None


def test_list_trades_by_symbol_strategy_account_run_and_time(session):
    trades = TradeRepository(session)
    trades.add_many(
        [
            trade("a", minutes=30),
            trade("b", minutes=10, symbol="NASDAQ"),
            trade("c", minutes=20, strategy_id="rsi"),
            trade("d", minutes=0, account_id="live-7"),
        ]
    )

    def ids(**filters: object) -> list[str]:
        return [t.trade_id for t in trades.list(**filters)]

    assert ids() == ["d", "b", "c", "a"]  # execution order
    assert ids(symbol="SP500") == ["d", "c", "a"]
    assert ids(strategy_id="sma_cross", symbol="SP500") == ["d", "a"]
    assert ids(account_id="live-7") == ["d"]
    assert ids(start=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=20)) == ["b", "c"]
    assert ids(limit=1) == ["d"]


def test_duplicate_ids_within_a_batch_write_nothing(session):
    trades = TradeRepository(session)

    with pytest.raises(DuplicateTradeError, match="within the batch: 't-2', 't-3'") as caught:
        trades.add_many([trade("t-1"), trade("t-2"), trade("t-3"), trade("t-2"), trade("t-3")])

    assert caught.value.trade_ids == ("t-2", "t-3")
    assert trades.list() == []


def test_ids_already_stored_write_nothing(session):
    trades = TradeRepository(session)
    trades.add_many([trade("t-1"), trade("t-2")])

    with pytest.raises(DuplicateTradeError, match="already stored: 't-2'") as caught:
        trades.add_many([trade("t-3"), trade("t-2", price=1.0)])

    assert caught.value.trade_ids == ("t-2",)
    assert [t.trade_id for t in trades.list()] == ["t-1", "t-2"]
    assert trades.get("t-2").price == trade("t-2").price


def test_a_trade_id_is_unique_within_its_account_only(session):
    """Two bots both have a trade 17: two trades. The same account twice: refused by name,
    also by the database's own key (0010: unique (account_id, trade_id))."""
    trades = TradeRepository(session)
    trades.add_many([trade("17", account_id="freqtrade-1"), trade("17", account_id="hb-1")])
    assert trades.get("17", "hb-1").account_id == "hb-1"
    assert trades.stored_ids("hb-1", ["17", "18"]) == {"17"}

    with pytest.raises(DuplicateTradeError, match=r"already stored: '17' \(account 'hb-1'\)"):
        trades.add_many([trade("18", account_id="hb-1"), trade("17", account_id="hb-1")])
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            TRADES.insert().values(
                trade_id="17", account_id="hb-1", strategy_id="s", symbol="X", side="buy",
                price=1.0, volume=1.0, commission=0.0, execution_time=T0,
                market_context={}, labels=[],
            )
        )  # fmt: skip
    assert sorted(t.account_id for t in trades.list()) == ["freqtrade-1", "hb-1"]


def test_many_stored_duplicates_are_all_named(session):
    trades = TradeRepository(session)
    trades.add_many([trade(f"t-{i}", minutes=i) for i in range(1200)])

    with pytest.raises(DuplicateTradeError, match="and 1190 more") as caught:
        trades.add_many([trade(f"t-{i}", minutes=i) for i in range(1300)])

    assert len(caught.value.trade_ids) == 1200


def test_the_repository_refuses_update_and_delete(session):
    trades = TradeRepository(session)
    trades.add_many([trade("t-1")])

    with pytest.raises(TradeImmutableError):
        trades.update("t-1", price=1.0)
    with pytest.raises(TradeImmutableError):
        trades.delete("t-1")
    assert trades.get("t-1") == trade("t-1")


@pytest.fixture
def stored_trade(session_factory) -> None:
    with session_factory.begin() as session:
        TradeRepository(session).add_many([trade("t-1")])


def test_the_orm_refuses_changing_a_loaded_trade(session_factory, stored_trade):
    with session_factory() as session:
        loaded = session.scalars(select(Trade)).one()
        loaded.price = 1.0
        with pytest.raises(TradeImmutableError, match="t-1"):
            session.flush()

    with session_factory() as session:
        session.delete(session.scalars(select(Trade)).one())
        with pytest.raises(TradeImmutableError, match="t-1"):
            session.commit()

    with session_factory() as session:
        assert TradeRepository(session).get("t-1") == trade("t-1")


def test_the_orm_allows_a_flush_without_a_net_change(session_factory, stored_trade):
    with session_factory.begin() as session:
        loaded = session.scalars(select(Trade)).one()
        loaded.price = loaded.price  # marks the object dirty, changes nothing

    with session_factory() as session:
        assert TradeRepository(session).get("t-1") == trade("t-1")


@pytest.mark.parametrize(
    "statement",
    [
        update(Trade).values(price=1.0),
        delete(Trade),
        update(TRADES).values(price=1.0),
        delete(TRADES).where(TRADES.c.trade_id == "t-1"),
    ],
    ids=["orm update", "orm delete", "core update", "core delete"],
)
def test_session_execute_refuses_bulk_update_and_delete(session_factory, stored_trade, statement):
    with pytest.raises(TradeImmutableError), session_factory.begin() as session:
        session.execute(statement)

    with session_factory() as session:
        assert TradeRepository(session).get("t-1") == trade("t-1")


def test_raw_sql_cannot_change_a_stored_trade(engine, session_factory, stored_trade):
    statements = [
        "UPDATE trades SET price = 1.0",
        "UPDATE trades SET labels = '[]' WHERE trade_id = 't-1'",
        "DELETE FROM trades",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE trades")
    for statement in statements:
        with pytest.raises(IntegrityError, match="trades are immutable"), engine.begin() as c:
            c.execute(text(statement))

    with session_factory() as session:
        assert TradeRepository(session).get("t-1") == trade("t-1")


def test_a_run_with_trades_cannot_be_deleted(engine, session_factory):
    with session_factory.begin() as session:
        run = StrategyRunRepository(session).create("s", {}, "SP500", "1d", "paper")
        TradeRepository(session).add_many([trade("t-1", run_id=run.id)])

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("DELETE FROM strategy_runs"))
