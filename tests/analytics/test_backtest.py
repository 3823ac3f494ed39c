"""Backtest engine: hand-computed scenarios for each feature, edge cases and bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.backtest import (
    TRADE_COLUMNS,
    BacktestInputError,
    BacktestResult,
    BacktestSettings,
    half_kelly,
    run_backtest,
)
from strategies.signals import SIGNAL_COLUMNS

Bar = tuple[float, float, float, float]  # open, high, low, close


def candles(rows: list[Bar] | list[float]) -> pd.DataFrame:
    """A daily candle frame; a bare number is a flat bar (open = high = low = close)."""
    rows = [(r, r, r, r) if isinstance(r, int | float) else r for r in rows]
    index = pd.date_range("2024-01-01", periods=len(rows), freq="D", tz="UTC", name="ts")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index, dtype=float)
    frame["volume"] = 1_000.0
    return frame


def signals(frame: pd.DataFrame, **bars: list[int]) -> pd.DataFrame:
    """``signals(frame, entry_long=[0], exit_long=[2])``: the bars where each column is True."""
    out = pd.DataFrame(False, index=frame.index, columns=list(SIGNAL_COLUMNS))
    for column, where in bars.items():
        out.iloc[where, out.columns.get_loc(column)] = True
    return out


def run(rows: list, settings_: BacktestSettings | None = None, **bars: list[int]) -> BacktestResult:
    frame = candles(rows)
    return run_backtest(frame, signals(frame, **bars), settings_ or BacktestSettings(cash=1_000))


def only_trade(result: BacktestResult) -> pd.Series:
    assert len(result.trades) == 1
    return result.trades.iloc[0]


CLOSE = BacktestSettings(cash=1_000, fill="close")


# -- fills ------------------------------------------------------------------------------------
def test_next_open_fill_enters_and_exits_at_the_following_open() -> None:
    rows = [(10, 10, 10, 10), (11, 12, 10, 11), (12, 13, 11, 12), (13, 14, 12, 13)]
    result = run(rows, entry_long=[0], exit_long=[2])
    trade = only_trade(result)
    units = 1_000 / 11
    assert (trade.entry_bar, trade.exit_bar) == (1, 3)
    assert (trade.entry_price, trade.exit_price) == (11, 13)
    assert trade["size"] == pytest.approx(units)
    assert trade.pnl == pytest.approx(units * 2)
    assert trade.return_pct == pytest.approx(13 / 11 - 1)
    assert trade.exit_reason == "signal"
    assert trade.duration == pd.Timedelta(days=2)
    np.testing.assert_allclose(result.equity, [1_000, 1_000, 1_000 * 12 / 11, 1_000 * 13 / 11])


def test_close_fill_trades_at_the_signal_bar_close() -> None:
    trade = only_trade(run([10, 11, 12, 13], CLOSE, entry_long=[0], exit_long=[2]))
    assert (trade.entry_bar, trade.exit_bar, trade.entry_price, trade.exit_price) == (0, 2, 10, 12)
    assert trade["size"] == pytest.approx(100)
    assert trade.pnl == pytest.approx(200)


def test_signal_on_the_last_bar_does_not_fill_with_next_open() -> None:
    result = run([10, 11, 12], entry_long=[2])
    assert result.trades.empty
    np.testing.assert_array_equal(result.equity, [1_000] * 3)


# -- direction --------------------------------------------------------------------------------
def test_short_trade_profits_when_price_falls() -> None:
    trade = only_trade(run([10, 9, 8, 8], CLOSE, entry_short=[0], exit_short=[2]))
    assert trade.side == "short"
    assert trade["size"] == pytest.approx(-100)
    assert trade.pnl == pytest.approx(200)
    assert trade.return_pct == pytest.approx(0.2)


@pytest.mark.parametrize(("direction", "side"), [("long", "entry_short"), ("short", "entry_long")])
def test_direction_filters_entries(direction: str, side: str) -> None:
    result = run([10, 11, 12], replace(CLOSE, direction=direction), **{side: [0]})
    assert result.trades.empty


def test_both_reverses_on_an_opposite_entry() -> None:
    result = run([10, 11, 12, 13], CLOSE, entry_long=[0], entry_short=[2])
    trades = result.trades
    assert list(trades.side) == ["long", "short"]
    assert list(trades.exit_reason) == ["signal", "end"]
    assert trades["size"].tolist() == pytest.approx([100, -100])  # 1200 equity / 12
    assert trades.pnl.tolist() == pytest.approx([200, -100])
    assert result.equity.iloc[-1] == pytest.approx(1_100)


def test_long_only_still_closes_on_an_opposite_entry() -> None:
    result = run(
        [10, 11, 12, 13], replace(CLOSE, direction="long"), entry_long=[0], entry_short=[2]
    )
    trade = only_trade(result)
    assert (trade.side, trade.exit_bar) == ("long", 2)


# -- sizing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "size"),
    [
        ({"sizing": "fraction", "size": 0.5}, 50.0),
        ({"sizing": "quantity", "size": 7}, 7.0),
        ({"sizing": "all_in", "whole_units": True, "fill": "next_open"}, 90.0),  # 1000 // 11
    ],
)
def test_sizing(changes: dict, size: float) -> None:
    trade = only_trade(run([10, 11, 12, 13], replace(CLOSE, **changes), entry_long=[0]))
    assert trade["size"] == pytest.approx(size)


def test_half_kelly_formula() -> None:
    assert half_kelly([0.10, -0.05, 0.10, -0.05]) == pytest.approx(0.125)  # W .5, R 2
    assert half_kelly([-0.01, -0.02]) == 0.0
    assert half_kelly([0.01, 0.02]) == 0.5


def test_half_kelly_sizing_uses_the_fallback_then_trailing_trades() -> None:
    settings_ = replace(CLOSE, sizing="half_kelly", size=0.2, kelly_window=2, kelly_min_trades=2)
    result = run(
        [10, 11, 10, 9.5, 10, 10],
        settings_,
        entry_long=[0, 2, 4],
        exit_long=[1, 3],
    )
    sizes = result.trades["size"].tolist()
    assert result.trades["return_pct"].tolist()[:2] == pytest.approx([0.1, -0.05])
    assert sizes[0] == pytest.approx(20)  # 0.2 x 1000 / 10
    assert sizes[1] == pytest.approx(0.2 * 1_020 / 10)
    assert sizes[2] == pytest.approx(0.125 * (1_020 - 0.2 * 1_020 / 10 * 0.5) / 10)


def test_half_kelly_takes_no_trade_after_only_losses() -> None:
    settings_ = replace(CLOSE, sizing="half_kelly", size=0.2, kelly_window=2, kelly_min_trades=2)
    result = run([10, 9, 10, 9, 10, 11], settings_, entry_long=[0, 2, 4], exit_long=[1, 3])
    assert len(result.trades) == 2


# -- costs ------------------------------------------------------------------------------------
def test_relative_and_fixed_commission() -> None:
    settings_ = replace(CLOSE, commission_pct=0.01, commission_fixed=1.0)
    trade = only_trade(run([10, 11, 12], settings_, entry_long=[0], exit_long=[2]))
    units = (1_000 - 1) / (10 * 1.01)  # all-in: price and commission together spend the cash
    commission = (1 + units * 10 * 0.01) + (1 + units * 12 * 0.01)
    assert trade["size"] == pytest.approx(units)
    assert trade.commission == pytest.approx(commission)
    assert trade.pnl == pytest.approx(units * 2 - commission)
    assert trade.return_pct == pytest.approx(0.2 - commission / (units * 10))


@pytest.mark.parametrize(
    "changes",
    [{"slippage_bps": 100.0}, {"spread_bps": 200.0}, {"slippage_bps": 50.0, "spread_bps": 100.0}],
    ids=["slippage", "spread", "both"],
)
def test_slippage_and_half_spread_move_each_fill_against_us(changes: dict) -> None:
    trade = only_trade(run([10, 11, 12], replace(CLOSE, **changes), entry_long=[0], exit_long=[2]))
    assert trade.entry_price == pytest.approx(10.1)
    assert trade.exit_price == pytest.approx(11.88)
    assert trade["size"] == pytest.approx(1_000 / 10.1)
    short = only_trade(
        run([10, 11, 12], replace(CLOSE, **changes), entry_short=[0], exit_short=[2])
    )
    assert (short.entry_price, short.exit_price) == pytest.approx((9.9, 12.12))


# -- stops inside the bar ---------------------------------------------------------------------
def test_stop_loss_fills_at_the_stop_inside_the_bar() -> None:
    rows = [100, (100, 101, 94, 96), 96]
    trade = only_trade(run(rows, replace(CLOSE, stop_loss_pct=0.05), entry_long=[0]))
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (1, 95, "stop_loss")


def test_stop_loss_gapped_through_fills_at_the_open() -> None:
    rows = [100, (90, 92, 88, 91), 91]
    trade = only_trade(run(rows, replace(CLOSE, stop_loss_pct=0.05), entry_long=[0]))
    assert (trade.exit_price, trade.exit_reason) == (90, "stop_loss")


def test_take_profit() -> None:
    rows = [100, (100, 111, 99, 105), 105]
    trade = only_trade(run(rows, replace(CLOSE, take_profit_pct=0.1), entry_long=[0]))
    assert (trade.exit_bar, trade.exit_reason) == (1, "take_profit")
    assert trade.exit_price == pytest.approx(110)


def test_stop_and_target_in_one_bar_the_stop_counts() -> None:
    rows = [100, (100, 111, 94, 105), 105]
    settings_ = replace(CLOSE, stop_loss_pct=0.05, take_profit_pct=0.1)
    trade = only_trade(run(rows, settings_, entry_long=[0]))
    assert (trade.exit_price, trade.exit_reason) == (95, "stop_loss")
    short = only_trade(run(rows, settings_, entry_short=[0]))
    assert (short.exit_price, short.exit_reason) == (105, "stop_loss")


def test_stop_checked_on_the_entry_bar_with_next_open() -> None:
    rows = [100, (100, 101, 94, 96), 96]
    settings_ = BacktestSettings(cash=1_000, stop_loss_pct=0.05)
    trade = only_trade(run(rows, settings_, entry_long=[0]))
    assert (trade.entry_bar, trade.exit_bar, trade.exit_price) == (1, 1, 95)


def test_trailing_stop_trails_the_high_from_the_next_bar() -> None:
    # bar 1's high (120) moves the stop only for bar 2: 120 x 0.9 = 108
    rows = [100, (100, 120, 100, 118), (115, 116, 107, 110), 110]
    trade = only_trade(run(rows, replace(CLOSE, trailing_stop_pct=0.1), entry_long=[0]))
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (2, 108, "trailing_stop")
    rows = [100, (100, 100, 80, 82), (85, 93, 84, 90), 90]
    short = only_trade(run(rows, replace(CLOSE, trailing_stop_pct=0.1), entry_short=[0]))
    assert (short.exit_bar, short.exit_price, short.exit_reason) == (2, 88, "trailing_stop")


def test_stop_exit_pays_slippage() -> None:
    rows = [100, (100, 101, 94, 96), 96]
    settings_ = replace(CLOSE, stop_loss_pct=0.05, slippage_bps=100.0)
    trade = only_trade(run(rows, settings_, entry_long=[0]))
    assert trade.entry_price == pytest.approx(101)
    assert trade.exit_price == pytest.approx(101 * 0.95 * 0.99)


# -- drawdown halt ----------------------------------------------------------------------------
def test_drawdown_halt_closes_and_stops_trading() -> None:
    rows = [100, 90, 75, 80, 90, 100]
    settings_ = replace(CLOSE, max_drawdown_halt_pct=0.2)
    result = run(rows, settings_, entry_long=[0, 4], exit_long=[3])
    trade = only_trade(result)
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (2, 75, "drawdown_halt")
    assert result.drawdown_halt == result.equity.index[2]
    np.testing.assert_allclose(result.equity, [1_000, 900, 750, 750, 750, 750])


def test_drawdown_halt_with_next_open_exits_at_the_following_open() -> None:
    rows = [100, 100, (90, 90, 75, 75), (78, 80, 77, 80), 90]
    result = run(rows, BacktestSettings(cash=1_000, max_drawdown_halt_pct=0.2), entry_long=[0])
    trade = only_trade(result)
    assert (trade.exit_bar, trade.exit_price, trade.exit_reason) == (3, 78, "drawdown_halt")
    assert result.drawdown_halt == result.equity.index[2]
    assert result.equity.iloc[-1] == pytest.approx(780)


def test_no_halt_records_none() -> None:
    result = run([100, 95, 100], replace(CLOSE, max_drawdown_halt_pct=0.2), entry_long=[0])
    assert result.drawdown_halt is None


# -- excursions, benchmark --------------------------------------------------------------------
def test_mae_and_mfe_from_bar_lows_and_highs() -> None:
    rows = [100, (100, 110, 95, 100), (100, 105, 92, 100), 100]
    long = only_trade(run(rows, CLOSE, entry_long=[0], exit_long=[2]))
    assert (long.mae, long.mfe) == pytest.approx((-0.08, 0.10))
    short = only_trade(run(rows, CLOSE, entry_short=[0], exit_short=[2]))
    assert (short.mae, short.mfe) == pytest.approx((-0.10, 0.08))


def test_benchmark_is_buy_and_hold_of_the_same_cash() -> None:
    result = run([10, 12, 9, 15], CLOSE)
    np.testing.assert_allclose(result.benchmark, [1_000, 1_200, 900, 1_500])
    assert result.benchmark.index.equals(result.equity.index)


# -- edge cases -------------------------------------------------------------------------------
def test_no_signals_no_trades() -> None:
    result = run([10, 11, 12])
    assert result.trades.empty
    assert list(result.trades.columns) == list(TRADE_COLUMNS)
    np.testing.assert_array_equal(result.equity, [1_000] * 3)
    assert result.drawdown_halt is None


def test_one_bar() -> None:
    assert run([10], entry_long=[0]).trades.empty
    trade = only_trade(run([10], CLOSE, entry_long=[0]))
    assert (trade.entry_bar, trade.exit_bar, trade.pnl, trade.exit_reason) == (0, 0, 0, "end")


def test_open_trade_stays_open_without_close_at_end() -> None:
    result = run([10, 11, 12], replace(CLOSE, close_at_end=False), entry_long=[0])
    assert result.trades.empty
    assert result.equity.iloc[-1] == pytest.approx(1_200)


def test_trade_frame_types() -> None:
    trades = run([10, 11, 12], CLOSE, entry_long=[0]).trades
    assert trades["entry_bar"].dtype == np.int64
    assert trades["duration"].dtype.kind == "m"
    assert str(trades["entry_time"].dt.tz) == "UTC"


# -- bad input --------------------------------------------------------------------------------
def test_nan_price_is_refused_with_its_place() -> None:
    frame = candles([10, 11, 12])
    frame.iloc[1, frame.columns.get_loc("close")] = np.nan
    with pytest.raises(BacktestInputError, match=r"close=nan at 2024-01-02"):
        run_backtest(frame, signals(frame), CLOSE)


def test_mismatched_index_is_refused() -> None:
    frame = candles([10, 11, 12])
    with pytest.raises(BacktestInputError, match="does not match the candles index"):
        run_backtest(frame, signals(frame).iloc[1:], CLOSE)
    shifted = signals(frame).set_axis(frame.index + pd.Timedelta(hours=1))
    with pytest.raises(BacktestInputError, match="does not match"):
        run_backtest(frame, shifted, CLOSE)


def test_missing_signal_columns_are_named() -> None:
    frame = candles([10, 11])
    with pytest.raises(BacktestInputError, match="exit_short"):
        run_backtest(frame, signals(frame).drop(columns="exit_short"), CLOSE)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cash": -1}, r"cash=-1 is invalid"),
        ({"cash": 0}, r"cash=0 is invalid"),
        ({"commission_pct": 0.5}, r"commission_pct=0.5 is invalid: expected a fraction"),
        ({"sizing": "fraction"}, r"size=None is invalid"),
        ({"sizing": "quantity", "size": -3}, r"size=-3 is invalid"),
        ({"fill": "open"}, r"fill='open' is invalid"),
        ({"stop_loss_pct": 1.5}, r"stop_loss_pct=1.5 is invalid"),
        ({"compat": "backtesting.py", "stop_loss_pct": 0.05}, r"does not support stop_loss_pct"),
    ],
)
def test_bad_settings(changes: dict, message: str) -> None:
    with pytest.raises(BacktestInputError, match=message):
        BacktestSettings(**changes)


# -- invariants -------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(st.floats(50, 150), min_size=2, max_size=40),
    marks=st.lists(st.integers(0, 4), min_size=40, max_size=40),
    fill=st.sampled_from(["next_open", "close"]),
    costs=st.booleans(),
    stops=st.booleans(),
)
def test_final_equity_is_cash_plus_trade_pnl(
    closes: list[float], marks: list[int], fill: str, costs: bool, stops: bool
) -> None:
    rows = [(c * 0.99, c * 1.02, c * 0.97, c) for c in closes]
    frame = candles(rows)
    columns = ["", *SIGNAL_COLUMNS]
    bars: dict[str, list[int]] = {}
    for i, mark in enumerate(marks[: len(rows)]):
        if mark:
            bars.setdefault(columns[mark], []).append(i)
    settings_ = BacktestSettings(
        cash=1_000,
        fill=fill,  # type: ignore[arg-type]
        commission_pct=0.001 if costs else 0.0,
        commission_fixed=0.5 if costs else 0.0,
        slippage_bps=5.0 if costs else 0.0,
        spread_bps=4.0 if costs else 0.0,
        stop_loss_pct=0.02 if stops else None,
        take_profit_pct=0.03 if stops else None,
        trailing_stop_pct=0.025 if stops else None,
    )
    result = run_backtest(frame, signals(frame, **bars), settings_)
    trades = result.trades
    assert result.equity.iloc[-1] == pytest.approx(1_000 + trades["pnl"].sum())
    assert (trades["exit_bar"] >= trades["entry_bar"]).all()
    assert (trades["exit_bar"].to_numpy()[:-1] <= trades["entry_bar"].to_numpy()[1:]).all()
    assert (trades["mae"] <= 0).all()
    assert (trades["mfe"] >= 0).all()
