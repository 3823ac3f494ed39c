"""Prices read from a symbol's bars for many instants at once (docs/tca.md#market-data).

>>> market = Market(candles, ["BTC", "ETH"], settings)   # candles: symbol -> bars
>>> rows = market.rows(codes, times_ns)                    # codes: index into the symbols
>>> price, why = market.close_holding(rows, instants_ns)

Bars are indexed by their open time (UTC) with ``open high low close volume``. A bar holds the
instants [open, open + bar length); the bar length is ``settings.bar_length`` or the smallest
spacing of the symbol's bars. Each lookup answers a price (NaN where none) and a reason code
per instant (``OK`` or why there is none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.tca._kernels import time_order
from analytics.tca.conventions import DEFAULT_BAR_LENGTH, TCASettings
from analytics.tca.inputs import NAT, to_ns

OK, NO_CANDLES, NO_BAR, TOO_LATE, NO_VOLUME = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class SymbolBars:
    opens: np.ndarray  # int64 ns, increasing
    open: np.ndarray
    close: np.ndarray
    length_ns: int
    # prefix sums (one leading 0) of the typical price, volume x typical price and volume, in
    # extended precision so that a difference over a few bars keeps the digits a sum would
    sum_typical: np.ndarray
    sum_volume_typical: np.ndarray
    sum_volume: np.ndarray

    @classmethod
    def of(cls, bars: pd.DataFrame, bar_length: pd.Timedelta | None) -> SymbolBars:
        if not bars.index.is_monotonic_increasing:
            bars = bars.sort_index(kind="stable")
        opens, _ = to_ns(pd.DatetimeIndex(bars.index))
        high, low, close, volume = (
            bars[c].to_numpy(dtype=float) for c in ("high", "low", "close", "volume")
        )
        typical = (high + low + close) / 3.0
        if bar_length is not None:
            length = pd.Timedelta(bar_length).value
        else:
            steps = np.diff(opens)
            steps = steps[steps > 0]
            length = int(steps.min()) if len(steps) else DEFAULT_BAR_LENGTH.value

        def prefix(values: np.ndarray) -> np.ndarray:
            out = np.zeros(len(values) + 1, np.longdouble)
            np.cumsum(values, dtype=np.longdouble, out=out[1:])
            return out

        return cls(
            opens, bars["open"].to_numpy(dtype=float), close, length,
            prefix(typical), prefix(volume * typical), prefix(volume),
        )  # fmt: skip


Rows = list[tuple[SymbolBars, np.ndarray]]  # each symbol's bars, its rows in time order


class Market:
    """The bars of each symbol of an analysis (None: no candles for it)."""

    def __init__(
        self,
        candles: Mapping[str, pd.DataFrame],
        symbols: Sequence[str],
        settings: TCASettings,
    ) -> None:
        self.settings = settings
        self.bars: list[SymbolBars | None] = []
        for symbol in symbols:
            frame = candles.get(symbol)
            ok = frame is not None and len(frame) > 0
            self.bars.append(SymbolBars.of(frame, settings.bar_length) if ok else None)

    def rows(self, codes: np.ndarray, times: np.ndarray, by_time: np.ndarray | None = None) -> Rows:
        """The rows of each symbol with candles (``codes``: each row's symbol), in the order
        of ``times`` (``by_time``, when known): the lookups' binary searches then walk their
        bars forward."""
        small = codes.astype(np.int16 if len(self.bars) < 2**15 else np.int64)
        if by_time is None:
            by_time = time_order(times)
        order = by_time[np.argsort(small[by_time], kind="stable")]  # a radix sort for int16
        bounds = np.searchsorted(small[order], np.arange(len(self.bars) + 1))
        return [
            (bars, order[bounds[code] : bounds[code + 1]])
            for code, bars in enumerate(self.bars)
            if bars is not None and bounds[code + 1] > bounds[code]
        ]

    def open_at_or_after(self, rows: Rows, instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The open of the first bar opening at or after each instant, at most
        ``settings.max_bar_wait`` later (``TOO_LATE`` beyond)."""
        price, why = np.full(len(instants), np.nan), np.full(len(instants), NO_CANDLES, np.int8)
        wait = self.settings.max_bar_wait
        for bars, at_rows in rows:
            at = instants[at_rows]
            k = np.searchsorted(bars.opens, at, side="left")
            found = (k < len(bars.opens)) & (at != NAT)
            kk = np.where(found, k, 0)
            late = found & (wait is not None) & (bars.opens[kk] - at > _ns(wait))
            good = found & ~late
            price[at_rows] = np.where(good, bars.open[kk], np.nan)
            why[at_rows] = np.where(good, OK, np.where(late, TOO_LATE, NO_BAR))
        return price, why

    def close_holding(self, rows: Rows, instants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The close of the bar holding each instant (open <= instant < open + length)."""
        price, why = np.full(len(instants), np.nan), np.full(len(instants), NO_CANDLES, np.int8)
        for bars, at_rows in rows:
            at = instants[at_rows]
            k = np.searchsorted(bars.opens, at, side="right") - 1
            kk = np.maximum(k, 0)
            held = (k >= 0) & (at != NAT) & (at - bars.opens[kk] < bars.length_ns)
            price[at_rows] = np.where(held, bars.close[kk], np.nan)
            why[at_rows] = np.where(held, OK, NO_BAR)
        return price, why

    def interval(
        self, rows: Rows, start: np.ndarray, stop: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """VWAP and TWAP of the typical price over the bars opening in [start, stop], and the
        reason codes of each (``NO_BAR`` when none opens there, ``NO_VOLUME`` for a VWAP over
        bars without volume)."""
        n = len(start)
        vwap, twap = np.full(n, np.nan), np.full(n, np.nan)
        why_vwap, why_twap = np.full(n, NO_CANDLES, np.int8), np.full(n, NO_CANDLES, np.int8)
        for bars, at_rows in rows:
            a, b = start[at_rows], stop[at_rows]
            lo = np.searchsorted(bars.opens, a, side="left")
            hi = np.searchsorted(bars.opens, b, side="right")
            count = np.where((a != NAT) & (b != NAT), hi - lo, 0)
            hi = np.maximum(hi, lo)
            some = count > 0
            volume = (bars.sum_volume[hi] - bars.sum_volume[lo]).astype(float)
            weighted = (bars.sum_volume_typical[hi] - bars.sum_volume_typical[lo]).astype(float)
            plain = (bars.sum_typical[hi] - bars.sum_typical[lo]).astype(float)
            traded = some & (volume > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                vwap[at_rows] = np.where(traded, weighted / volume, np.nan)
                twap[at_rows] = np.where(some, plain / np.maximum(count, 1), np.nan)
            why_twap[at_rows] = np.where(some, OK, NO_BAR)
            why_vwap[at_rows] = np.where(traded, OK, np.where(some, NO_VOLUME, NO_BAR))
        return vwap, twap, why_vwap, why_twap


def _ns(delta: pd.Timedelta) -> int:
    return pd.Timedelta(delta).value


__all__ = ["NO_BAR", "NO_CANDLES", "NO_VOLUME", "OK", "TOO_LATE", "Market", "Rows", "SymbolBars"]
