"""cli/json_output.py: a frame's rows built column by column equal each value converted on its
own (the command's JSON as it was), on every dtype a trade list or a metric set holds."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analytics.backtest import BacktestSettings, run_backtest
from cli.json_output import _durations, _timestamps, column_values, dumps, jsonable, records
from market.sample_data import generate_random_walk
from strategies.registry import create


def one_by_one(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The way the command built its trades before: to_dict, then each value on its own."""
    return [{k: jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_values_as_json_wants_them():
    stamp = pd.Timestamp("2020-01-01 02:31", tz="UTC")
    assert jsonable(stamp) == "2020-01-01T02:31:00+00:00"
    assert jsonable(pd.Timedelta(minutes=8)) == "0 days 00:08:00"
    assert jsonable(pd.NaT) is None
    assert [jsonable(v) for v in (np.nan, np.inf, -np.inf)] == [None, None, None]
    assert jsonable(np.float32(0.5)) == 0.5
    assert type(jsonable(np.float32(0.5))) is float
    assert jsonable(np.int64(3)) == 3
    assert type(jsonable(np.int64(3))) is int
    assert jsonable(np.bool_(True)) is True
    assert jsonable("long") == "long"


@pytest.mark.parametrize(
    ("values", "fast"),
    [
        (pd.Series(pd.date_range("2020-01-01", periods=4, freq="min", tz="UTC")), True),
        (pd.Series(pd.date_range("2020-01-01", periods=4, freq="min")), True),  # naive
        (
            pd.Series(
                pd.to_datetime(["2020-01-01 00:00:00.5", "2021-06-30 23:59:00.000"], utc=True)
            ),
            0,
        ),
        (pd.Series(pd.to_datetime(["2020-01-01", None], utc=True)), False),  # NaT
        (pd.Series(pd.date_range("2020-03-29", periods=3, freq="h", tz="Europe/Berlin")), 0),
        (pd.Series(pd.to_timedelta(["8min", "1 days 02:00:00", "0s", "400 days"])), True),
        (pd.Series(pd.to_timedelta(["-3min", "1min"])), False),  # negative
        (pd.Series(pd.to_timedelta(["1.5s", "1min"])), False),  # fractional
        (pd.Series(pd.to_timedelta(["1min", None])), False),  # NaT
        (pd.Series([1.5, np.nan, np.inf, -np.inf, -0.0, 1e-300]), True),
        (pd.Series([1, 2, -3], dtype="int64"), True),
        (pd.Series([1, 2], dtype="int32"), True),
        (pd.Series([True, False]), True),
        (pd.Series(["long", "short", None], dtype=object), True),
    ],
)
def test_each_column_as_each_value_alone(values, fast):
    expected = [jsonable(v) for v in values]
    got = column_values(values)
    if values.dtype.kind in "Mm":  # whole-second UTC stamps and durations take the fast path
        vectorised = _timestamps if values.dtype.kind == "M" else _durations
        assert (vectorised(values) is not None) == bool(fast)
    assert got == expected
    for a, b in zip(got, expected, strict=True):
        assert type(a) is type(b)  # 1 is not 1.0, "x" is not None
    assert [math.copysign(1, v) for v in got if isinstance(v, float) and v == 0] == [
        math.copysign(1, v) for v in expected if isinstance(v, float) and v == 0
    ]


def test_a_real_trade_list_and_its_json_text():
    candles = generate_random_walk("T", "1m", "2020-01-01", 20_000, seed=3)
    signals = create("sma_crossover", fast=10, slow=30, direction="both").generate(candles)
    trades = run_backtest(candles, signals, BacktestSettings(compat="backtesting.py")).trades
    assert len(trades) > 500
    assert {"entry_time", "duration", "size", "entry_bar", "side"} <= set(trades.columns)
    built = records(trades)
    assert built == one_by_one(trades)
    document = {"Sharpe Ratio": float("nan"), "# Trades": np.int64(len(trades)), "trades": built}
    text = dumps({k: jsonable(v) if k != "trades" else v for k, v in document.items()})
    assert json.loads(text) == json.loads(
        json.dumps({"Sharpe Ratio": None, "# Trades": len(trades), "trades": one_by_one(trades)})
    )
    assert text.startswith('{\n  "Sharpe Ratio": null,\n  "# Trades": ')


def test_an_empty_trade_list():
    assert records(pd.DataFrame({"a": pd.Series([], dtype=float)})) == []
