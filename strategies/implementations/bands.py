"""Band strategies: Bollinger Band mean reversion and the Donchian channel breakout.

>>> DonchianBreakout(entry_period=20, exit_period=10).generate(frame).signals[:2]
"""

from __future__ import annotations

from indicators.registry import IndicatorRequest, request
from strategies.base import (
    DIRECTION,
    Bars,
    BaseStrategy,
    ParamValue,
    Rules,
    StrategyParam,
    StrategyParamError,
    atr_input,
    confidence_ratio,
)


class BollingerReversion(BaseStrategy):
    """Fade closes outside the bands: ``BollingerReversion(period=20, nbdev=2.0)``.

    Entry long when close < lower band, exit long when close >= middle (the SMA); entry short
    when close > upper band, exit short when close <= middle.
    Confidence (depth beyond the band in half-band widths, nbdev sigma):
    long 0.5 + 0.5 x (lower - close) / (middle - lower), short likewise above upper; capped at 1.
    Bounds: period 2..1000, nbdev 0.5..5.0.
    """

    name = "bollinger_reversion"
    title = "Bollinger Band reversion"
    params = (
        StrategyParam("period", int, 20, 2, 1000, "bands' SMA and deviation window (bars)"),
        StrategyParam("nbdev", float, 2.0, 0.5, 5.0, "band distance in standard deviations"),
        DIRECTION,
    )

    def inputs(self) -> dict[str, tuple[IndicatorRequest, str]]:
        c = self.config
        bands = request("bbands", timeperiod=c["period"], nbdevup=c["nbdev"], nbdevdn=c["nbdev"])
        return {"upper": (bands, "upper"), "middle": (bands, "middle"), "lower": (bands, "lower")}

    def rules(self, cur: Bars, prev: Bars) -> Rules:
        close, upper, middle, lower = cur["close"], cur["upper"], cur["middle"], cur["lower"]
        long_confidence = confidence_ratio(lower - close, middle - lower, base=0.5)
        short_confidence = confidence_ratio(close - upper, upper - middle, base=0.5)
        return Rules(
            close < lower,
            close >= middle,
            close > upper,
            close <= middle,
            long_confidence,
            short_confidence,
        )


class DonchianBreakout(BaseStrategy):
    """Channel breakout, turtle style: ``DonchianBreakout(entry_period=20, exit_period=10)``.

    Entry long when close > the highest high of the previous entry_period bars; exit long when
    close < the lowest low of the previous exit_period bars. Short mirrors (close below the
    entry channel's low; exit above the exit channel's high). The channels end at the bar before,
    so a breakout is measured against levels known before the bar opened.
    Confidence (breakout size in ATR): 0.5 + 0.5 x (close - channel level) / ATR(14), capped at 1.
    Bounds: entry_period 2..1000, exit_period 2..1000, exit_period <= entry_period.
    """

    name = "donchian_breakout"
    title = "Donchian channel breakout"
    params = (
        StrategyParam("entry_period", int, 20, 2, 1000, "breakout channel length (bars)"),
        StrategyParam("exit_period", int, 10, 2, 1000, "exit channel length (bars)"),
        DIRECTION,
    )

    @classmethod
    def check(cls, params: dict[str, ParamValue]) -> None:  # type: ignore[override]
        if params["exit_period"] > params["entry_period"]:  # type: ignore[operator]
            raise StrategyParamError(
                cls.name,
                "exit_period",
                params["exit_period"],
                f"exit_period <= entry_period (entry_period={params['entry_period']!r})",
                "is above entry_period",
            )

    def inputs(self) -> dict[str, tuple[IndicatorRequest, str]]:
        entry = request("donchian", timeperiod=self.config["entry_period"])
        exit_ = request("donchian", timeperiod=self.config["exit_period"])
        return {
            "entry_upper": (entry, "upper"),
            "entry_lower": (entry, "lower"),
            "exit_upper": (exit_, "upper"),
            "exit_lower": (exit_, "lower"),
            "atr": atr_input(),
        }

    def rules(self, cur: Bars, prev: Bars) -> Rules:
        close, atr = cur["close"], cur["atr"]
        high, low = prev["entry_upper"], prev["entry_lower"]
        return Rules(
            close > high,
            close < prev["exit_lower"],
            close < low,
            close > prev["exit_upper"],
            confidence_ratio(close - high, atr, base=0.5),
            confidence_ratio(low - close, atr, base=0.5),
            metadata={
                "entry_upper": high,
                "entry_lower": low,
                "exit_upper": prev["exit_upper"],
                "exit_lower": prev["exit_lower"],
                "atr": atr,
            },
        )
