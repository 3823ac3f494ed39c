"""Candlestick + volume chart: a full figure, and the small patch a live tick sends.

Trace order is fixed, so a patch can address traces by index:
0 closed candles, 1 the forming candle, 2 up volume, 3 down volume, 4 forming volume.
Components never query anything: they receive frames and return figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Patch
from plotly.subplots import make_subplots

from market.candles import Candle
from market.timeframes import Timeframe

CLOSED, FORMING, VOLUME_UP, VOLUME_DOWN, VOLUME_FORMING = range(5)


@dataclass(frozen=True)
class ChartTheme:
    background: str = "#131722"
    grid: str = "#232837"
    text: str = "#b2b5be"
    up: str = "#26a69a"
    down: str = "#ef5350"
    forming: str = "#f0b90b"
    volume_alpha: float = 0.45


DARK = ChartTheme()


def x_labels(index: pd.DatetimeIndex, timeframe: Timeframe) -> list[str]:
    """Compact x values: dates for daily bars and above, minutes below (UTC, what plotly reads)."""
    fmt = "%Y-%m-%d" if timeframe.seconds >= 86400 else "%Y-%m-%d %H:%M"
    return list(index.strftime(fmt))


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def candle_figure(
    closed: pd.DataFrame,
    forming: Candle | None,
    *,
    symbol: str,
    timeframe: Timeframe,
    view_bars: int = 150,
    theme: ChartTheme = DARK,
) -> go.Figure:
    """The whole chart; the view opens on the last `view_bars` bars with the axes fitted."""
    x = x_labels(closed.index, timeframe)
    up = (closed["close"] >= closed["open"]).to_numpy()
    volume = closed["volume"].to_numpy()
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.78, 0.22], vertical_spacing=0.015
    )
    fig.add_trace(
        go.Candlestick(
            x=x,
            # plain lists, not numpy arrays: plotly would ship those as base64 typed arrays,
            # which a live patch's "extend" cannot append to
            open=closed["open"].tolist(),
            high=closed["high"].tolist(),
            low=closed["low"].tolist(),
            close=closed["close"].tolist(),
            name=symbol,
            increasing={"line": {"color": theme.up, "width": 1}, "fillcolor": theme.up},
            decreasing={"line": {"color": theme.down, "width": 1}, "fillcolor": theme.down},
        ),
        row=1,
        col=1,
    )
    fx, fo, fh, fl, fc, fv = _forming_values(forming, timeframe)
    forming_style = {
        "line": {"color": theme.forming, "width": 1.5},
        "fillcolor": _rgba(theme.forming, 0.25),
    }
    fig.add_trace(
        go.Candlestick(
            x=fx,
            open=fo,
            high=fh,
            low=fl,
            close=fc,
            name="forming",
            increasing=forming_style,
            decreasing=forming_style,
        ),
        row=1,
        col=1,
    )
    for name, mask, color in (("volume up", up, theme.up), ("volume down", ~up, theme.down)):
        fig.add_trace(
            go.Bar(
                x=[v for v, keep in zip(x, mask, strict=True) if keep],
                y=volume[mask].tolist(),
                name=name,
                marker={"color": _rgba(color, theme.volume_alpha), "line": {"width": 0}},
                showlegend=False,
                hovertemplate="volume %{y:,.0f}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.add_trace(
        go.Bar(
            x=fx,
            y=fv,
            name="forming volume",
            showlegend=False,
            marker={"color": _rgba(theme.forming, 0.6), "line": {"width": 0}},
            hovertemplate="forming volume %{y:,.0f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    _style(fig, closed, forming, symbol, timeframe, view_bars, theme)
    return fig


def _forming_values(forming: Candle | None, timeframe: Timeframe) -> tuple[list, ...]:
    if forming is None:
        return [], [], [], [], [], []
    x = x_labels(pd.DatetimeIndex([forming.ts]), timeframe)
    return x, [forming.open], [forming.high], [forming.low], [forming.close], [forming.volume]


def _style(
    fig: go.Figure,
    closed: pd.DataFrame,
    forming: Candle | None,
    symbol: str,
    timeframe: Timeframe,
    view_bars: int,
    theme: ChartTheme,
) -> None:
    axis = {
        "gridcolor": theme.grid,
        "zeroline": False,
        "showline": False,
        "color": theme.text,
        "showspikes": True,
        "spikecolor": "#787b86",
        "spikethickness": 1,
        "spikedash": "dot",
        "spikemode": "across",
        "spikesnap": "cursor",
    }
    fig.update_layout(
        template="none",
        uirevision=f"{symbol}|{timeframe.label}",  # keeps the trader's zoom across live patches
        paper_bgcolor=theme.background,
        plot_bgcolor=theme.background,
        font={
            "family": "Inter, system-ui, -apple-system, Segoe UI, sans-serif",
            "color": theme.text,
            "size": 12,
        },
        margin={"l": 10, "r": 72, "t": 10, "b": 30},  # room for the right-hand price scale
        showlegend=True,
        legend={
            "orientation": "h",
            "x": 0.0,
            "y": 1.0,
            "xanchor": "left",
            "yanchor": "top",
            "bgcolor": "rgba(0,0,0,0)",
        },
        hovermode="x unified",
        hoverlabel={"bgcolor": "#1e222d", "bordercolor": "#363a45", "font": {"color": "#d1d4dc"}},
        dragmode="pan",
        bargap=0.15,
        barmode="overlay",
    )
    fig.update_xaxes(**axis, rangeslider={"visible": False}, type="date")
    fig.update_yaxes(**axis, side="right", tickformat=",.2f", row=1, col=1)
    fig.update_yaxes(**axis, side="right", tickformat=".2s", row=2, col=1)
    if timeframe.seconds <= 86400 and len(closed) and not (closed.index.day_of_week >= 5).any():
        fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])  # a market closed on weekends
    _fit_view(fig, closed, forming, timeframe, view_bars)


def _fit_view(
    fig: go.Figure,
    closed: pd.DataFrame,
    forming: Candle | None,
    timeframe: Timeframe,
    view_bars: int,
) -> None:
    """Open on the most recent bars, with price and volume axes fitted to what is visible."""
    view = closed.iloc[-view_bars:]
    lows = list(view["low"].to_numpy())
    highs = list(view["high"].to_numpy())
    vols = list(view["volume"].to_numpy())
    last = view.index[-1] if len(view) else None
    if forming is not None:
        lows.append(forming.low)
        highs.append(forming.high)
        vols.append(forming.volume)
        last = forming.ts
    if last is None:
        return
    first = view.index[0] if len(view) else last
    right = last + timeframe.delta * 3  # room for the next bars
    fmt = "%Y-%m-%d %H:%M"
    fig.update_xaxes(range=[first.strftime(fmt), right.strftime(fmt)])
    low, high = float(np.min(lows)), float(np.max(highs))
    pad = (high - low) * 0.06 or high * 0.01
    fig.update_yaxes(range=[low - pad, high + pad], row=1, col=1)
    fig.update_yaxes(range=[0, float(np.max(vols)) * 1.15 or 1.0], row=2, col=1)


def candle_patch(
    new_closed: pd.DataFrame,
    forming: Candle | None,
    *,
    timeframe: Timeframe,
) -> Patch:
    """Only what changed: append the newly closed bars, replace the forming bar."""
    patch = Patch()
    if len(new_closed):
        x = x_labels(new_closed.index, timeframe)
        candles = patch["data"][CLOSED]
        candles["x"].extend(x)
        for column in ("open", "high", "low", "close"):
            candles[column].extend([float(v) for v in new_closed[column].to_numpy()])
        up = (new_closed["close"] >= new_closed["open"]).to_numpy()
        volume = new_closed["volume"].to_numpy()
        for trace, mask in ((VOLUME_UP, up), (VOLUME_DOWN, ~up)):
            if mask.any():
                patch["data"][trace]["x"].extend([v for v, k in zip(x, mask, strict=True) if k])
                patch["data"][trace]["y"].extend([float(v) for v in volume[mask]])
    fx, fo, fh, fl, fc, fv = _forming_values(forming, timeframe)
    patch["data"][FORMING].update({"x": fx, "open": fo, "high": fh, "low": fl, "close": fc})
    patch["data"][VOLUME_FORMING].update({"x": fx, "y": fv})
    return patch
