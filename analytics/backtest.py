"""Backtest engine: positions from strategy signals, fills, costs, stops and the equity curve.

>>> strategy = create("sma_crossover", fast=10, slow=30, direction="both")
>>> result = run_backtest(candles, strategy.generate(candles), BacktestSettings(cash=10_000))
>>> result.trades[["entry_time", "side", "size", "pnl", "exit_reason"]].head(2)
>>> result.equity.iloc[-1], result.benchmark.iloc[-1]

One position at a time. A signal on bar ``i`` (decided on its close) fills at the open of bar
``i + 1`` (``fill="next_open"``) or at the close of bar ``i`` (``fill="close"``). On one bar
exits come before entries, and an entry of the other side closes the open position first.
Stops are checked inside each bar against its high and low; when the stop and the target both
lie inside one bar the stop counts (we cannot know which came first, so we assume the worse).
``compat="backtesting.py"`` reproduces backtesting.py's broker (see docs/backtest.md).

The bar loop is :func:`simulate` (in :mod:`analytics._kernel`), a pure function of numpy arrays
and plain numbers compiled by numba, run from its ahead-of-time build when there is one
(:mod:`analytics._kernel_aot`); ``analytics._kernel.simulate_py`` is the same code as plain
Python.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from analytics._kernel_aot import simulate
from analytics._kernel_layout import (
    _COMMISSION,
    _ENTRY,
    _ENTRY_BAR,
    _EXIT,
    _EXIT_BAR,
    _MAE,
    _MFE,
    _REASON,
    _SIZE,
    KernelParams,
)
from analytics.trade_list import TRADE_COLUMNS  # the trade-list contract the metrics read
from market.candles import PRICE_COLUMNS
from strategies.signals import SIGNAL_COLUMNS, StrategyResult

Fill = Literal["next_open", "close"]
Sizing = Literal["all_in", "fraction", "quantity", "half_kelly"]
Direction = Literal["long", "short", "both"]
Compat = Literal["backtesting.py"]

EXIT_REASONS: tuple[str, ...] = (
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "end",
    "drawdown_halt",
)
SIZINGS: tuple[str, ...] = ("all_in", "fraction", "quantity", "half_kelly")
# backtesting.py sizes a default buy() as this fraction of the available margin
BACKTESTING_PY_FULL = 1 - sys.float_info.epsilon


class BacktestInputError(ValueError):
    """Candles, signals or settings the engine cannot use (the message says which and why)."""


@dataclass(frozen=True)
class BacktestSettings:
    """How to trade the signals: ``BacktestSettings(cash=10_000, commission_pct=0.001)``.

    Every ``*_pct`` and ``*_bps`` is a cost or a distance: ``*_pct`` are fractions
    (0.05 = 5 %), ``*_bps`` basis points (10 = 0.1 %). ``size`` is the parameter of ``sizing``:
    the fraction of equity for "fraction", the units for "quantity", the fraction used by
    "half_kelly" until ``kelly_min_trades`` trades exist; unused by "all_in".
    ``spread_bps`` is the quoted bid-ask spread; each fill pays half of it
    (backtesting.py compat: the whole spread on entry, none on exit).
    ``None`` turns a stop, target or halt off.
    """

    cash: float = 10_000.0
    fill: Fill = "next_open"
    direction: Direction = "both"
    sizing: Sizing = "all_in"
    size: float | None = None
    kelly_window: int = 30
    kelly_min_trades: int = 10
    commission_pct: float = 0.0
    commission_fixed: float = 0.0
    slippage_bps: float = 0.0
    spread_bps: float = 0.0
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None
    max_drawdown_halt_pct: float | None = None
    whole_units: bool = False
    close_at_end: bool = True
    compat: Compat | None = None

    def __post_init__(self) -> None:
        _check_settings(self)


def _bad(field: str, value: object, expected: str) -> BacktestInputError:
    return BacktestInputError(f"BacktestSettings.{field}={value!r} is invalid: expected {expected}")


def _check_settings(s: BacktestSettings) -> None:
    if not (isinstance(s.cash, int | float) and math.isfinite(s.cash) and s.cash > 0):
        raise _bad("cash", s.cash, "a finite amount > 0")
    choices = {
        "fill": ("next_open", "close"),
        "direction": ("long", "short", "both"),
        "sizing": SIZINGS,
        "compat": (None, "backtesting.py"),
    }
    for name, allowed in choices.items():
        if getattr(s, name) not in allowed:
            raise _bad(name, getattr(s, name), "one of " + ", ".join(map(repr, allowed)))
    if s.sizing == "fraction" and not (s.size is not None and 0 < s.size <= 1):
        raise _bad("size", s.size, "a fraction of equity in (0, 1] for sizing='fraction'")
    if s.sizing == "half_kelly" and s.size is not None and not 0 < s.size <= 1:
        raise _bad("size", s.size, "a fallback fraction in (0, 1] for sizing='half_kelly'")
    if s.sizing == "quantity" and not (s.size is not None and s.size > 0):
        raise _bad("size", s.size, "units > 0 for sizing='quantity'")
    if s.kelly_window < 2 or not 1 <= s.kelly_min_trades <= s.kelly_window:
        raise _bad("kelly_min_trades", s.kelly_min_trades, "1 <= kelly_min_trades <= kelly_window")
    # 0.1 = 10 % per fill: a larger value is almost surely a percent typed as a fraction
    if not 0 <= s.commission_pct < 0.1:
        raise _bad("commission_pct", s.commission_pct, "a fraction in [0, 0.1) (0.001 = 0.1 %)")
    if not 0 <= s.commission_fixed < math.inf:
        raise _bad("commission_fixed", s.commission_fixed, "a finite amount >= 0 per fill")
    for name in ("slippage_bps", "spread_bps"):
        if not 0 <= getattr(s, name) < 10_000:
            raise _bad(name, getattr(s, name), "basis points in [0, 10000)")
    for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct", "max_drawdown_halt_pct"):
        value = getattr(s, name)
        if value is not None and not 0 < value < (math.inf if name == "take_profit_pct" else 1):
            raise _bad(name, value, "None or a fraction > 0 (0.05 = 5 %), below 1 for losses")
    if s.compat is not None:
        unsupported = [
            name
            for name in (
                "slippage_bps",
                "stop_loss_pct",
                "take_profit_pct",
                "trailing_stop_pct",
                "max_drawdown_halt_pct",
            )
            if getattr(s, name)
        ]
        if s.sizing == "half_kelly":
            unsupported.append("sizing='half_kelly'")
        if unsupported:
            raise BacktestInputError(
                f"compat={s.compat!r} does not support {', '.join(unsupported)}: "
                "backtesting.py has no such setting with the same meaning"
            )


@dataclass(frozen=True)
class BacktestResult:
    """Trades, equity curve and buy-and-hold benchmark of one run.

    >>> result.trades.loc[0, ["side", "size", "entry_price", "exit_price", "return_pct"]]
    >>> result.equity.iloc[-1] / result.settings.cash - 1        # total return, fraction

    ``trades``: one row per closed trade (columns :data:`TRADE_COLUMNS`; ``size`` signed,
    ``return_pct``/``mae``/``mfe`` fractions). ``equity``: account value after each bar.
    ``drawdown_halt``: the bar whose close breached ``max_drawdown_halt_pct`` (None if never).
    ``benchmark``: ``cash`` held in the asset from the first close.
    """

    trades: pd.DataFrame
    equity: pd.Series
    drawdown_halt: pd.Timestamp | None
    benchmark: pd.Series
    settings: BacktestSettings
    candles: pd.DataFrame


def kernel_params(s: BacktestSettings) -> KernelParams:
    """``BacktestSettings`` -> :class:`KernelParams` (fractions, 0 for "off")."""
    fallback = {"all_in": 1.0, "half_kelly": 0.1}.get(s.sizing, 0.0)
    return KernelParams(
        cash=float(s.cash),
        fill_close=s.fill == "close",
        long_ok=s.direction != "short",
        short_ok=s.direction != "long",
        sizing=SIZINGS.index(s.sizing),
        size=float(s.size) if s.size is not None else fallback,
        kelly_window=int(s.kelly_window),
        kelly_min_trades=int(s.kelly_min_trades),
        commission_rel=float(s.commission_pct),
        commission_fixed=float(s.commission_fixed),
        slippage=s.slippage_bps / 10_000,
        spread=s.spread_bps / 10_000,
        stop_loss=float(s.stop_loss_pct or 0.0),
        take_profit=float(s.take_profit_pct or 0.0),
        trailing_stop=float(s.trailing_stop_pct or 0.0),
        max_drawdown=float(s.max_drawdown_halt_pct or 0.0),
        whole_units=bool(s.whole_units or s.compat is not None),
        close_at_end=bool(s.close_at_end),
        compat=s.compat is not None,
    )


def half_kelly(returns: list[float]) -> float:
    """Half the Kelly fraction of trade returns, clipped to [0, 1].

    >>> half_kelly([0.10, -0.05, 0.10, -0.05])   # W = 0.5, R = 2: Kelly 0.25
    0.125

    Kelly = W - (1 - W) / R with W the share of winning trades and R = mean win / mean loss.
    """
    # the kernel's own code; imported here, as it imports numba, which a backtest run by the
    # prebuilt kernel (analytics._kernel_aot) never does
    from analytics._kernel import half_kelly_window

    values = np.asarray(returns, dtype=np.float64)
    return float(half_kelly_window(values, 0, len(values)))


def _signal_frame(signals: StrategyResult | pd.DataFrame) -> pd.DataFrame:
    frame = signals.frame if isinstance(signals, StrategyResult) else signals
    if not isinstance(frame, pd.DataFrame):
        raise BacktestInputError(
            f"signals must be a StrategyResult or a DataFrame, got {type(signals).__name__}"
        )
    missing = [c for c in SIGNAL_COLUMNS if c not in frame.columns]
    if missing:
        raise BacktestInputError(f"signals lack columns {missing}; need {list(SIGNAL_COLUMNS)}")
    return frame


def _check_inputs(candles: pd.DataFrame, frame: pd.DataFrame) -> None:
    if not isinstance(candles, pd.DataFrame) or not isinstance(candles.index, pd.DatetimeIndex):
        raise BacktestInputError("candles must be a candle frame with a DatetimeIndex")
    missing = [c for c in PRICE_COLUMNS if c not in candles.columns]
    if missing:
        raise BacktestInputError(f"candles lack columns {missing}")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise BacktestInputError("candles index must be strictly increasing")
    for name in PRICE_COLUMNS:
        prices = candles[name].to_numpy(dtype=np.float64)
        # min > 0 also fails on NaN; two reductions instead of a 1,000,000-row mask per column
        if prices.size and not (prices.min() > 0 and prices.max() < np.inf):
            row = int(np.flatnonzero(~(np.isfinite(prices) & (prices > 0)))[0])
            raise BacktestInputError(
                f"candles: {name}={float(prices[row])!r} at {candles.index[row]} "
                "is not a finite price > 0"
            )
    if len(frame) != len(candles) or not frame.index.equals(candles.index):
        raise BacktestInputError(
            f"signals index ({len(frame)} rows) does not match the candles index "
            f"({len(candles)} rows): generate the signals from these candles"
        )
    for column in SIGNAL_COLUMNS:
        values = frame[column]
        if values.dtype != bool and not values.isin([0, 1]).all():
            raise BacktestInputError(f"signals column {column!r} must be boolean")


def run_backtest(
    candles: pd.DataFrame,
    signals: StrategyResult | pd.DataFrame,
    settings: BacktestSettings | None = None,
) -> BacktestResult:
    """Trade ``signals`` on ``candles``: the trade list, the equity curve, the benchmark.

    >>> run_backtest(candles, create("sma_crossover", direction="both").generate(candles),
    ...              BacktestSettings(cash=10_000, commission_pct=0.001, stop_loss_pct=0.05))
    BacktestResult(trades=<66 rows>, equity=<Series>, drawdown_halt=None, ...)
    """
    settings = settings if settings is not None else BacktestSettings()
    frame = _signal_frame(signals)
    _check_inputs(candles, frame)
    arrays = [_kernel_array(candles[c], np.float64) for c in PRICE_COLUMNS]
    flags = [_kernel_array(frame[c], np.bool_) for c in SIGNAL_COLUMNS]
    equity, rows, halt_bar = simulate(*arrays, *flags, kernel_params(settings))
    index = candles.index
    trades = _trade_frame(rows, index)
    return BacktestResult(
        trades=trades,
        equity=pd.Series(equity, index=index, name="equity"),
        drawdown_halt=index[halt_bar] if halt_bar >= 0 else None,
        benchmark=buy_and_hold(candles, settings.cash),
        settings=settings,
        candles=candles,
    )


def buy_and_hold(candles: pd.DataFrame, cash: float) -> pd.Series:
    """The benchmark: ``cash`` held in the asset from the first close."""
    close = _kernel_array(candles["close"], np.float64)
    benchmark = cash * close / close[0] if len(close) else close.copy()
    return pd.Series(benchmark, index=candles.index, name="benchmark")


def _kernel_array(column: pd.Series, dtype: type) -> np.ndarray:
    """A contiguous read-only array: one compiled (and cached) kernel for every input.

    numba compiles one machine-code version per array type (layout, writability), so a
    writable or strided column would cost another compilation (~2 s, once).
    """
    values = np.ascontiguousarray(column.to_numpy(dtype=dtype))
    values.flags.writeable = False
    return values


# categorical: building 36,000 strings in pandas' string dtype took ~3 ms of a 1M-bar run
_SIDE_DTYPE = pd.CategoricalDtype(["short", "long"])
_REASON_DTYPE = pd.CategoricalDtype(list(EXIT_REASONS))


def _trade_frame(rows: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    entry_bar = rows[:, _ENTRY_BAR].astype(np.int64)
    exit_bar = rows[:, _EXIT_BAR].astype(np.int64)
    size = rows[:, _SIZE]
    entry, exit_ = rows[:, _ENTRY], rows[:, _EXIT]
    commission = rows[:, _COMMISSION]
    sign = np.sign(size)
    entry_time, exit_time = index[entry_bar], index[exit_bar]
    with np.errstate(divide="ignore", invalid="ignore"):
        return_pct = sign * (exit_ / entry - 1) - commission / (np.abs(size) * entry)
    return pd.DataFrame(
        {
            "entry_time": entry_time,
            "exit_time": exit_time,
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "side": pd.Categorical.from_codes((size > 0).astype(np.int8), dtype=_SIDE_DTYPE),
            "size": size,
            "entry_price": entry,
            "exit_price": exit_,
            "pnl": size * (exit_ - entry) - commission,
            "return_pct": return_pct,
            "commission": commission,
            "duration": exit_time - entry_time,
            "exit_reason": pd.Categorical.from_codes(
                rows[:, _REASON].astype(np.int8), dtype=_REASON_DTYPE
            ),
            "mae": rows[:, _MAE],
            "mfe": rows[:, _MFE],
        },
        columns=list(TRADE_COLUMNS),
        copy=False,  # every column is a fresh array already
    )


__all__ = [
    "EXIT_REASONS",
    "TRADE_COLUMNS",
    "BacktestInputError",
    "BacktestResult",
    "BacktestSettings",
    "KernelParams",
    "buy_and_hold",
    "half_kelly",
    "kernel_params",
    "run_backtest",
    "simulate",
]
