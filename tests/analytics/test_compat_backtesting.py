"""Compatibility mode against backtesting.py itself (test-only dependency, AGPL: never vendored).

backtesting.py's published SmaCross(10, 30) result on its bundled GOOG data is the acceptance
test: our ``sma_crossover`` signals, traded with ``compat="backtesting.py"``, must give the
same trades and equity curve as ``Backtest(...).run()`` computed here, and its published stats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.backtest import BacktestSettings, run_backtest
from strategies.registry import create

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

# backtesting.py 0.6.6's stats call DatetimeIndex.dayofweek, deprecated in pandas 3
pytestmark = pytest.mark.filterwarnings(
    "ignore:DatetimeIndex.dayofweek is deprecated:pandas.errors.Pandas4Warning"
)
RTOL = 1e-6
PUBLISHED = {  # backtesting.py's own test suite, test_compute_stats
    "# Trades": 66,
    "Return [%]": 414.2298999999996,
    "Equity Final [$]": 51422.98999999996,
    "Exposure Time [%]": 96.74115456238361,
    "Max. Drawdown [%]": -47.98012705007589,
}
TRADE_FIELDS = {
    "entry_bar": "EntryBar",
    "exit_bar": "ExitBar",
    "size": "Size",
    "entry_price": "EntryPrice",
    "exit_price": "ExitPrice",
    "pnl": "PnL",
    "return_pct": "ReturnPct",
    "commission": "Commission",
}


class SmaCross(Strategy):
    """Long on SMA(10) crossing above SMA(30), short on the cross below (always in the market)."""

    fast = 10
    slow = 30

    def init(self) -> None:
        self.sma1 = self.I(SMA, self.data.Close, self.fast)
        self.sma2 = self.I(SMA, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    """GOOG as a StratLens candle frame (UTC index ``ts``, lower-case float64 columns)."""
    frame = GOOG.rename(columns=str.lower).astype("float64")
    frame.index = frame.index.tz_localize("UTC").rename("ts")
    return frame


@pytest.fixture(scope="module")
def signals(goog: pd.DataFrame) -> pd.DataFrame:
    return create("sma_crossover", fast=10, slow=30, direction="both").generate(goog).frame


def reference_stats(**kwargs: object) -> pd.Series:
    return Backtest(GOOG, SmaCross, cash=10_000, finalize_trades=True, **kwargs).run()


def test_our_crossover_signals_equal_backtesting_lib_crossover(signals: pd.DataFrame) -> None:
    # ours: spread > 0 after <= 0; backtesting.lib.crossover: strictly < then >. They differ
    # only when the previous spread is exactly 0, which never happens on GOOG.
    fast = SMA(GOOG.Close, 10).to_numpy()
    slow = SMA(GOOG.Close, 30).to_numpy()
    up = np.zeros(len(fast), dtype=bool)
    down = np.zeros(len(fast), dtype=bool)
    up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
    down[1:] = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
    np.testing.assert_array_equal(signals["entry_long"].to_numpy(), up)
    np.testing.assert_array_equal(signals["entry_short"].to_numpy(), down)


@pytest.mark.parametrize(
    ("kwargs", "settings"),
    [
        ({}, {}),
        ({"commission": 0.002}, {"commission_pct": 0.002}),
        ({"commission": (5.0, 0.001)}, {"commission_pct": 0.001, "commission_fixed": 5.0}),
        ({"spread": 0.0015}, {"spread_bps": 15.0}),
        ({"trade_on_close": True}, {"fill": "close"}),
        (
            {"commission": (5.0, 0.002), "spread": 0.001, "trade_on_close": True},
            {"commission_pct": 0.002, "commission_fixed": 5.0, "spread_bps": 10.0, "fill": "close"},
        ),
    ],
    ids=["published", "commission", "fixed+relative", "spread", "trade_on_close", "all"],
)
def test_trades_and_equity_match_backtesting_py(
    goog: pd.DataFrame, signals: pd.DataFrame, kwargs: dict, settings: dict
) -> None:
    stats = reference_stats(**kwargs)
    ours = run_backtest(
        goog, signals, BacktestSettings(cash=10_000, compat="backtesting.py", **settings)
    )
    theirs = stats._trades
    assert len(ours.trades) == len(theirs)
    for mine, their in TRADE_FIELDS.items():
        np.testing.assert_allclose(
            ours.trades[mine].to_numpy(dtype=float),
            theirs[their].to_numpy(dtype=float),
            rtol=RTOL,
            atol=1e-9,
            err_msg=mine,
        )
    assert list(ours.trades["entry_time"].dt.tz_localize(None)) == list(theirs["EntryTime"])
    assert list(ours.trades["exit_time"].dt.tz_localize(None)) == list(theirs["ExitTime"])
    np.testing.assert_allclose(
        ours.equity.to_numpy(), stats._equity_curve["Equity"].to_numpy(), rtol=RTOL
    )


def test_published_numbers(goog: pd.DataFrame) -> None:
    strategy = create("sma_crossover", fast=10, slow=30, direction="both")
    result = run_backtest(
        goog, strategy.generate(goog), BacktestSettings(cash=10_000, compat="backtesting.py")
    )
    equity = result.equity.to_numpy()
    held = np.zeros(len(equity), dtype=bool)
    for entry, exit_ in zip(result.trades["entry_bar"], result.trades["exit_bar"], strict=True):
        held[entry : exit_ + 1] = True
    drawdown = equity / np.maximum.accumulate(equity) - 1
    ours = {
        "# Trades": len(result.trades),
        "Return [%]": (equity[-1] / 10_000 - 1) * 100,
        "Equity Final [$]": equity[-1],
        "Exposure Time [%]": held.mean() * 100,
        "Max. Drawdown [%]": drawdown.min() * 100,
    }
    assert ours["# Trades"] == PUBLISHED["# Trades"]
    for key, value in PUBLISHED.items():
        assert ours[key] == pytest.approx(value, rel=RTOL), key
    assert result.trades["exit_reason"].iloc[-1] == "end"
    assert set(result.trades["side"]) == {"long", "short"}
    assert (
        np.sign(result.trades["size"]) == result.trades["side"].map({"long": 1, "short": -1})
    ).all()


def test_benchmark_is_backtesting_buy_and_hold(goog: pd.DataFrame, signals: pd.DataFrame) -> None:
    result = run_backtest(goog, signals, BacktestSettings(cash=10_000, compat="backtesting.py"))
    # backtesting.py buys at the close of its first trading bar (after the 30-bar warm-up)
    buy_hold = (result.benchmark.iloc[-1] / result.benchmark.iloc[29] - 1) * 100
    assert result.benchmark.iloc[0] == 10_000
    assert buy_hold == pytest.approx(522.0601851851852, rel=RTOL)
