"""Crossover strategies: moving averages (SMA, EMA) and MACD against its signal line.

>>> SmaCrossover(fast=10, slow=30, direction="both").generate(frame).frame.entry_short.sum()
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from indicators.registry import IndicatorRequest, request
from strategies.base import (
    DIRECTION,
    Bars,
    BaseStrategy,
    ParamValue,
    Rules,
    StrategyParam,
    atr_input,
    confidence_ratio,
)


class MovingAverageCrossover(BaseStrategy):
    """Fast average crossing the slow one; subclasses pick the average (``average``).

    Long entry: fast closes above slow (spread fast - slow > 0 after <= 0 on the bar before);
    long exit: the opposite cross. Short mirrors them.
    Confidence: the crossing speed, ``|spread - previous spread| / (SPEED_SCALE x ATR(14))``
    capped at 1: a cross that moves the spread by a quarter ATR in one bar is fully confident.
    """

    average: ClassVar[str] = ""
    SPEED_SCALE: ClassVar[float] = 0.25

    @classmethod
    def check(cls, params: dict[str, ParamValue]) -> None:  # type: ignore[override]
        cls.require_below(params, "fast", "slow")

    def inputs(self) -> dict[str, tuple[IndicatorRequest, str]]:
        avg = self.average
        return {
            f"fast_{avg}": (request(avg, timeperiod=self.config["fast"]), avg),
            f"slow_{avg}": (request(avg, timeperiod=self.config["slow"]), avg),
            "atr": atr_input(),
        }

    def rules(self, cur: Bars, prev: Bars) -> Rules:
        fast, slow = f"fast_{self.average}", f"slow_{self.average}"
        spread = cur[fast] - cur[slow]
        before = prev[fast] - prev[slow]
        up = (spread > 0) & (before <= 0)
        down = (spread < 0) & (before >= 0)
        confidence = confidence_ratio(np.abs(spread - before), self.SPEED_SCALE * cur["atr"])
        return Rules(up, down, down, up, confidence, confidence)


class SmaCrossover(MovingAverageCrossover):
    """SMA(fast) crossing SMA(slow): ``SmaCrossover(fast=10, slow=30, direction="long")``.

    Entry long when SMA(fast) crosses above SMA(slow), exit long on the cross below; short
    mirrors. Confidence = min(1, |change of fast - slow over one bar| / (0.5 x ATR(14))).
    Bounds: fast 2..1000, slow 3..5000, fast < slow.
    """

    name = "sma_crossover"
    title = "SMA crossover"
    average = "sma"
    SPEED_SCALE = 0.5  # SMA spreads move faster per bar than EMA spreads
    params = (
        StrategyParam("fast", int, 10, 2, 1000, "fast SMA period (bars)"),
        StrategyParam("slow", int, 30, 3, 5000, "slow SMA period (bars), above fast"),
        DIRECTION,
    )


class EmaCrossover(MovingAverageCrossover):
    """EMA(fast) crossing EMA(slow): ``EmaCrossover(fast=12, slow=26, direction="both")``.

    Rules as :class:`SmaCrossover`, on TA-Lib EMAs (SMA-seeded); confidence =
    min(1, |change of fast - slow over one bar| / (0.25 x ATR(14))).
    Bounds: fast 2..1000, slow 3..5000, fast < slow.
    """

    name = "ema_crossover"
    title = "EMA crossover"
    average = "ema"
    params = (
        StrategyParam("fast", int, 12, 2, 1000, "fast EMA period (bars)"),
        StrategyParam("slow", int, 26, 3, 5000, "slow EMA period (bars), above fast"),
        DIRECTION,
    )


class MacdCross(BaseStrategy):
    """MACD crossing its signal line: ``MacdCross(fast=12, slow=26, signal=9)``.

    Entry long when the histogram (macd - signal) turns > 0 from <= 0, exit long when it turns
    < 0 from >= 0; short mirrors. ``zero_line_filter``: long entries only while macd < 0 and
    short entries only while macd > 0 (a cross on the far side of the zero line, i.e. against
    a stretched move); exits are never filtered.
    Confidence = min(1, |histogram change over one bar| / (0.15 x ATR(14))).
    Bounds: fast 2..500, slow 3..1000, signal 1..500, fast < slow.
    """

    name = "macd_cross"
    title = "MACD signal-line cross"
    SPEED_SCALE: ClassVar[float] = 0.15
    params = (
        StrategyParam("fast", int, 12, 2, 500, "fast EMA period (bars)"),
        StrategyParam("slow", int, 26, 3, 1000, "slow EMA period (bars), above fast"),
        StrategyParam("signal", int, 9, 1, 500, "signal-line EMA period (bars)"),
        StrategyParam(
            "zero_line_filter",
            bool,
            False,
            description="long entries only below the zero line, short entries only above it",
        ),
        DIRECTION,
    )

    @classmethod
    def check(cls, params: dict[str, ParamValue]) -> None:  # type: ignore[override]
        cls.require_below(params, "fast", "slow")

    def inputs(self) -> dict[str, tuple[IndicatorRequest, str]]:
        c = self.config
        macd = request("macd", fast=c["fast"], slow=c["slow"], signal=c["signal"])
        return {
            "macd": (macd, "macd"),
            "signal": (macd, "signal"),
            "hist": (macd, "hist"),
            "atr": atr_input(),
        }

    def rules(self, cur: Bars, prev: Bars) -> Rules:
        hist, before = cur["hist"], prev["hist"]
        up = (hist > 0) & (before <= 0)
        down = (hist < 0) & (before >= 0)
        entry_long, entry_short = up, down
        if self.config["zero_line_filter"]:
            entry_long = up & (cur["macd"] < 0)
            entry_short = down & (cur["macd"] > 0)
        confidence = confidence_ratio(np.abs(hist - before), self.SPEED_SCALE * cur["atr"])
        return Rules(entry_long, down, entry_short, up, confidence, confidence)
