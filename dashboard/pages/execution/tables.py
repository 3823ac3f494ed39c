"""What the Execution page shows as grids and text: the TCA grid's rows and columns, the key
figures, the n/a reasons, the status line, the link's view.

Plain functions of plain values and frames (no callback, no database): tests call them
directly. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from components.charts.theme import ChartTheme
from components.panels.performance import trade_table_style
from dashboard.pages.parts import finite as _finite
from services.execution_views import GROUP_BY

GRID_ROWS_MAX = 20_000  # the latest orders shown in the grid (the figures take them all)
# (field, header, decimals, kind): kind "cost" (+ = cost, loss colour), "gain" (+ = good)
GRID_METRICS = (
    ("fill_rate_pct", "Fill %", 1, ""),
    ("arrival_slippage_bps", "Arrival slip.", 2, "cost"),
    ("is_bps", "IS total", 2, "cost"),
    ("is_delay_bps", "IS delay", 2, "cost"),
    ("is_trading_bps", "IS trading", 2, "cost"),
    ("is_opportunity_bps", "IS opport.", 2, "cost"),
    ("is_fees_bps", "IS fees", 2, "cost"),
    ("vs_vwap_bps", "vs VWAP", 2, "cost"),
    ("vs_twap_bps", "vs TWAP", 2, "cost"),
    ("latency_s", "Latency s", 3, ""),
    ("execution_time_s", "Exec. s", 1, ""),
    ("quality_score", "Score", 1, ""),
)
HEADER_TIPS = {
    "arrival_slippage_bps": "s x (avg fill - arrival) / arrival, bps; + = cost",
    "is_bps": "implementation shortfall vs the decision price, bps of Q x decision; + = cost",
    "is_delay_bps": "decision to arrival, on the filled quantity",
    "is_trading_bps": "arrival to the fills",
    "is_opportunity_bps": "the unfilled quantity valued at the order's end",
    "is_fees_bps": "fees, bps of the decision notional",
    "vs_vwap_bps": "s x (avg fill - interval VWAP) / VWAP; + = worse than VWAP",
    "vs_twap_bps": "s x (avg fill - interval TWAP) / TWAP; + = worse than TWAP",
    "latency_s": "decision to arrival",
    "execution_time_s": "arrival to the last fill",
    "quality_score": "100 x fill rate x clip(0.5 - slippage / 50 bps, 0, 1)",
}


def _time(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def markout_fields(orders: pd.DataFrame) -> list[str]:
    """The report's markout columns, shortest horizon first (as it writes them)."""
    return [c for c in orders.columns if c.startswith("markout_") and c.endswith("_bps")]


def order_rows(
    orders: pd.DataFrame, first_fill: pd.Series, limit: int = GRID_ROWS_MAX
) -> list[dict[str, Any]]:
    """One grid row per order (``order_id`` the row id) with its first fill's time
    (``first_fill``: by order id), the latest ``limit`` by that time (unfilled orders first)."""
    times = orders["order_id"].map(first_fill)
    if len(orders) > limit:
        latest = times.fillna(pd.Timestamp.min.tz_localize("UTC")).argsort(kind="stable")
        orders, times = orders.iloc[latest[-limit:]], times.iloc[latest[-limit:]]
    markouts = markout_fields(orders)
    numeric = [f for f, *_ in GRID_METRICS if f != "fill_rate_pct"] + markouts
    rows = []
    for order, first in zip(orders.to_dict("records"), times, strict=True):
        row = {
            "order_id": str(order["order_id"]),
            "first_fill": _time(first),
            "symbol": order["symbol"],
            "side": order["side"],
            "order_type": order.get("order_type") or "",
            "venue": order.get("venue") or "",
            "algo": order.get("algo") or "",
            "strategy": order.get("strategy_id") or "",
            "qty": _finite(order["order_qty"]),
            "filled": _finite(order["filled_qty"]),
            "fill_rate_pct": None if (r := _finite(order["fill_rate"])) is None else r * 100,
            "reason": order.get("reason") or "",
        }
        row.update({field: _finite(order.get(field)) for field in numeric})
        rows.append(row)
    return rows


def _format(decimals: int, sign: bool = False) -> dict[str, str]:
    spec = f"{'+' if sign else ''},.{decimals}f"
    return {"function": f"params.value == null ? 'n/a' : d3.format('{spec}')(params.value)"}


def _tone(theme: ChartTheme, cost: bool) -> dict[str, str]:
    bad, good = (theme.loss, theme.profit) if cost else (theme.profit, theme.loss)
    return {
        "function": f"params.value > 0 ? {{color: '{bad}'}} : "
        f"params.value < 0 ? {{color: '{good}'}} : null"
    }


_NUMERIC = {"type": "rightAligned", "filter": "agNumberColumnFilter", "minWidth": 86}
_TEXT = {"cellDataType": "text", "filter": "agTextColumnFilter"}


def order_columns(theme: ChartTheme, markouts: list[str]) -> list[dict[str, Any]]:
    """The TCA grid's columns: identity, quantities, every cost (bps, + = cost, in the loss
    colour), markouts (+ = the price moved in the trade's favour), times, score, n/a reason."""
    columns: list[dict[str, Any]] = [
        {"field": "order_id", "headerName": "Order", "minWidth": 150, "pinned": "left",
         "tooltipField": "order_id", **_TEXT},
        {"field": "first_fill", "headerName": "First fill (UTC)", "minWidth": 150, **_TEXT},
        {"field": "symbol", "headerName": "Symbol", "minWidth": 84},
        {"field": "side", "headerName": "Side", "minWidth": 66},
        {"field": "qty", "headerName": "Qty", **_NUMERIC,
         "valueFormatter": {"function": "params.value == null ? '' : "
                                        "d3.format(',.6~f')(params.value)"}},
    ]  # fmt: skip
    for field, header, decimals, kind in GRID_METRICS:
        if field == "latency_s":  # the markouts before the times
            columns += [_markout_column(theme, m) for m in markouts]
        column = {
            "field": field,
            "headerName": header,
            "valueFormatter": _format(decimals, sign=bool(kind)),
            **_NUMERIC,
        }
        if kind:
            column["cellStyle"] = _tone(theme, kind == "cost")
        if field in HEADER_TIPS:
            column["headerTooltip"] = HEADER_TIPS[field]
        columns.append(column)
    columns += [
        {"field": "order_type", "headerName": "Type", "minWidth": 80},
        {"field": "venue", "headerName": "Venue", "minWidth": 80},
        {"field": "algo", "headerName": "Algo", "minWidth": 80},
        {"field": "strategy", "headerName": "Strategy", "minWidth": 110,
         "tooltipField": "strategy"},
        {"field": "reason", "headerName": "n/a because", "minWidth": 260, "flex": 3,
         "tooltipField": "reason", **_TEXT},
    ]  # fmt: skip
    return columns


def _markout_column(theme: ChartTheme, field: str) -> dict[str, Any]:
    label = field[len("markout_") : -len("_bps")]
    return {
        "field": field,
        "headerName": f"Mk {label}",
        "valueFormatter": _format(2, sign=True),
        "cellStyle": _tone(theme, cost=False),
        "headerTooltip": f"s x (close at fill + {label} - fill) / fill, bps; "
        "+ = the price moved in the trade's favour",
        **_NUMERIC,
    }


def grid_options(theme: ChartTheme, rows: int = 15) -> dict[str, Any]:
    """The performance panel's grid look (``dashGridOptions``, ``defaultColDef``,
    ``getRowId``) with the orders' id as the row id."""
    style = trade_table_style(theme)
    style["getRowId"] = "params.data.order_id"
    style["dashGridOptions"] = {
        **style["dashGridOptions"],
        "paginationPageSize": rows,
        "paginationPageSizeSelector": [rows, 50, 100, 500],
        "tooltipShowDelay": 400,
    }
    return style


def key_figures(overall: pd.DataFrame, summary: Mapping[str, Any]) -> Any:
    """A row of key figures: orders, fills, notional-weighted fill rate, arrival slippage and
    shortfall, the shortest markout, the decision quality shares (``overall``: the aggregate
    rows of every order as one group)."""
    stats = overall.set_index("metric") if len(overall) else pd.DataFrame()

    def weighted(metric: str) -> float | None:
        if metric not in stats.index:
            return None
        return _finite(stats.loc[metric, "weighted_mean"])

    def figure(label: str, value: str, note: str, slug: str, tone: str = "") -> dbc.Col:
        return dbc.Col(
            html.Div(
                [
                    html.Div(label, className="sl-kpi-label"),
                    html.Div(value, className=f"sl-kpi-value {tone}", id=f"ex-kpi-{slug}"),
                    html.Div(note, className="small sl-muted"),
                ],
                className="sl-kpi h-100 px-2 py-1",
            ),
            xs=6,
            md=4,
            xl=2,
        )

    def bps(metric: str) -> tuple[str, str]:
        value = weighted(metric)
        if value is None:
            return "n/a", ""
        return f"{value:+,.2f} bps", "sl-kpi-negative" if value > 0 else "sl-kpi-positive"

    fill = weighted("fill_rate")
    slip, slip_tone = bps("arrival_slippage_bps")
    shortfall, is_tone = bps("is_bps")
    first = summary.get("first_markout")
    trips = int(summary.get("round_trips", 0))
    quality = summary.get("quality", {})
    counts = "/".join(f"{quality.get(q, 0):,}" for q in ("good", "neutral", "bad"))
    return dbc.Row(
        [
            figure("Orders", f"{int(summary.get('orders', 0)):,}",
                   f"{int(summary.get('fills', 0)):,} fills", "orders"),
            figure("Fill rate", "n/a" if fill is None else f"{fill * 100:.1f}%",
                   "filled / ordered, weighted", "fill-rate"),
            figure("Arrival slippage", slip, "weighted · + = cost", "slippage", slip_tone),
            figure("Shortfall", shortfall, "vs decision · + = cost", "shortfall",
                   is_tone),
            figure(f"Markout {first[0]}" if first else "Markout",
                   "n/a" if not first or first[1] is None else f"{first[1]:+,.2f} bps",
                   "per fill · + = favourable", "markout"),
            figure("Good / neutral / bad", counts if trips else "n/a",
                   f"{trips:,} round trips" if trips else "no closed round trip", "decisions"),
        ],
        className="g-2 mb-2",
    )  # fmt: skip


def reasons_list(reasons: pd.DataFrame, left_out: Mapping[str, int], orders: int) -> Any:
    """Why metrics are n/a (each cause and the orders it holds for) and the orders the
    analysis left out."""
    items = [
        html.Li([html.Span(f"{int(n):,}", className="me-1 fw-semibold"), " ", html.Span(reason)],
                **{"data-reason": reason})
        for reason, n in reasons[["reason", "orders"]].itertuples(index=False)
    ]  # fmt: skip
    out = [
        html.Div(
            f"of {orders:,} orders; the metric is n/a (never 0) for these",
            className="small sl-muted",
        ),
        html.Ul(items, className="small mb-1 ps-3", id="ex-reasons-list")
        if items
        else html.Div("every metric is defined for every order", className="sl-hint"),
    ]
    if left_out:
        out.append(
            html.Div(
                "left out of the analysis: "
                + "; ".join(f"{n:,} {why}" for why, n in left_out.items()),
                className="small text-warning",
                id="ex-left-out",
            )
        )
    return out


def status_line(account: str, source: str, summary: Mapping[str, Any], shown: int) -> str:
    """What is shown: the account and its source, orders, fills, round trips, the span."""
    text = (
        f"account {account} ({source}) · {int(summary['orders']):,} orders, "
        f"{int(summary['fills']):,} fills, {int(summary['round_trips']):,} round trips"
    )
    if summary.get("start") and summary.get("end"):
        text += f" · {summary['start']} to {summary['end']}"
    if shown < int(summary["orders"]):
        text += f" · the grid holds the latest {shown:,}"
    return text


def query_view(search: str | None) -> dict[str, str]:
    """The view a link asks for: ``?account=..&by=..`` (unknown keys and a ``by`` not among
    the dimensions ignored; the last value of a repeated key)."""
    query = parse_qs((search or "").lstrip("?"))
    view = {k: query[k][-1] for k in ("account", "by") if query.get(k)}
    if view.get("by") not in GROUP_BY:
        view.pop("by", None)
    return view
