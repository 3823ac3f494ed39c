"""The executions layer: an account's real fills on the price panel, where they happened.

>>> [t.id for t in ExecutionLayer().traces(data, DARK)]
['exec:demo:buy', 'exec:demo:sell']

What the account actually traded (paper or live fills: ``data.executions``, account name ->
an :data:`EXECUTION_COLUMNS` frame), not what a strategy's backtest would have: each fill a
triangle at its own price on the bar it filled on (up for a buy, down for a sale), filled with
the theme's execution colours and outlined in the text colour, so it never reads as a strategy
marker (those sit off the bar, in the strategy's colour, on every signal). Hover: account,
side, price, quantity, fee, the order's purpose and id.

Fills are few, and the runner stores a bar's fills just after the chart can see that bar, so
a live tick *replaces* each trace with every fill the frame holds (the caller bounds it to the
chart's bars) rather than appending: a fill stored a moment late shows on the next bar.
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
    PRICE,
    ChartData,
    Columns,
    LayerTrace,
    Panel,
    register_layer,
)
from components.charts.theme import ChartTheme

# bar: open time (UTC) of the bar the fill happened on, on any timeframe up to the chart's
EXECUTION_COLUMNS = ("bar", "side", "price", "quantity", "fee", "purpose", "order")
SIDES = ("buy", "sell")
MARKER_SIZE = 13


def execution_id(account: str, side: str) -> str:
    """``exec:<account>:buy`` or ``exec:<account>:sell``."""
    return f"exec:{account}:{side}"


def empty_executions() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in EXECUTION_COLUMNS})


def execution_columns(data: ChartData, fills: pd.DataFrame, side: str) -> Columns:
    """x, y and customdata of the ``side`` fills of ``fills`` up to the chart's last closed
    bar, each on the chart's bar that holds it (its bucket on the chart's timeframe)."""
    if not len(fills) or not len(data.candles):
        return {"x": [], "y": [], "customdata": []}
    fills = fills[(fills["side"] == side).to_numpy()]
    bar_ms = pd.DatetimeIndex(fills["bar"]).as_unit("ms").asi8
    bucket = np.asarray(data.timeframe.bucket_start_ms(bar_ms), dtype=np.int64)
    last = int(data.candles.index[-1:].as_unit("ms").asi8[0])
    keep = bucket <= last
    fills, bucket = fills[keep], bucket[keep]
    if not len(fills):
        return {"x": [], "y": [], "customdata": []}
    price = fills["price"].to_numpy(np.float64)
    rows = zip(
        [side] * len(fills),
        compact(price),
        compact(fills["quantity"].to_numpy(np.float64)),
        compact(fills["fee"].to_numpy(np.float64)),
        fills["purpose"].fillna("").astype(str).tolist(),
        fills["order"].astype(str).tolist(),
        strict=True,
    )
    return {
        "x": data.x(pd.DatetimeIndex(pd.to_datetime(bucket, unit="ms", utc=True))),
        "y": compact(price),
        "customdata": [list(row) for row in rows],
    }


@register_layer
@dataclass(frozen=True)
class ExecutionLayer:
    """Buy and sell markers of every account in ``data.executions`` (empty traces included)."""

    kind: ClassVar[str] = "executions"

    def panels(self, data: ChartData) -> list[Panel]:
        return []

    def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
        return [
            LayerTrace(
                execution_id(account, side),
                PRICE,
                _trace(account, side, execution_columns(data, fills, side), theme),
            )
            for account, fills in data.executions.items()
            for side in SIDES
        ]

    def extend(
        self, data: ChartData, since: pd.Timestamp | None, theme: ChartTheme
    ) -> dict[str, Columns]:
        return {}

    def replace(self, data: ChartData, theme: ChartTheme) -> dict[str, Columns]:
        return {
            execution_id(account, side): execution_columns(data, fills, side)
            for account, fills in data.executions.items()
            for side in SIDES
        }


def _trace(account: str, side: str, columns: Columns, theme: ChartTheme) -> go.Scatter:
    buy = side == "buy"
    color = theme.execution_buy if buy else theme.execution_sell
    return go.Scatter(
        **columns,
        mode="markers",
        name=f"{account} fills",
        legendgroup=f"exec:{account}",
        showlegend=buy,
        marker={
            "symbol": "triangle-up" if buy else "triangle-down",
            "color": color,
            "size": MARKER_SIZE,
            "line": {"color": theme.execution_line, "width": 1.5},
        },
        hovertemplate=_hovertemplate(account),
        _validate=False,
    )


def _hovertemplate(account: str) -> str:
    return (
        f"<b>{html.escape(account)}</b> fill: %{{customdata[0]}}"
        " %{customdata[2]:,.6~g} @ %{customdata[1]:,.6~g}"
        "<br>fee %{customdata[3]:,.4~g} · %{customdata[4]}"
        "<br>order %{customdata[5]}<extra></extra>"
    )


__all__ = ["EXECUTION_COLUMNS", "SIDES", "ExecutionLayer", "empty_executions", "execution_id"]
