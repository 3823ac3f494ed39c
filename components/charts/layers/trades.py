"""The trades layer: each closed trade a segment from its entry to its exit, coloured by PnL.

>>> [t.id for t in TradeLayer().traces(data, DARK)]
['trade:ema_crossover(fast=12, slow=26):win', 'trade:ema_crossover(fast=12, slow=26):loss']

Two traces per strategy, winners (pnl > 0, the theme's profit colour) and the rest (loss
colour), each one scatter of segments separated by None (cheap: two traces, however many
trades). A live extend appends the trades that closed after the tab's last bar.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from components.charts.layers.base import (
    ChartData,
    Columns,
    StrategyLayer,
    StrategyView,
    clean,
    register_layer,
)
from components.charts.theme import ChartTheme

OUTCOMES = ("win", "loss")


def trade_id(view: StrategyView, outcome: str) -> str:
    """``trade:<label>:win`` or ``trade:<label>:loss``."""
    return f"trade:{view.label}:{outcome}"


def trade_columns(
    data: ChartData, view: StrategyView, outcome: str, since: pd.Timestamp | None
) -> Columns:
    """x, y, customdata of the winning or losing trades that closed after `since` (None: all),
    by exit time: ``[entry, exit, None]`` per trade."""
    trades = view.trades
    if trades is None or not len(trades):
        return {"x": [], "y": [], "customdata": []}
    if since is not None:
        exits = trades["exit_time"]
        if exits.iat[-1] <= since and exits.is_monotonic_increasing:
            return {"x": [], "y": [], "customdata": []}  # fast path: one position at a time
        after = (exits > since).to_numpy()
        if not after.any():  # the usual live tick: no trade closed in the new bars
            return {"x": [], "y": [], "customdata": []}
        trades = trades[after]
    trades = trades.sort_values(["exit_time", "entry_time"], kind="stable")
    pnl = trades["pnl"].to_numpy(np.float64)
    keep = pnl > 0 if outcome == "win" else ~(pnl > 0)
    trades = trades[keep]
    entry_x = data.x(pd.DatetimeIndex(trades["entry_time"]))
    exit_x = data.x(pd.DatetimeIndex(trades["exit_time"]))
    entry_price, exit_price = clean(trades["entry_price"]), clean(trades["exit_price"])
    rows = zip(
        trades["side"].astype(str).tolist(),
        entry_x,
        exit_x,
        entry_price,
        exit_price,
        clean(trades["pnl"]),
        clean(trades["return_pct"].to_numpy(np.float64) * 100.0),
        trades["exit_reason"].astype(str).tolist(),
        strict=True,
    )
    x: list = []
    y: list = []
    customdata: list = []
    for row in rows:
        x += [row[1], row[2], None]
        y += [row[3], row[4], None]
        customdata += [list(row), list(row), None]
    return {"x": x, "y": y, "customdata": customdata}


@register_layer
@dataclass(frozen=True)
class TradeLayer(StrategyLayer):
    """Entry-to-exit segments of every strategy's ``trades`` (TRADE_COLUMNS frames)."""

    kind: ClassVar[str] = "trades"
    kinds: ClassVar[tuple[str, ...]] = OUTCOMES

    trace_id = staticmethod(trade_id)
    columns = staticmethod(trade_columns)

    def trace(
        self, view: StrategyView, position: int, kind: str, columns: Columns, theme: ChartTheme
    ) -> go.Scatter:
        color = theme.profit if kind == "win" else theme.loss
        return go.Scatter(
            **columns,
            mode="lines+markers",
            name=f"{view.label} trades",
            legendgroup=f"trade:{view.label}",
            showlegend=kind == OUTCOMES[0],
            line={"color": color, "width": 1.5, "dash": "dot"},
            marker={"color": color, "size": 5},
            hovertemplate=_hovertemplate(view.label),
            _validate=False,
        )


def _hovertemplate(label: str) -> str:
    return (
        f"<b>{html.escape(label)}</b> %{{customdata[0]}} trade"
        "<br>entry %{customdata[1]} @ %{customdata[3]:,.6~g}"
        "<br>exit %{customdata[2]} @ %{customdata[4]:,.6~g} (%{customdata[7]})"
        "<br>PnL %{customdata[5]:,.2f} · %{customdata[6]:+.2f}%<extra></extra>"
    )
