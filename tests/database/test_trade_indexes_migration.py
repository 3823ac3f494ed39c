"""Migration 0015 on SQLite and PostgreSQL: trades keep only the indexes a query uses; the
stored rows are untouched, both ways."""

from __future__ import annotations

from sqlalchemy import inspect, text

from database.migrate import downgrade, upgrade
from database.repositories import StrategyRunRepository, TradeRepository
from database.session import make_engine, make_session_factory
from tests.database.builders import trade
from tests.database.test_migrations import _index_definition

DROPPED = {
    "ix_trades_symbol_execution_time",
    "ix_trades_strategy_id_execution_time",
    "ix_trades_account_id_execution_time",
}


def _indexes(engine) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("trades")}


def _run_index(engine) -> str:
    return _index_definition(engine, "ix_trades_run_id").upper().replace("(", "")


def _rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(text("SELECT * FROM trades ORDER BY id")).all()


def test_0015_drops_unused_trade_indexes_and_keeps_every_row(empty_database_url):
    upgrade(empty_database_url, "0014")
    engine = make_engine(empty_database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            run = StrategyRunRepository(session).create("sma_cross", {}, "SP500", "1d", "paper")
            TradeRepository(session).add_many(
                [trade("t-1", run_id=run.id), trade("t-2", minutes=3, pnl=1.5, cumulative_pnl=1.5),
                 trade("t-3", minutes=1, account_id="other", labels=(), market_context={})]
            )  # fmt: skip
        before = _rows(engine)
        assert set(_indexes(engine)) >= DROPPED

        upgrade(engine, "0015")

        indexes = _indexes(engine)
        assert not DROPPED & set(indexes)
        assert indexes["ix_trades_account_id_id"] == ["account_id", "id"]
        assert indexes["ix_trades_run_id"] == ["run_id"]
        assert _run_index(engine).replace(")", "").endswith("WHERE RUN_ID IS NOT NULL")
        assert _rows(engine) == before
        with sessions() as session:
            trades = TradeRepository(session)
            assert [t.trade_id for t in trades.list(account_id="paper-1")] == ["t-1", "t-2"]
            assert [t.trade_id for t in trades.list(run_id=run.id)] == ["t-1"]
            assert [t.trade_id for t in trades.list(symbol="SP500")] == ["t-1", "t-3", "t-2"]

        downgrade(engine, "0014")

        assert set(_indexes(engine)) >= DROPPED
        assert "WHERE" not in _run_index(engine)
        assert _rows(engine) == before
    finally:
        engine.dispose()
