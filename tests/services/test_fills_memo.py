"""TrackingService keeps the fills frame it read last for an account while the account's stored
rows are still the ones it holds (TradeRepository.holds: on SQLite the token and the newest row
id, on PostgreSQL the row count too), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from database.records import TradeRecord
from database.repositories.trades import TradeRepository
from services.tracking import TrackingService

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CANDLE_CACHE_DIR", str(tmp_path / "cache" / "candles"))


def trades(start: int, n: int) -> list[TradeRecord]:
    return [
        TradeRecord(
            trade_id=f"t{k}", account_id="acc", strategy_id="s", symbol="BTC/USDT",
            side=("buy", "sell")[k % 2], price=100.0 + k, volume=1.0, commission=0.1,
            execution_time=T0 + timedelta(minutes=k), source="csv",
        )
        for k in range(start, start + n)
    ]  # fmt: skip


def add(session_factory, records) -> None:
    with session_factory.begin() as session:
        TradeRepository(session).add_many(records)


def test_the_kept_fills_serve_until_another_session_stores_a_trade(session_factory):
    add(session_factory, trades(0, 6))
    service = TrackingService(session_factory)
    first = service.fills("acc")
    again = service.fills("acc")
    assert len(again) == 6
    assert again.attrs["stored_version"] == first.attrs["stored_version"]
    add(session_factory, trades(6, 1))  # another writer: not this service's tracker
    assert service.fills("acc")["trade_id"].tolist() == [f"t{k}" for k in range(7)]


def test_holds_compares_the_newest_row_and_on_postgresql_the_count(session_factory):
    add(session_factory, trades(0, 4))
    with session_factory() as session:
        repo = TradeRepository(session)
        version = repo.stored_version("acc")
        token, total, last = version
        assert repo.holds("acc", version)
        assert not repo.holds("acc", None)
        assert not repo.holds("acc", ("another database", total, last))
        assert not repo.holds("acc", (token, total, last - 1))
        # a row committed below the newest (PostgreSQL commits out of id order) shows only in
        # the count there; on SQLite a new row's id is always the newest
        postgres = session.connection().dialect.name == "postgresql"
        assert repo.holds("acc", (token, total - 1, last)) is not postgres
    add(session_factory, trades(4, 1))
    with session_factory() as session:
        assert not TradeRepository(session).holds("acc", version)
