"""The executions layer: an account's fills as their own markers, on the bar they filled on."""

from __future__ import annotations

import pandas as pd
import pytest

from components.charts.candles import x_labels
from components.charts.layers import (
    CandlesLayer,
    ChartData,
    ExecutionLayer,
    StrategySignalLayer,
    StrategyView,
    compose,
    compose_delta,
    empty_executions,
    make_layer,
)
from components.charts.layers.signals import marker_symbol
from components.charts.theme import DARK, LIGHT
from market.sample_data import load_sample
from market.timeframes import Timeframe
from strategies.registry import create

DAY = Timeframe.parse("1d")
WEEK = Timeframe.parse("1w")


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_sample("SP500").loc["2018-01":"2018-06"]


def fills_on(candles: pd.DataFrame) -> pd.DataFrame:
    """A buy on the 5th bar, a sale on the 20th (a stop-loss), a buy after the last bar."""
    bars = [candles.index[4], candles.index[19], candles.index[-1] + pd.Timedelta(days=3)]
    return pd.DataFrame(
        {
            "bar": bars,
            "side": ["buy", "sell", "buy"],
            "price": [2500.5, 2700.25, 2900.0],
            "quantity": [2.0, 2.0, 1.0],
            "fee": [1.25, 1.5, 0.0],
            "purpose": ["entry", "stop_loss", "entry"],
            "order": ["d1-1-entry", "d1-2-stop_loss", "d1-3-entry"],
        }
    )


def data_of(candles: pd.DataFrame, fills: pd.DataFrame, tf: Timeframe = DAY, **extra) -> ChartData:
    return ChartData("SP500", tf, candles, None, executions={"demo": fills}, **extra)


def test_fills_are_drawn_at_their_price_on_their_bar_with_their_details(candles):
    chart = compose(data_of(candles, fills_on(candles)), [CandlesLayer(), ExecutionLayer()])
    buy = chart.figure.data[chart.trace_index["exec:demo:buy"]]
    sell = chart.figure.data[chart.trace_index["exec:demo:sell"]]
    # the buy after the chart's last bar is not drawn: it would add an x category
    assert list(buy.x) == x_labels(candles.index[[4]], DAY)
    assert list(buy.y) == [2500.5]
    assert list(sell.x) == x_labels(candles.index[[19]], DAY)
    assert list(sell.customdata[0]) == ["sell", 2700.25, 2.0, 1.5, "stop_loss", "d1-2-stop_loss"]
    assert (buy.marker.symbol, sell.marker.symbol) == ("triangle-up", "triangle-down")
    assert "fee" in buy.hovertemplate
    assert "order" in buy.hovertemplate


def test_execution_markers_are_not_strategy_markers(candles):
    strategy = create("ema_crossover", direction="both")
    result = strategy.generate(candles, symbol="SP500", timeframe="1d")
    data = data_of(candles, fills_on(candles), strategies={"ema": StrategyView("ema", 0, result)})
    chart = compose(data, [CandlesLayer(), StrategySignalLayer(), ExecutionLayer()], LIGHT)
    buy = chart.figure.data[chart.trace_index["exec:demo:buy"]]
    entry = chart.figure.data[chart.trace_index["sig:ema:entry_long"]]
    assert entry.marker.symbol == marker_symbol(DARK.marker_symbols[0], "entry_long")
    assert buy.marker.color == LIGHT.execution_buy != entry.marker.color
    assert buy.marker.line.color == LIGHT.execution_line != entry.marker.line.color
    assert buy.legendgroup == "exec:demo"
    assert buy.showlegend


def test_a_fill_on_a_daily_bar_sits_on_its_week(candles):
    weekly = candles.resample("W-MON", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    weekly.index.name = "ts"
    chart = compose(data_of(weekly, fills_on(candles), WEEK), [ExecutionLayer()])
    buy = chart.figure.data[chart.trace_index["exec:demo:buy"]]
    week = WEEK.bucket_start_ms(int(candles.index[4].value // 1_000_000))
    assert list(buy.x) == x_labels(
        pd.DatetimeIndex([pd.Timestamp(week, unit="ms", tz="UTC")]), WEEK
    )


def test_a_tick_replaces_the_traces_with_every_fill_so_a_late_one_shows(candles):
    fills = fills_on(candles)
    layers = [CandlesLayer(), ExecutionLayer()]
    chart = compose(data_of(candles, fills.iloc[:1]), layers)
    since = candles.index[-2]
    tick = data_of(candles.iloc[-1:], fills)  # a tick: the new bar only, every fill
    delta = compose_delta(tick, layers, since, chart.trace_index)
    assert delta["e"] == []
    replaced = dict(delta["r"])
    # the tick's frame holds bars up to the newest: both stored fills on earlier bars show
    assert replaced[chart.trace_index["exec:demo:sell"]]["y"] == [2700.25]
    assert replaced[chart.trace_index["exec:demo:buy"]]["y"] == [2500.5]


def test_no_fills_keep_empty_traces_and_the_kind_is_registered(candles):
    chart = compose(data_of(candles, empty_executions()), [make_layer("executions")])
    assert {chart.figure.data[chart.trace_index[f"exec:demo:{s}"]].x for s in ("buy", "sell")} in (
        {None},
        {()},
    )
    no_account = compose(ChartData("SP500", DAY, candles), [ExecutionLayer()])
    assert not [k for k in no_account.trace_index if k.startswith("exec:")]
