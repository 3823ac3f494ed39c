"""The replay's block path (trading.tape, TradingEngine.on_block) equals the bar-by-bar live
path: the same trades, orders, fills, positions, account, signals and alerts whether bars come
one at a time through the incremental strategy (``block_bars=None``), in blocks of one bar, or
in blocks of many (quiet runs taken at once)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from market.candles import iter_candles
from market.sample_data import load_sample
from strategies.registry import create
from trading.config import DeploymentSettings
from trading.engine import BarOutcome
from trading.replay import replay
from trading.tape import SignalTape

COSTS = {"commission_pct": 0.001, "commission_fixed": 1.0, "slippage_bps": 2.0, "spread_bps": 3.0}
CASES = [
    pytest.param("sma_crossover", "both", {}, None, id="sma-both-plain"),
    pytest.param("ema_crossover", "long", {**COSTS, "stop_loss_pct": 0.03}, None, id="ema-stop"),
    pytest.param(
        "rsi_reversion", "both",
        {**COSTS, "sizing": "fraction", "size": 0.5, "trailing_stop_pct": 0.04}, None,
        id="rsi-trailing",
    ),
    pytest.param(
        "bollinger_reversion", "short", {**COSTS, "take_profit_pct": 0.05}, None, id="bb-target"
    ),
    pytest.param(
        "macd_cross", "both",
        {"sizing": "half_kelly", "commission_pct": 0.0005, "kelly_min_trades": 3}, None,
        id="macd-kelly",
    ),
    pytest.param("donchian_breakout", "both", COSTS, 0.2, id="donchian-halt"),
]  # fmt: skip


def run(
    candles: pd.DataFrame, name: str, direction: str, values: dict, halt: float | None, block
) -> tuple[Any, list[BarOutcome]]:
    outcomes: list[BarOutcome] = []
    result = replay(
        candles,
        create(name, direction=direction),
        DeploymentSettings.parse(values),
        10_000.0,
        symbol="SP500",
        max_drawdown_pct=halt,
        sink=outcomes.append,
        block_bars=block,
    )
    return result, outcomes


def summary(result, outcomes: list[BarOutcome]) -> dict[str, Any]:
    broker = result.engine.brokers[1]
    d = result.engine.deployed[1]
    return {
        "orders": [
            (o.client_order_id, o.status, o.quantity, o.filled_quantity, o.average_price, o.fees,
             o.reject_reason, o.extra.get("reason"), o.anchor)
            for o in broker.orders.values()
        ],
        "fills": [
            (f.fill_id, f.price, f.quantity, f.fee, f.realised_pnl, f.time, f.trigger, f.bar_ts)
            for o in outcomes for fills in o.fills.values() for f in fills
        ],
        "positions": {s: vars(p) for s, p in broker.positions.items()},
        "account": vars(broker.account),
        "policy": (d.policy.state(), d.policy.bar, d.policy.bar_ts, d.last_bar_ts),
        "alerts": [(a.kind, a.message, a.value) for o in outcomes for a in o.alerts],
        "stopped": [x.id for o in outcomes for x in o.stopped],
    }  # fmt: skip


def signals(outcomes: list[BarOutcome]) -> list[tuple]:
    return [
        (s.timestamp, s.signal_type, s.price, s.confidence, dict(s.metadata))
        for o in outcomes
        for _, s in o.signals
    ]


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_sample("SP500").iloc[-2500:]


@pytest.mark.parametrize(("name", "direction", "values", "halt"), CASES)
def test_blocks_of_any_size_trade_as_bar_by_bar(candles, name, direction, values, halt):
    by_bar, by_bar_outcomes = run(candles, name, direction, values, halt, None)
    assert len(by_bar.trades) >= 3, "a case without trades proves nothing"
    expected = summary(by_bar, by_bar_outcomes)
    if halt is not None:
        assert by_bar.engine.brokers[1].account.status == "halted"
    reference_signals = signals(by_bar_outcomes)
    for block in (1, 7, 5_000):
        result, outcomes = run(candles, name, direction, values, halt, block)
        pd.testing.assert_frame_equal(result.trades, by_bar.trades, check_exact=True)
        assert summary(result, outcomes) == expected, block
        got = signals(outcomes)
        # the same signals; their values come from the vectorized indicators (1e-12 apart)
        assert [s[:3] for s in got] == [s[:3] for s in reference_signals]
        for a, b in zip(got, reference_signals, strict=True):
            assert math.isclose(a[3], b[3], rel_tol=1e-9, abs_tol=1e-12)
            assert a[4].keys() == b[4].keys()
            assert all(math.isclose(a[4][k], b[4][k], rel_tol=1e-9) for k in a[4])
        if block > 1:  # the quiet runs were taken at once
            assert len(outcomes) < len(candles) // 2


def test_a_tape_gives_the_live_strategys_signals(candles):
    strategy = create("ema_crossover", direction="both")
    tape = SignalTape.of(strategy, candles, "SP500", "1d")
    live = strategy.live(candles.iloc[:0], "SP500", "1d")
    states = {
        r.key: r.spec.open(candles.iloc[:0], r.param_dict)[0]
        for r in strategy.required_indicators()
    }
    events = []
    for k, candle in enumerate(iter_candles(candles)):
        fired = live.on_candle(candle, {key: s.update(candle) for key, s in states.items()})
        if fired:
            events.append(k)
        assert [s.signal_type for s in tape.signals(k, candle)] == [s.signal_type for s in fired]
    assert events == tape.events.tolist()
    assert tape.next_event(0) == events[0]
    assert tape.next_event(len(candles)) == len(candles)
    assert np.all(np.diff(tape.events) > 0)
