"""A replay's bars and each strategy's signals over them, computed once, vectorized.

>>> block = BarBlock.of(candles)                        # arrays of the whole series
>>> tape = SignalTape.of(strategy, candles, "SP500", "1d")
>>> tape.next_event(k)                                  # the first bar from k with a signal
>>> tape.signals(k, block.candle(k))                    # the StrategySignals of bar k

A paper replay knows every bar in advance, so a strategy's signals come from its vectorized
twin (``BaseStrategy.generate``, tested equal to the incremental ``LiveStrategy``) instead of
being evaluated bar by bar; the engine (:meth:`trading.engine.TradingEngine.on_block`) then
runs the orders, the broker and the policy only on the bars where something happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.candles import Candle
from strategies.base import BaseStrategy
from strategies.signals import StrategySignal

_KINDS = ("exit_long", "exit_short", "entry_long", "entry_short")  # LiveStrategy's order


@dataclass(frozen=True)
class BarBlock:
    """A series of closed bars as arrays (``ts``: open time in epoch ms)."""

    index: pd.DatetimeIndex
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def of(cls, candles: pd.DataFrame) -> BarBlock:
        index = pd.DatetimeIndex(candles.index)
        columns = (
            np.ascontiguousarray(candles[c].to_numpy(), dtype=np.float64)
            for c in ("open", "high", "low", "close", "volume")
        )
        return cls(index, index.as_unit("ns").asi8 // 1_000_000, *columns)

    def __len__(self) -> int:
        return len(self.ts)

    def candle(self, k: int) -> Candle:
        return Candle(
            self.index[k], float(self.open[k]), float(self.high[k]), float(self.low[k]),
            float(self.close[k]), float(self.volume[k]),
        )  # fmt: skip


@dataclass(frozen=True)
class SignalTape:
    """One strategy's signals on every bar of a series (the rows of ``generate``'s frame)."""

    strategy: BaseStrategy
    symbol: str
    timeframe: str
    flags: np.ndarray  # (bars, 4) bool: exit_long, exit_short, entry_long, entry_short
    confidence: np.ndarray
    metadata: dict[str, np.ndarray]
    events: np.ndarray  # the bars with any signal, ascending

    @classmethod
    def of(
        cls, strategy: BaseStrategy, candles: pd.DataFrame, symbol: str, timeframe: str
    ) -> SignalTape:
        result = strategy.generate(candles, symbol=symbol, timeframe=timeframe)
        frame = result.frame
        flags = np.column_stack([frame[k].to_numpy(dtype=bool) for k in _KINDS])
        if flags.shape[0] != len(candles):
            flags = np.zeros((len(candles), 4), dtype=bool)
        events = np.flatnonzero(flags.any(axis=1))
        return cls(
            strategy, symbol, timeframe, flags, frame["confidence"].to_numpy(np.float64),
            dict(result.metadata_columns), events,
        )  # fmt: skip

    def next_event(self, start: int) -> int:
        """The first bar at or after ``start`` with a signal (len of the series: none)."""
        at = int(np.searchsorted(self.events, start))
        return int(self.events[at]) if at < len(self.events) else len(self.flags)

    def signals(self, k: int, candle: Candle) -> list[StrategySignal]:
        """Bar ``k``'s signals as ``LiveStrategy.on_candle`` gives them (exits first; an
        exit's confidence is 1, an entry's the strategy's)."""
        row = self.flags[k]
        if not row.any():
            return []
        s = self.strategy
        metadata = {key: float(column[k]) for key, column in self.metadata.items()}
        return [
            StrategySignal(
                candle.ts, self.symbol, self.timeframe, s.name, s.config_hash, kind,  # type: ignore[arg-type]
                candle.close, 1.0 if j < 2 else float(self.confidence[k]), dict(metadata),
                s.config,
            )
            for j, kind in enumerate(_KINDS)
            if row[j]
        ]  # fmt: skip


__all__ = ["BarBlock", "SignalTape"]
