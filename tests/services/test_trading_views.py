"""TradingViews: the Trading page's read models over stored paper rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from database.repositories.trading import FillRow, OrderRow, PositionRow, TradingRepository
from services.chart_layers import execution_frame
from services.trading_views import TradingViews

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def _order(cid: str, status: str, deployment_id: int | None, **extra) -> OrderRow:
    values = {
        "client_order_id": cid, "symbol": "SP500", "side": "buy", "order_type": "market",
        "time_in_force": "GTC", "status": status, "purpose": "entry", "arrival_time": T0,
        "updated_at": T0, "deployment_id": deployment_id, "quantity": 10.0,
    }  # fmt: skip
    return OrderRow(**{**values, **extra})


def _fill(i: int, cid: str, deployment_id: int | None, price: float) -> FillRow:
    return FillRow(
        f"f{i}", cid, "SP500", "buy", price, 1.0, 0.5, 0.0, T0 + timedelta(minutes=i), i,
        deployment_id,
    )  # fmt: skip


@pytest.fixture
def stored(session_factory):
    """An account of 10,000 that bought 10 SP500 at 100 (last 110), paid 1,000 and 5 of fees,
    with one open limit order, 5 fills and a deployment that failed."""
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        account = repo.create_account("demo", 10_000.0, T0, max_drawdown_pct=0.2)
        other = repo.create_account("other", 500.0, T0)
        d = repo.create_deployment(
            "ema-sp", account.id, "ema_crossover", {"fast": 5, "slow": 20}, "SP500", "1d", {}, T0
        )
        repo.create_deployment("elsewhere", other.id, "sma_crossover", {}, "SP500", "1d", {}, T0)
        repo.update_deployment(d.id, T0, status="error", error="ValueError: boom")
        repo.save_orders(
            account.id,
            [
                _order("o-filled", "filled", d.id, filled_quantity=10.0, average_price=100.0),
                _order("o-open", "new", d.id, order_type="limit", limit_price=50.0,
                       purpose="take_profit"),
            ],
        )  # fmt: skip
        repo.add_fills(account.id, [_fill(i, "o-filled", d.id, 100.0 + i) for i in range(5)])
        repo.save_positions(account.id, [PositionRow("SP500", 10.0, 100.0, 0.0, 110.0, T0)])
        row = repo.account("demo")
        assert row is not None
        repo.save_account(
            type(row)(**{**row.__dict__, "cash": 8_995.0, "fees": 5.0, "peak_equity": 10_500.0}),
            T0,
        )
    return session_factory


def test_account_summary_marks_positions_at_their_last_price(stored):
    snapshot = TradingViews(stored).snapshot("demo")
    assert snapshot is not None
    a = snapshot.account
    assert a.cash == 8_995.0
    assert a.equity == pytest.approx(8_995.0 + 10 * 110.0)
    assert a.unrealised_pnl == pytest.approx(100.0)
    assert a.exposure == pytest.approx(1_100.0)
    assert a.exposure_pct == pytest.approx(1_100.0 / 10_095.0)
    assert a.drawdown_pct == pytest.approx(1 - 10_095.0 / 10_500.0)
    assert a.max_drawdown_pct == 0.2
    assert a.return_pct == pytest.approx(0.0095)
    [p] = snapshot.positions
    assert (p.market_value, p.unrealised_pnl) == (pytest.approx(1_100.0), pytest.approx(100.0))


def test_open_orders_fills_newest_first_bounded_and_deployments(stored):
    snapshot = TradingViews(stored, fills_limit=3).snapshot("demo")
    assert snapshot is not None
    assert [o.client_order_id for o in snapshot.open_orders] == ["o-open"]
    assert snapshot.open_orders[0].deployment == "ema-sp"
    assert [f.price for f in snapshot.fills] == [104.0, 103.0, 102.0]
    assert snapshot.fills[0].deployment == "ema-sp"
    assert [d.name for d in snapshot.deployments] == ["ema-sp"]  # not the other account's
    assert snapshot.deployments[0].params == "fast=5, slow=20"
    assert snapshot.alerts == ("deployment ema-sp error: ValueError: boom",)


def test_fills_carry_their_order_purpose(stored):
    with stored() as session:
        repo = TradingRepository(session)
        account = repo.account("demo")
        assert account is not None
        fills = repo.fills(account.id, symbol="SP500")
        assert {f.purpose for f in fills} == {"entry"}
        assert repo.fills(account.id, symbol="NASDAQ") == []
        assert [f.fill_id for f in repo.fills(account.id, last=2)] == ["f3", "f4"]


def test_a_halted_account_is_an_alert_and_a_new_peak_is_no_drawdown(stored):
    with stored.begin() as session:
        repo = TradingRepository(session)
        row = repo.account("demo")
        assert row is not None
        repo.save_account(
            type(row)(**{**row.__dict__, "status": "halted", "halt_reason": "drawdown 25%",
                         "peak_equity": 9_000.0}),
            T0,
        )  # fmt: skip
    snapshot = TradingViews(stored).snapshot("demo")
    assert snapshot is not None
    assert snapshot.alerts[0] == "account demo halted: drawdown 25%"
    assert snapshot.account.drawdown_pct == 0.0
    assert snapshot.account.peak_equity == pytest.approx(10_095.0)


def test_unknown_account_and_names(session_factory):
    views = TradingViews(session_factory)
    assert views.snapshot("nobody") is None
    assert views.account_names() == []
    with pytest.raises(ValueError, match="fills_limit=0"):
        TradingViews(session_factory, fills_limit=0)


def test_an_account_without_equity_has_no_exposure_share(session_factory):
    with session_factory.begin() as session:
        repo = TradingRepository(session)
        account = repo.create_account("short", 100.0, T0)
        repo.save_positions(account.id, [PositionRow("SP500", -2.0, 50.0, 0.0, 200.0, T0)])
    snapshot = TradingViews(session_factory).snapshot("short")
    assert snapshot is not None
    assert snapshot.account.equity == pytest.approx(-300.0)
    assert math.isnan(snapshot.account.exposure_pct)
    assert snapshot.account.unrealised_pnl == pytest.approx(-300.0)


def test_the_executions_frame_puts_fills_on_their_bar(stored):
    with stored.begin() as session:
        repo = TradingRepository(session)
        account = repo.account("demo")
        assert account is not None
        bar = int(pd.Timestamp("2018-03-01", tz="UTC").value // 1_000_000)
        late = FillRow(
            "f-bar", "o-filled", "SP500", "sell", 99.0, 1.0, 0.1, -1.0, T0 + timedelta(days=9),
            9, None, bar_ts=bar,
        )  # fmt: skip
        repo.add_fills(account.id, [late])
    frame = execution_frame(stored, "demo", "SP500")
    assert list(frame.columns) == ["bar", "side", "price", "quantity", "fee", "purpose", "order"]
    assert len(frame) == 6
    # without a bar the fill's time places it; with one, its bar (years before the time)
    assert frame["bar"].iloc[0] == pd.Timestamp(T0)
    assert frame["bar"].iloc[-1] == pd.Timestamp("2018-03-01", tz="UTC")
    assert (frame["side"].iloc[-1], frame["purpose"].iloc[-1]) == ("sell", "entry")
    later = execution_frame(stored, "demo", "SP500", pd.Timestamp(T0 + timedelta(minutes=3)))
    assert later["price"].tolist() == [103.0, 104.0]
    assert execution_frame(stored, "nobody", "SP500").empty
    assert execution_frame(None, "demo", "SP500").empty
