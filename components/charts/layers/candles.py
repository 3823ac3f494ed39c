"""The candles layer: the candle and volume traces of ``components.charts.candles.candle_figure``.

>>> [t.id for t in CandlesLayer().traces(data, DARK)][:3]
['candles:closed', 'candles:forming', 'candles:volume_up']

Always the first layer (:func:`compose` puts it there), so these are traces 0-4, the indices
``candle_delta`` and assets/chart_view.js patch. With ``data.show_forming`` False the forming
traces are present but empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import plotly.graph_objects as go

from components.charts.candles import _forming_values, compact
from components.charts.layers.base import (
    PRICE,
    VOLUME,
    ChartData,
    Columns,
    LayerTrace,
    Panel,
    register_layer,
)
from components.charts.theme import ChartTheme, rgba

CLOSED_ID = "candles:closed"
FORMING_ID = "candles:forming"
VOLUME_UP_ID = "candles:volume_up"
VOLUME_DOWN_ID = "candles:volume_down"
VOLUME_FORMING_ID = "candles:volume_forming"
TRACE_IDS = (CLOSED_ID, FORMING_ID, VOLUME_UP_ID, VOLUME_DOWN_ID, VOLUME_FORMING_ID)


@register_layer
@dataclass(frozen=True)
class CandlesLayer:
    """Closed candles, the forming candle, and volume split up/down (plus the forming volume)."""

    kind: ClassVar[str] = "candles"

    def panels(self, data: ChartData) -> list[Panel]:
        return [Panel(PRICE, 0.78), Panel(VOLUME, 0.22)]

    def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
        closed = data.candles
        columns = _closed_columns(data, closed)
        fx, fo, fh, fl, fc, fv = _forming_values(data.shown_forming, data.timeframe)
        forming_style = {
            "line": {"color": theme.forming, "width": 1.5},
            "fillcolor": rgba(theme.forming, 0.25),
        }
        candles = go.Candlestick(
            **columns[CLOSED_ID],
            name=data.symbol,
            increasing={"line": {"color": theme.up, "width": 1}, "fillcolor": theme.up},
            decreasing={"line": {"color": theme.down, "width": 1}, "fillcolor": theme.down},
            _validate=False,  # compose validates each trace once, when it adds it
        )
        forming = go.Candlestick(
            x=fx,
            open=fo,
            high=fh,
            low=fl,
            close=fc,
            name="forming",
            increasing=forming_style,
            decreasing=forming_style,
            _validate=False,
        )
        volume = [
            go.Bar(
                **columns[trace_id],
                name=name,
                marker={"color": rgba(color, theme.volume_alpha), "line": {"width": 0}},
                showlegend=False,
                hovertemplate="volume %{y:,.0f}<extra></extra>",
                _validate=False,
            )
            for trace_id, name, color in (
                (VOLUME_UP_ID, "volume up", theme.up),
                (VOLUME_DOWN_ID, "volume down", theme.down),
            )
        ]
        forming_volume = go.Bar(
            x=fx,
            y=fv,
            name="forming volume",
            showlegend=False,
            marker={"color": rgba(theme.forming, 0.6), "line": {"width": 0}},
            hovertemplate="forming volume %{y:,.0f}<extra></extra>",
            _validate=False,
        )
        return [
            LayerTrace(CLOSED_ID, PRICE, candles),
            LayerTrace(FORMING_ID, PRICE, forming),
            LayerTrace(VOLUME_UP_ID, VOLUME, volume[0]),
            LayerTrace(VOLUME_DOWN_ID, VOLUME, volume[1]),
            LayerTrace(VOLUME_FORMING_ID, VOLUME, forming_volume),
        ]

    def extend(
        self, data: ChartData, since: pd.Timestamp | None, theme: ChartTheme
    ) -> dict[str, Columns]:
        return _closed_columns(data, data.candles.iloc[data.after(since) :])

    def replace(self, data: ChartData, theme: ChartTheme) -> dict[str, Columns]:
        fx, fo, fh, fl, fc, fv = _forming_values(data.shown_forming, data.timeframe)
        return {
            FORMING_ID: {"x": fx, "open": fo, "high": fh, "low": fl, "close": fc},
            VOLUME_FORMING_ID: {"x": fx, "y": fv},
        }


def _closed_columns(data: ChartData, closed: pd.DataFrame) -> dict[str, Columns]:
    x = data.x(closed.index)
    up = (closed["close"] >= closed["open"]).to_numpy()
    volume = closed["volume"].to_numpy()
    out: dict[str, Columns] = {
        CLOSED_ID: {
            "x": x,
            "open": compact(closed["open"]),
            "high": compact(closed["high"]),
            "low": compact(closed["low"]),
            "close": compact(closed["close"]),
        }
    }
    for trace_id, mask in ((VOLUME_UP_ID, up), (VOLUME_DOWN_ID, ~up)):
        out[trace_id] = {
            "x": [v for v, keep in zip(x, mask, strict=True) if keep],
            "y": compact(volume[mask]),
        }
    return out
