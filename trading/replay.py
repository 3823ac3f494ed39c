"""A paper replay: the live code path (engine, policy, broker) over stored bars, as fast as it
goes. Its trades must equal the backtest engine's (live equals backtest, docs/trading.md).

>>> result = replay(candles, create("ema_crossover", direction="both"), settings, cash=10_000)
>>> result.trades[["entry_time", "exit_time", "size", "pnl", "exit_reason"]]

``sink``, when given, receives each bar's :class:`trading.engine.BarOutcome` (the service
stores them); without it nothing leaves memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.backtest import EXIT_REASONS, TRADE_COLUMNS
from market.candles import iter_candles
from market.timeframes import Timeframe
from strategies.base import BaseStrategy
from trading.config import DeploymentSettings
from trading.engine import BarOutcome, Deployed, TradingEngine
from trading.orders import AccountBook
from trading.policy import DeploymentPolicy
from trading.tape import BarBlock, SignalTape

Sink = Callable[[BarOutcome], None]


@dataclass(frozen=True)
class ReplayResult:
    trades: pd.DataFrame  # the backtest's trade columns
    engine: TradingEngine
    bars: int


def new_deployed(
    deployment_id: int,
    name: str,
    account_id: int,
    symbol: str,
    timeframe: str,
    strategy: BaseStrategy,
    settings: DeploymentSettings,
) -> Deployed:
    policy = DeploymentPolicy(deployment_id, symbol, settings, strategy.direction, name=name)
    return Deployed(
        deployment_id, name, account_id, symbol, Timeframe.parse(timeframe), strategy, settings,
        policy,
    )  # fmt: skip


DEFAULT_BLOCK_BARS = 5_000


def replay(
    candles: pd.DataFrame,
    strategy: BaseStrategy,
    settings: DeploymentSettings,
    cash: float,
    *,
    symbol: str = "X",
    timeframe: str = "1d",
    max_drawdown_pct: float | None = None,
    account: AccountBook | None = None,
    deployed: Deployed | None = None,
    sink: Sink | None = None,
    block_bars: int | None = DEFAULT_BLOCK_BARS,
) -> ReplayResult:
    """Stream ``candles`` (closed bars, in order) through a fresh engine trading one
    deployment of ``strategy``; positions still open after the last bar are closed at its
    close. ``account``/``deployed``: stored ones (their ids), else in-memory ones.
    ``block_bars``: bars handed to :meth:`TradingEngine.on_block` at a time, the strategy's
    signals computed in advance (:class:`trading.tape.SignalTape`); None: one bar at a time
    through :meth:`TradingEngine.on_candle` and the incremental strategy (the live feed's way).
    """
    engine = TradingEngine()
    book = account or AccountBook("replay", cash=cash, id=1, max_drawdown_pct=max_drawdown_pct)
    engine.add_account(book, {symbol})
    d = deployed or new_deployed(1, "replay", book.id or 1, symbol, timeframe, strategy, settings)
    engine.set_base(symbol, d.timeframe)
    if block_bars is not None:
        d.tape = SignalTape.of(strategy, candles, symbol, d.timeframe.label)
    engine.add(d, candles.iloc[:0])
    trades: list[dict] = []

    def take(outcome: BarOutcome) -> None:
        trades.extend(t for _, t in outcome.trades)
        if sink is not None:
            sink(outcome)

    n = len(candles)
    if block_bars is None:
        for i, candle in enumerate(iter_candles(candles)):
            take(engine.on_candle(symbol, candle, last=i == n - 1))
    else:
        bars = BarBlock.of(candles)
        for start in range(0, n, block_bars):
            for outcome in engine.on_block(
                symbol, bars, start, min(n, start + block_bars), last=True
            ):
                take(outcome)
    if n:
        take(engine.close_out(symbol, next(iter(iter_candles(candles.iloc[-1:])))))
    return ReplayResult(trade_frame(trades), engine, n)


_SIDE = pd.CategoricalDtype(["short", "long"])
_REASON = pd.CategoricalDtype(list(EXIT_REASONS))


def trade_frame(trades: list[dict]) -> pd.DataFrame:
    """Round trips (the policy's dicts) as the backtest engine's trade list."""
    if not trades:
        frame = pd.DataFrame({c: [] for c in TRADE_COLUMNS})
        return frame
    size = np.array([t["size"] for t in trades], dtype=np.float64)
    entry_time = pd.to_datetime([t["entry_ts"] for t in trades], unit="ms", utc=True)
    exit_time = pd.to_datetime([t["exit_ts"] for t in trades], unit="ms", utc=True)
    return pd.DataFrame(
        {
            "entry_time": entry_time,
            "exit_time": exit_time,
            "entry_bar": np.array([t["entry_bar"] for t in trades], dtype=np.int64),
            "exit_bar": np.array([t["exit_bar"] for t in trades], dtype=np.int64),
            "side": pd.Categorical.from_codes((size > 0).astype(np.int8), dtype=_SIDE),
            "size": size,
            "entry_price": [t["entry_price"] for t in trades],
            "exit_price": [t["exit_price"] for t in trades],
            "pnl": [t["pnl"] for t in trades],
            "return_pct": [t["return_pct"] for t in trades],
            "commission": [t["commission"] for t in trades],
            "duration": exit_time - entry_time,
            "exit_reason": pd.Categorical([t["exit_reason"] for t in trades], dtype=_REASON),
            "mae": [t["mae"] for t in trades],
            "mfe": [t["mfe"] for t in trades],
        },
        columns=list(TRADE_COLUMNS),
    )


__all__ = ["DEFAULT_BLOCK_BARS", "ReplayResult", "new_deployed", "replay", "trade_frame"]
