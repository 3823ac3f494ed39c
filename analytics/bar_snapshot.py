"""What one closed bar says (:class:`BarSnapshot`), made from its raw indicator values by
:func:`bar_snapshot`, which both of :mod:`analytics.market_context`'s forms (a frame's bars at
once, a stream's one at a time) hand them to: the numbers, the categories their rules give
(docs/labels.md) and the bar's part of a fill's context (JSON values: None for a number
that is not finite, and for the parts the fill adds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.label_config import LabelConfig

NAN = float("nan")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CONTEXT_KEYS = (
    "volatility_regime",
    "market_session",
    "trend",
    "volume_profile",
    "price_level",
    "bar_open",  # the open time (ISO, UTC) of the bar the context was read from
    "close",
    "atr",
    "atr_pct",
    "atr_pct_rank",
    "sma",
    "close_vs_sma_atr",
    "sma_slope_pct",
    "volume",
    "volume_z",
    "donchian_high",
    "donchian_low",
    "to_high_atr",
    "to_low_atr",
    "rsi",
    "bollinger_upper",
    "bollinger_lower",
    "momentum_atr",
)


@dataclass(frozen=True, slots=True)
class BarSnapshot:
    """What one closed bar says, all its indicators read; NaN where still warming up."""

    open_ns: int
    close: float
    atr: float
    atr_pct: float  # 100 x ATR / close
    atr_pct_rank: float  # percentile rank of the ATR share in its trailing window (0-100)
    volatility_regime: str | None
    sma: float
    close_vs_sma_atr: float
    sma_slope_pct: float
    trend: str | None
    volume: float
    volume_z: float
    volume_profile: str | None
    donchian_high: float
    donchian_low: float
    rsi: float
    bollinger_upper: float
    bollinger_lower: float
    momentum_atr: float  # close minus the close lookback_bars before, in ATRs
    context: dict[str, Any]  # this bar's part of a fill's context (JSON values), built once


def zscore(before: Sequence[float], size: int, current: float) -> float:
    """``current`` against the ``size`` values before it (population deviation; exactly
    rounded sums, so the batch and the incremental forms agree to the bit). ±inf when they
    are all equal and ``current`` is not; NaN until there are ``size`` of them."""
    if len(before) < size:
        return NAN
    mean = math.fsum(before) / size
    spread = math.sqrt(math.fsum([(v - mean) ** 2 for v in before]) / size)
    if spread == 0.0:
        return 0.0 if current == mean else math.copysign(math.inf, current - mean)
    return (current - mean) / spread


def bar_snapshot(
    config: LabelConfig,
    *,
    open_ns: int,
    close: float,
    volume: float,
    atr: float,
    atr_rank: float,
    sma: float,
    sma_before: float,
    close_before: float,
    volumes_before: Sequence[float],
    rsi: float,
    bollinger: tuple[float, float],
    donchian: tuple[float, float],
) -> BarSnapshot:
    """The snapshot of a bar from its raw indicator values: ``atr_rank`` the percentile rank
    of its ATR/close among the last rank_window (NaN: too few), ``sma_before`` the SMA
    slope_bars before, ``close_before`` the close lookback_bars before, ``volumes_before``
    the window volumes before this bar, ``bollinger`` (upper, lower), ``donchian`` (high,
    low)."""
    return snapshot_of(
        config, open_ns, close, volume, atr, atr_rank, sma, sma_before, close_before,
        volumes_before, rsi, bollinger[0], bollinger[1], donchian[0], donchian[1],
    )  # fmt: skip


def snapshot_of(
    config: LabelConfig, open_ns: int, close: float, volume: float, atr: float, rank: float,
    sma: float, sma_before: float, close_before: float, volumes_before: Sequence[float],
    rsi: float, upper: float, lower: float, high: float, low: float,
) -> BarSnapshot:  # fmt: skip
    """:func:`bar_snapshot` of positional values (:meth:`BarStream.update_raw`'s order)."""
    vol, trend_cfg, volume_cfg = config.volatility, config.trend, config.volume
    regime = None
    if rank == rank:
        regime = (
            "high"
            if rank >= vol.high_percentile
            else "low"
            if rank <= vol.low_percentile
            else "medium"
        )
    to_sma = (close - sma) / atr
    slope = 100.0 * (sma / sma_before - 1.0)
    trend = None
    if to_sma == to_sma and slope == slope:
        trend = "sideways"
        if to_sma > trend_cfg.band_atr and slope > 0:
            trend = "uptrend"
        elif to_sma < -trend_cfg.band_atr and slope < 0:
            trend = "downtrend"
    z = zscore(volumes_before, volume_cfg.window, volume)
    profile = None
    if z == z:
        profile = "high" if z >= volume_cfg.high_z else "low" if z <= volume_cfg.low_z else "medium"
    atr_pct = 100.0 * atr / close
    momentum = (close - close_before) / atr
    ok = math.isfinite
    # CONTEXT_KEYS in order (JSON null: a number not finite, a part the fill adds)
    context = {
        "volatility_regime": regime,
        "market_session": None,
        "trend": trend,
        "volume_profile": profile,
        "price_level": None,
        "bar_open": (EPOCH + timedelta(microseconds=open_ns // 1000)).isoformat(),
        "close": close if ok(close) else None,
        "atr": atr if ok(atr) else None,
        "atr_pct": atr_pct if ok(atr_pct) else None,
        "atr_pct_rank": rank if ok(rank) else None,
        "sma": sma if ok(sma) else None,
        "close_vs_sma_atr": to_sma if ok(to_sma) else None,
        "sma_slope_pct": slope if ok(slope) else None,
        "volume": volume if ok(volume) else None,
        "volume_z": z if ok(z) else None,
        "donchian_high": high if ok(high) else None,
        "donchian_low": low if ok(low) else None,
        "to_high_atr": None,
        "to_low_atr": None,
        "rsi": rsi if ok(rsi) else None,
        "bollinger_upper": upper if ok(upper) else None,
        "bollinger_lower": lower if ok(lower) else None,
        "momentum_atr": momentum if ok(momentum) else None,
    }
    return _Snapshot(  # type: ignore[return-value]
        open_ns, close, atr, atr_pct, rank, regime, sma, to_sma, slope, trend, volume, z,
        profile, high, low, rsi, upper, lower, momentum, context,
    )  # fmt: skip


class _Snapshot:
    """A BarSnapshot's slots stored in turn (its fields' order), then the object made the
    BarSnapshot it is laid out as (``__class__`` changes only between classes of the same
    slots: TypeError otherwise, here at import); a third of the frozen dataclass's
    ``__init__`` (twenty ``object.__setattr__`` calls)."""

    __slots__ = tuple(f.name for f in fields(BarSnapshot))

    def __init__(
        self, open_ns: int, close: float, atr: float, atr_pct: float, atr_pct_rank: float,
        volatility_regime: str | None, sma: float, close_vs_sma_atr: float,
        sma_slope_pct: float, trend: str | None, volume: float, volume_z: float,
        volume_profile: str | None, donchian_high: float, donchian_low: float, rsi: float,
        bollinger_upper: float, bollinger_lower: float, momentum_atr: float,
        context: dict[str, Any],
    ) -> None:  # fmt: skip
        self.open_ns = open_ns
        self.close = close
        self.atr = atr
        self.atr_pct = atr_pct
        self.atr_pct_rank = atr_pct_rank
        self.volatility_regime = volatility_regime
        self.sma = sma
        self.close_vs_sma_atr = close_vs_sma_atr
        self.sma_slope_pct = sma_slope_pct
        self.trend = trend
        self.volume = volume
        self.volume_z = volume_z
        self.volume_profile = volume_profile
        self.donchian_high = donchian_high
        self.donchian_low = donchian_low
        self.rsi = rsi
        self.bollinger_upper = bollinger_upper
        self.bollinger_lower = bollinger_lower
        self.momentum_atr = momentum_atr
        self.context = context
        self.__class__ = BarSnapshot  # type: ignore[assignment]


if type(_Snapshot(*_Snapshot.__slots__)) is not BarSnapshot:
    raise TypeError("market_context makes BarSnapshots through their layout: it changed")

__all__ = ["CONTEXT_KEYS", "EPOCH", "NAN", "BarSnapshot", "bar_snapshot", "snapshot_of", "zscore"]
