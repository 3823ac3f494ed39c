"""Oscillator strategies: RSI mean reversion, optionally only with the trend.

>>> RsiReversion(period=14, oversold=30, overbought=70, trend_filter=True).required_indicators()
[IndicatorRequest(name='rsi', ...), IndicatorRequest(name='sma', ...)]
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
    confidence_ratio,
)


class RsiReversion(BaseStrategy):
    """Buy oversold, sell overbought: ``RsiReversion(period=14, oversold=30, overbought=70)``.

    Entry long when RSI < oversold, exit long when RSI >= the midpoint
    (oversold + overbought) / 2; entry short when RSI > overbought, exit short when RSI <= the
    midpoint. ``trend_filter``: long entries only while close > SMA(trend_period), short
    entries only while close < it (exits are never filtered).
    Confidence (depth beyond the level, 10 RSI points = full): long
    min(1, 0.5 + 0.5 x (oversold - RSI) / 10), short min(1, 0.5 + 0.5 x (RSI - overbought) / 10).
    Bounds: period 2..1000, oversold and overbought 1..99 with oversold < overbought,
    trend_period 2..5000.
    """

    name = "rsi_reversion"
    DEPTH_POINTS: ClassVar[float] = 10.0
    title = "RSI mean reversion"
    params = (
        StrategyParam("period", int, 14, 2, 1000, "RSI period (bars)"),
        StrategyParam("oversold", float, 30.0, 1.0, 99.0, "RSI level below which to buy"),
        StrategyParam("overbought", float, 70.0, 1.0, 99.0, "RSI level above which to sell"),
        StrategyParam(
            "trend_filter", bool, False, description="only trade with the SMA(trend_period) trend"
        ),
        StrategyParam("trend_period", int, 200, 2, 5000, "trend filter SMA period (bars)"),
        DIRECTION,
    )

    @classmethod
    def check(cls, params: dict[str, ParamValue]) -> None:  # type: ignore[override]
        cls.require_below(params, "oversold", "overbought")

    def inputs(self) -> dict[str, tuple[IndicatorRequest, str]]:
        c = self.config
        out = {"rsi": (request("rsi", timeperiod=c["period"]), "rsi")}
        if c["trend_filter"]:
            out["trend_sma"] = (request("sma", timeperiod=c["trend_period"]), "sma")
        return out

    def rules(self, cur: Bars, prev: Bars) -> Rules:
        oversold = float(self.config["oversold"])
        overbought = float(self.config["overbought"])
        middle = (oversold + overbought) / 2.0
        rsi = cur["rsi"]
        entry_long = rsi < oversold
        entry_short = rsi > overbought
        if self.config["trend_filter"]:
            entry_long = entry_long & (cur["close"] > cur["trend_sma"])
            entry_short = entry_short & (cur["close"] < cur["trend_sma"])
        points = np.full_like(rsi, self.DEPTH_POINTS)
        long_confidence = confidence_ratio(oversold - rsi, points, base=0.5)
        short_confidence = confidence_ratio(rsi - overbought, points, base=0.5)
        return Rules(
            entry_long, rsi >= middle, entry_short, rsi <= middle, long_confidence, short_confidence
        )
