"""The whole chain against backtesting.py's published SmaCross(10, 30) result on GOOG: our
strategy's signals -> our engine in compatibility mode -> our metrics (backtesting.py preset)
must give every statistic of ``Backtest(GOOG, SmaCross, cash=10_000, finalize_trades=True)``.

backtesting.py is a test-only dependency (AGPL): GOOG is loaded from the installed package.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.backtest import BacktestSettings, run_backtest
from analytics.metrics import compute_metrics
from strategies.registry import create
from tests.analytics.test_compat_backtesting import reference_stats

pytest.importorskip("backtesting")
from backtesting.test import GOOG

pytestmark = pytest.mark.filterwarnings(
    "ignore:DatetimeIndex.dayofweek is deprecated:pandas.errors.Pandas4Warning"
)
PUBLISHED = {  # backtesting.py's test suite (test_compute_stats), as quoted in issue 5
    "# Trades": 66,
    "Return [%]": 414.2299,
    "Sharpe Ratio": 0.58062,
    "Sortino Ratio": 1.08534,
    "Max. Drawdown [%]": -47.9801,
    "Win Rate [%]": 46.9697,
    "Profit Factor": 2.16795,
    "SQN": 1.07662,
    "Kelly Criterion": 0.15187,
}


@pytest.fixture(scope="module")
def ours() -> pd.Series:
    candles = GOOG.rename(columns=str.lower).astype("float64")
    candles.index = candles.index.tz_localize("UTC").rename("ts")
    strategy = create("sma_crossover", fast=10, slow=30, direction="both")
    signals = strategy.generate(candles, symbol="GOOG", timeframe="1d")
    settings = BacktestSettings(cash=10_000, direction="both", compat="backtesting.py")
    result = run_backtest(candles, signals, settings)
    # backtesting.py starts buy-and-hold on the first bar with every indicator defined
    warmup = strategy.warmup - 1  # SMA(30): bar 29
    assert warmup == 29
    equity = result.equity.tz_localize(None)
    return compute_metrics(
        equity, result.trades, benchmark=GOOG, preset="backtesting.py", warmup_bars=warmup
    )


@pytest.fixture(scope="module")
def reference() -> pd.Series:
    return reference_stats()


def test_published_numbers(ours):
    for name, published in PUBLISHED.items():
        assert ours[name] == pytest.approx(published, abs=0.5 * 10 ** -_decimals(published))


def test_every_statistic_backtesting_py_reports(ours, reference):
    compared = 0
    for name, expected in reference.items():
        if name.startswith("_") or name in ("Start", "End"):
            continue
        value = ours[name]
        if isinstance(expected, pd.Timedelta):
            assert value == expected, name
        else:
            assert value == pytest.approx(float(expected), rel=1e-6), name
        compared += 1
    assert compared >= 27


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0
