"""The correctness oracle of paper trading: the live code path (engine, deployment policy,
paper broker) replaying the bundled series trades exactly as the backtest engine.

Entry and exit times and bars and the exit reasons are equal; prices, sizes, PnL,
commission, return, MAE and MFE agree within 1e-9 (the two add the same numbers in another
order). Every built-in strategy runs in every direction; the settings rotate so that each
direction meets each sizing, each kind of stop and the costs (a full cross product would
take minutes: one replay of 5,000 bars takes about a second). The drawdown halt runs once
per strategy. One test runs the stored replay (services.paper) on SQLite and PostgreSQL and
checks what it stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from analytics.backtest import run_backtest
from database.repositories.candles import CandleRepository
from database.repositories.trading import TradingRepository
from market.sample_data import load_sample
from services.paper import PaperTrading, ReplayRequest
from strategies.registry import all_strategies, create
from trading.config import DeploymentSettings
from trading.replay import replay

CASH = 10_000.0
EXACT = ("entry_time", "exit_time", "entry_bar", "exit_bar")
CLOSE = ("size", "entry_price", "exit_price", "pnl", "commission", "return_pct", "mae", "mfe")
COSTS = {"commission_pct": 0.001, "commission_fixed": 1.0, "slippage_bps": 2.0, "spread_bps": 3.0}
# half-Kelly sizes from past returns; with a fixed commission close to the position's value the
# units are a difference of near-equal numbers, which turns rounding into 1e-8: no fixed fee
KELLY_COSTS = {"commission_pct": 0.0005, "slippage_bps": 1.0, "spread_bps": 2.0}
VARIANTS: list[dict[str, Any]] = [
    {},  # all in, no costs, no stops
    {**COSTS, "stop_loss_pct": 0.03, "take_profit_pct": 0.06},
    {**COSTS, "sizing": "fraction", "size": 0.5, "trailing_stop_pct": 0.04},
    {
        **COSTS,
        "sizing": "quantity",
        "size": 2.0,
        "stop_loss_pct": 0.02,
        "trailing_stop_pct": 0.03,
        "take_profit_pct": 0.05,
    },
    {**KELLY_COSTS, "sizing": "half_kelly", "stop_loss_pct": 0.03, "kelly_min_trades": 5},
    {
        **KELLY_COSTS,
        "sizing": "half_kelly",
        "size": 0.2,
        "trailing_stop_pct": 0.05,
        "take_profit_pct": 0.08,
        "kelly_window": 10,
        "kelly_min_trades": 3,
    },
]
STRATEGIES = [cls.name for cls in all_strategies()]
DIRECTIONS = ("long", "short", "both")
# each strategy x direction once; variant (s + d) % 6 gives each variant every direction
CASES = [
    pytest.param(name, direction, VARIANTS[v], id=f"{name}-{direction}-v{v}")
    for s, name in enumerate(STRATEGIES)
    for d, direction in enumerate(DIRECTIONS)
    for v in [(s + d) % len(VARIANTS)]
]
HALTS = [
    pytest.param(name, ("NASDAQ", "SP500")[s % 2], VARIANTS[(s % 3) + 1], id=f"{name}-halt")
    for s, name in enumerate(STRATEGIES)
]


@pytest.fixture(scope="module")
def series() -> dict[str, pd.DataFrame]:
    return {name: load_sample(name) for name in ("SP500", "NASDAQ")}


def backtest_trades(
    candles: pd.DataFrame,
    name: str,
    direction: str,
    settings: DeploymentSettings,
    halt: float | None = None,
):
    strategy = create(name, direction=direction)
    backtest = dataclasses.replace(settings.backtest(CASH, direction), max_drawdown_halt_pct=halt)
    return run_backtest(candles, strategy.generate(candles), backtest)


def assert_same_trades(live: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(live) == len(expected), (len(live), len(expected))
    for column in EXACT:
        np.testing.assert_array_equal(live[column].to_numpy(), expected[column].to_numpy(), column)
    np.testing.assert_array_equal(
        live["exit_reason"].astype(str).to_numpy(), expected["exit_reason"].astype(str).to_numpy()
    )
    np.testing.assert_array_equal(live["side"].astype(str), expected["side"].astype(str))
    for column in CLOSE:
        np.testing.assert_allclose(
            live[column].to_numpy(np.float64),
            expected[column].to_numpy(np.float64),
            rtol=1e-9,
            atol=1e-9,
            err_msg=column,
        )


@pytest.mark.parametrize(("name", "direction", "values"), CASES)
def test_replay_trades_equal_the_backtest(series, name, direction, values):
    candles = series["SP500"]
    settings = DeploymentSettings.parse(values)
    expected = backtest_trades(candles, name, direction, settings).trades
    live = replay(candles, create(name, direction=direction), settings, CASH, symbol="SP500")
    assert len(expected) >= 3, "a case without trades proves nothing"
    assert_same_trades(live.trades, expected)
    reasons = set(expected["exit_reason"].astype(str))
    if values.get("stop_loss_pct") or values.get("trailing_stop_pct"):
        assert reasons & {"stop_loss", "trailing_stop"}, f"no stop ever fired: {reasons}"
    if values.get("sizing") == "half_kelly":
        sizes = (expected["size"].abs() * expected["entry_price"]).round(6)
        assert sizes.nunique() > 2, "half-Kelly never changed the size"


@pytest.mark.parametrize(("name", "symbol", "values"), HALTS)
def test_the_account_drawdown_halt_equals_the_backtests(series, name, symbol, values):
    candles = series[symbol]
    settings = DeploymentSettings.parse(values)
    full = backtest_trades(candles, name, "both", settings)
    # a limit the strategy's drawdown passes in its first half: the halt cuts the history short
    equity = full.equity
    drawdown = 1 - equity / equity.cummax()
    limit = float(drawdown.iloc[: len(equity) // 2].max()) * 0.8
    result = backtest_trades(candles, name, "both", settings, halt=limit)
    assert result.drawdown_halt is not None
    live = replay(
        candles,
        create(name, direction="both"),
        settings,
        CASH,
        symbol=symbol,
        max_drawdown_pct=limit,
    )
    assert_same_trades(live.trades, result.trades)
    assert len(result.trades) < len(full.trades)
    broker = live.engine.brokers[1]
    assert broker.account.status == "halted"
    halted_at = pd.Timestamp(result.drawdown_halt).isoformat()
    assert halted_at in (broker.account.halt_reason or "")


# -- through the database ----------------------------------------------------------------
def _seed(session_factory: sessionmaker[Session], symbol: str, candles: pd.DataFrame) -> None:
    with session_factory.begin() as session:
        CandleRepository(session).upsert(symbol, "1d", candles)


def test_the_stored_replay_equals_the_backtest_and_its_records_add_up(session_factory, series):
    candles = series["NASDAQ"].iloc[-1500:]
    _seed(session_factory, "NASDAQ", candles)
    values = {**COSTS, "stop_loss_pct": 0.03, "trailing_stop_pct": 0.05, "take_profit_pct": 0.06}
    paper = PaperTrading(session_factory, batch_bars=200)
    outcome = paper.replay(
        ReplayRequest(
            "NASDAQ", "1d", "sma_crossover", {"fast": 10, "slow": 30}, "acc-1", CASH, values
        )
    )
    settings = DeploymentSettings.parse(values)
    strategy = create("sma_crossover", fast=10, slow=30)
    backtest = settings.backtest(CASH, strategy.direction)
    expected = run_backtest(candles, strategy.generate(candles), backtest).trades
    assert len(expected) >= 10
    assert_same_trades(outcome.trades, expected)
    assert outcome.resumed_from is None
    assert outcome.bars == len(candles)

    with session_factory() as session:
        repo = TradingRepository(session)
        account = repo.account("acc-1")
        assert account is not None
        orders = repo.orders(account.id)
        fills = repo.fills(account.id)
        positions = repo.positions(account.id)
        deployment = repo.deployment("replay:acc-1")
    assert deployment is not None
    assert deployment.status == "stopped"
    assert len({o.client_order_id for o in orders}) == len(orders) == outcome.orders
    assert len(fills) == outcome.fills
    filled: dict[str, float] = defaultdict(float)
    for fill in fills:
        filled[fill.client_order_id] += fill.quantity
    for order in orders:
        assert math.isclose(filled[order.client_order_id], order.filled_quantity, rel_tol=1e-12)
        assert order.status not in ("new", "partially_filled"), order.client_order_id
    assert [p.quantity for p in positions] == [0.0]
    pnl = float(expected["pnl"].sum())
    assert account.cash == pytest.approx(CASH + pnl, rel=1e-12, abs=1e-9)
    assert outcome.equity == pytest.approx(CASH + pnl, rel=1e-12, abs=1e-9)
    # each trade's exit order carries its round trip: the stored trades are the backtest's
    stored = [o.extra["round_trip"] for o in orders if "round_trip" in o.extra]
    assert len(stored) == len(expected)
    reasons = {o.purpose for o in orders}
    assert {"entry", "exit", "protect"} <= reasons
    # every fill is an executed trade through the tracker: a stop's fill is labelled stop_loss
    from database.repositories.trades import TradeRepository

    with session_factory() as session:
        trades = TradeRepository(session).list(account_id="acc-1")
    assert len(trades) == len(fills)
    stops = [t for t in trades if t.market_context.get("trigger") in ("stop", "trailing_stop")]
    assert stops, "a stop should have fired"
    assert all("stop_loss" in t.labels for t in stops)
    assert sum(t.pnl for t in trades) == pytest.approx(pnl, rel=1e-9)


def test_max_position_caps_a_deployments_entries(series):
    """Paper's own risk limit: 3 units wanted, 1 allowed, trades as the backtest with 1."""
    candles = series["SP500"].iloc[-1500:]
    capped = DeploymentSettings.parse(
        {**COSTS, "sizing": "quantity", "size": 3.0, "max_position": 1.0, "stop_loss_pct": 0.03}
    )
    one = DeploymentSettings.parse(
        {**COSTS, "sizing": "quantity", "size": 1.0, "stop_loss_pct": 0.03}
    )
    expected = backtest_trades(candles, "ema_crossover", "both", one).trades
    live = replay(candles, create("ema_crossover", direction="both"), capped, CASH)
    assert len(expected) > 5
    assert_same_trades(live.trades, expected)


def test_fills_spread_over_bars_by_the_volume_cap_are_stored_in_sequence(session_factory, series):
    candles = series["NASDAQ"].iloc[-400:]
    _seed(session_factory, "NASDAQ", candles)
    # about 1.9 units of a bar's volume: an entry of ~2-5 units fills over several bars
    values = {**COSTS, "volume_cap": 1e-9}
    paper = PaperTrading(session_factory, batch_bars=1_000)  # one batch: every fill in it
    request = ReplayRequest("NASDAQ", "1d", "ema_crossover", {}, "capped", CASH, values)
    outcome = paper.replay(request)
    assert len(outcome.trades) >= 3
    with session_factory() as session:
        repo = TradingRepository(session)
        account = repo.account("capped")
        assert account is not None
        fills = repo.fills(account.id)
        orders = {o.client_order_id: o for o in repo.orders(account.id)}
    by_order: dict[str, list] = defaultdict(list)
    for fill in fills:
        by_order[fill.client_order_id].append(fill)
    assert max(len(f) for f in by_order.values()) > 1, "no order was filled over several bars"
    for cid, mine in by_order.items():
        assert [f.seq for f in mine] == list(range(1, len(mine) + 1)), cid
        assert [f.fill_id for f in mine] == [f"{cid}#{k}" for k in range(1, len(mine) + 1)]
        assert math.isclose(sum(f.quantity for f in mine), orders[cid].filled_quantity)
        assert sum(f.fee for f in mine) == pytest.approx(orders[cid].fees, rel=1e-12)
