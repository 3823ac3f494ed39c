"""The signals layer: each strategy's entry and exit markers on the price panel.

>>> layer = StrategySignalLayer()
>>> [t.id for t in layer.traces(data, DARK)][:2]
['sig:ema_crossover(fast=12, slow=26):entry_long', 'sig:ema_crossover(fast=12, slow=26):exit_long']

One colour and one symbol pair per strategy (:meth:`StrategyView.style`): a long entry is
``<entry>-up`` under the bar, a short entry ``<entry>-down`` over it, a long exit (a sale) the
exit symbol over the bar, a short exit (a purchase) its ``-open`` form under it. Markers sit
half the bar's own range (at least 0.02% of its high) off the bar, so they never cover its
candle; a marker's place depends on its bar alone, so a live extend needs no older bars.
Only signals passing the view's filters are drawn (exits have confidence 1). Hover: strategy,
signal, price, confidence and the indicator values behind the signal, from ``customdata`` =
[price, confidence, *metadata] (so a live extend appends it too).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from components.charts.candles import compact
from components.charts.layers.base import (
    ChartData,
    Columns,
    StrategyLayer,
    StrategyView,
    clean,
    register_layer,
)
from components.charts.theme import ChartTheme
from strategies.signals import SIGNAL_COLUMNS

RANGE_FRACTION = 0.5  # of the bar's high-low range: the markers' distance from the bar
MIN_OFFSET = 2e-4  # of the bar's high: a bar without range (high == low) still gets a gap
_BELOW = frozenset({"entry_long", "exit_short"})  # purchases: under the bar
_WORDS = {
    "entry_long": "long entry",
    "exit_long": "long exit",
    "entry_short": "short entry",
    "exit_short": "short exit",
}


def signal_id(view: StrategyView, signal_type: str) -> str:
    """``sig:<label>:<signal type>``."""
    return f"sig:{view.label}:{signal_type}"


def marker_symbol(symbols: tuple[str, str], signal_type: str) -> str:
    """The plotly symbol of a signal type from a strategy's (entry stem, exit symbol).

    >>> [marker_symbol(("triangle", "x"), t) for t in ("entry_short", "exit_short")]
    ['triangle-down', 'x-open']
    """
    entry, exit_ = symbols
    return {
        "entry_long": f"{entry}-up",
        "entry_short": f"{entry}-down",
        "exit_long": exit_,
        "exit_short": f"{exit_}-open",
    }[signal_type]


def marker_offsets(candles: pd.DataFrame, bars: np.ndarray) -> np.ndarray:
    """How far off the bar its markers sit, for each of `bars` (positions in `candles`).

    >>> marker_offsets(candles, np.array([0]))        # a bar of high 102, low 100
    array([1.])
    """
    bars = np.asarray(bars, dtype=np.int64)
    high = candles["high"].to_numpy(np.float64)[bars]
    low = candles["low"].to_numpy(np.float64)[bars]
    return np.maximum(RANGE_FRACTION * (high - low), MIN_OFFSET * np.abs(high))


def signal_columns(
    data: ChartData, view: StrategyView, signal_type: str, since: pd.Timestamp | None
) -> Columns:
    """x, y (marker place) and customdata of the signals of one type after `since` (None:
    all) that pass the view's filters and fall on one of the chart's candles."""
    result = view.result
    if result is None or signal_type not in view.signal_types:
        return {"x": [], "y": [], "customdata": []}
    frame = result.frame
    start = 0 if since is None else int(frame.index.searchsorted(since, side="right"))
    rows = np.flatnonzero(frame[signal_type].to_numpy()[start:]) + start
    if not rows.size:  # the usual case on a live tick: no signal of this type in the new bars
        return {"x": [], "y": [], "customdata": []}
    if signal_type.startswith("entry"):
        confidence = frame["confidence"].to_numpy(np.float64)[rows]
    else:
        confidence = np.ones(len(rows))
    keep = confidence >= view.min_confidence
    rows, confidence = rows[keep], confidence[keep]
    bars = data.candles.index.get_indexer(frame.index[rows])
    on_chart = bars >= 0
    rows, confidence, bars = rows[on_chart], confidence[on_chart], bars[on_chart]
    offsets = marker_offsets(data.candles, bars)
    if signal_type in _BELOW:
        y = data.candles["low"].to_numpy(np.float64)[bars] - offsets
    else:
        y = data.candles["high"].to_numpy(np.float64)[bars] + offsets
    columns = [clean(result.prices[rows]), clean(confidence)]
    columns += [clean(np.asarray(values)[rows]) for values in result.metadata_columns.values()]
    return {
        "x": data.x(frame.index[rows]),
        "y": compact(y),
        "customdata": [list(row) for row in zip(*columns, strict=True)],
    }


@register_layer
@dataclass(frozen=True)
class StrategySignalLayer(StrategyLayer):
    """Markers for every strategy in ``data.strategies`` x every signal type (empty traces
    included: a live extend always has a target)."""

    kind: ClassVar[str] = "signals"
    kinds: ClassVar[tuple[str, ...]] = SIGNAL_COLUMNS

    trace_id = staticmethod(signal_id)
    columns = staticmethod(signal_columns)

    def trace(
        self, view: StrategyView, position: int, kind: str, columns: Columns, theme: ChartTheme
    ) -> go.Scatter:
        color, symbols = view.style(theme, position)
        names = [] if view.result is None else list(view.result.metadata_columns)
        return go.Scatter(
            x=columns["x"],
            y=columns["y"],
            customdata=columns["customdata"],
            mode="markers",
            name=view.label,
            legendgroup=f"sig:{view.label}",
            showlegend=kind == SIGNAL_COLUMNS[0],
            marker={
                "symbol": marker_symbol(symbols, kind),
                "color": color,
                "size": 11 if kind.startswith("entry") else 9,
                "line": {"color": color, "width": 1.5},
            },
            hovertemplate=_hovertemplate(view.label, kind, names),
            _validate=False,
        )


def _hovertemplate(label: str, signal_type: str, names: list[str]) -> str:
    lines = [
        f"<b>{html.escape(label)}</b> {_WORDS[signal_type]}",
        "price %{customdata[0]:,.6~g}",
        "confidence %{customdata[1]:.2f}",
    ]
    lines += [
        f"{html.escape(name)} %{{customdata[{i}]:,.6~g}}" for i, name in enumerate(names, start=2)
    ]
    return "<br>".join(lines) + "<extra></extra>"
