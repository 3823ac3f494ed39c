"""What the Attribution page shows as grids and text: the round trips' and the patterns' rows
and columns, a trade's fills, market context and labels, the status line.

Plain functions of plain values and frames (no callback, no database): tests call them
directly. Times are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from analytics.exports import format_duration
from components.charts.theme import ChartTheme
from components.panels.performance import price_decimals, trade_table_style
from dashboard.pages.parts import finite as _finite

CONTEXT_FIELDS = ("volatility_regime", "market_session", "trend", "volume_profile", "price_level")
# the numbers behind the context, as the annotator stores them (docs/labels.md)
CONTEXT_NUMBERS = (
    ("atr_pct", "ATR % of price"),
    ("atr_pct_rank", "ATR % rank"),
    ("rsi", "RSI"),
    ("close_vs_sma_atr", "close vs SMA [ATR]"),
    ("sma_slope_pct", "SMA slope %"),
    ("volume_z", "volume z"),
    ("to_high_atr", "to channel high [ATR]"),
    ("to_low_atr", "to channel low [ATR]"),
    ("momentum_atr", "momentum [ATR]"),
)


def _time(value: Any) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def trip_rows(trips: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per round trip (its ``trip_id`` the grid's row id); labels as one text."""
    rows = []
    for trip in trips.to_dict("records"):
        rows.append(
            {
                "trip_id": trip["trip_id"],
                "number": int(trip["number"]),
                "strategy": trip["strategy_id"],
                "symbol": trip["symbol"],
                "direction": trip["direction"],
                "entry_time": _time(trip["entry_time"]),
                "exit_time": _time(trip["exit_time"]),
                "entry_price": _finite(trip["entry_price"]),
                "exit_price": _finite(trip["exit_price"]),
                "volume": _finite(trip["volume"]),
                "net_pnl": _finite(trip["net_pnl"]),
                "return_pct": None if (r := _finite(trip["return"])) is None else r * 100,
                "fees": _finite(trip["fees"]),
                "mae_pct": None if (m := _finite(trip.get("mae"))) is None else m * 100,
                "mfe_pct": None if (m := _finite(trip.get("mfe"))) is None else m * 100,
                "holding": format_duration(trip["holding_s"]),
                "holding_s": _finite(trip["holding_s"]),
                "labels": ", ".join(trip["labels"] or ()),
                "regime": _text(trip.get("volatility_regime")),
                "session": _text(trip.get("market_session")),
            }
        )
    return rows


def pattern_rows(patterns: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per label combination (``key``, kind + labels, its row id): the combinations
    told from noise first, each part in the table's order (pairs, then sets, by net PnL)."""
    patterns = patterns.sort_values("noise", kind="stable")
    return [
        {
            "key": f"{p['kind']}:{p['labels']}",
            "kind": p["kind"],
            "labels": p["labels"],
            "trades": int(p["trades"]),
            "win_rate_pct": None if (w := _finite(p["win_rate"])) is None else w * 100,
            "net_pnl": _finite(p["net_pnl"]),
            "avg_net_pnl": _finite(p["avg_net_pnl"]),
            "t_stat": _finite(p["t_stat"]),
            "noise": "yes" if p["noise"] else "no",
        }
        for p in patterns.to_dict("records")
    ]


def _format(decimals: int, suffix: str = "", trim: bool = False) -> dict[str, str]:
    spec = f",.{decimals}{'~' if trim else ''}f"
    return {
        "function": f"params.value == null ? '' : d3.format('{spec}')(params.value) + '{suffix}'"
    }


def _signed(theme: ChartTheme) -> dict[str, str]:
    return {
        "function": f"params.value > 0 ? {{color: '{theme.profit}'}} : "
        f"params.value < 0 ? {{color: '{theme.loss}'}} : null"
    }


_NUMERIC = {"type": "rightAligned", "filter": "agNumberColumnFilter"}
# times as text ("2015-01-07 14:17"): AG Grid would infer a date column with a mm/dd/yy filter
_TEXT = {"cellDataType": "text", "filter": "agTextColumnFilter"}


def trip_columns(theme: ChartTheme, decimals: int = 2) -> list[dict[str, Any]]:
    """The round trips grid's columns; labels filter by "contains" (a floating filter box)."""
    price = _format(decimals)
    return [
        {"field": "number", "headerName": "#", "width": 70, "minWidth": 70, "flex": 0, **_NUMERIC},
        {"field": "entry_time", "headerName": "Entry (UTC)", "minWidth": 140, **_TEXT},
        {"field": "symbol", "headerName": "Symbol", "minWidth": 90},
        {"field": "direction", "headerName": "Side", "minWidth": 75},
        {
            "field": "net_pnl",
            "headerName": "Net PnL",
            "valueFormatter": _format(2),
            "cellStyle": _signed(theme),
            "minWidth": 100,
            **_NUMERIC,
        },
        {
            "field": "return_pct",
            "headerName": "Return",
            "valueFormatter": _format(2, "%"),
            "cellStyle": _signed(theme),
            "minWidth": 90,
            **_NUMERIC,
        },
        {
            "field": "labels",
            "headerName": "Labels",
            "minWidth": 220,
            "flex": 3,
            "filter": "agTextColumnFilter",
            "tooltipField": "labels",
        },
        {"field": "holding", "headerName": "Held", "minWidth": 80},
        {
            "field": "mae_pct",
            "headerName": "MAE",
            "valueFormatter": _format(2, "%"),
            "minWidth": 80,
            "headerTooltip": "worst move against the trade, % of entry",
            **_NUMERIC,
        },
        {
            "field": "mfe_pct",
            "headerName": "MFE",
            "valueFormatter": _format(2, "%"),
            "minWidth": 80,
            "headerTooltip": "best move for the trade, % of entry",
            **_NUMERIC,
        },
        {"field": "regime", "headerName": "Regime", "minWidth": 90},
        {"field": "exit_time", "headerName": "Exit (UTC)", "minWidth": 140, **_TEXT},
        {"field": "entry_price", "headerName": "Entry", "valueFormatter": price, **_NUMERIC},
        {"field": "exit_price", "headerName": "Exit", "valueFormatter": price, **_NUMERIC},
        {
            "field": "volume",
            "headerName": "Qty",
            "valueFormatter": _format(6, trim=True),
            **_NUMERIC,
        },
        {
            "field": "strategy",
            "headerName": "Strategy",
            "minWidth": 120,
            "tooltipField": "strategy",
        },
        {"field": "session", "headerName": "Session", "minWidth": 95},
        {"field": "trip_id", "headerName": "Trade id", "minWidth": 200, "tooltipField": "trip_id"},
    ]


def pattern_columns(theme: ChartTheme) -> list[dict[str, Any]]:
    """The patterns grid's columns; a noise row is greyed (too few trades or |t| < 2)."""
    return [
        {
            "field": "labels",
            "headerName": "Labels",
            "minWidth": 200,
            "flex": 4,
            "tooltipField": "labels",
            "filter": "agTextColumnFilter",
        },
        {"field": "kind", "headerName": "Kind", "minWidth": 62, "flex": 0, "width": 62},
        {"field": "trades", "headerName": "Trades", "minWidth": 72, **_NUMERIC},
        {
            "field": "win_rate_pct",
            "headerName": "Win %",
            "valueFormatter": _format(1),
            "minWidth": 70,
            **_NUMERIC,
        },
        {
            "field": "net_pnl",
            "headerName": "Net PnL",
            "valueFormatter": _format(2),
            "cellStyle": _signed(theme),
            "minWidth": 90,
            **_NUMERIC,
        },
        {
            "field": "avg_net_pnl",
            "headerName": "Avg",
            "valueFormatter": _format(2),
            "minWidth": 72,
            **_NUMERIC,
        },
        {
            "field": "t_stat",
            "headerName": "t",
            "valueFormatter": _format(2),
            "minWidth": 60,
            **_NUMERIC,
        },
        {"field": "noise", "headerName": "Noise?", "minWidth": 72, "flex": 0, "width": 76},
    ]


def grid_options(theme: ChartTheme, row_id: str, rows: int = 10, click: bool = False) -> dict:
    """The performance panel's grid look (``dashGridOptions``, ``defaultColDef``,
    ``getRowId``); ``click``: a click selects the row (the round trips)."""
    style = trade_table_style(theme)
    style["getRowId"] = f"params.data.{row_id}"
    options = {
        **style["dashGridOptions"],
        "paginationPageSize": rows,
        "paginationPageSizeSelector": [rows, 25, 50, 100],
        "tooltipShowDelay": 400,
    }
    if click:
        options["rowSelection"] = {
            "mode": "singleRow",
            "checkboxes": False,
            "enableClickSelection": True,
        }
    if row_id == "key":  # the patterns: noise greyed
        options["rowClassRules"] = {"sl-noise": "params.data.noise === 'yes'"}
    style["dashGridOptions"] = options
    return style


def trip_decimals(trips: pd.DataFrame) -> int:
    return price_decimals(trips["entry_price"]) if len(trips) else 2


def status_line(
    account: str,
    source: str | None,
    summary: Mapping[str, Any],
    trips: pd.DataFrame,
    strategy: str | None,
    label: str | None,
) -> str:
    """What is shown: the account, its filters, the round trips, their span, net PnL and win
    rate (the trade summary's)."""
    shown = f"account {account} ({source or 'unknown source'})"
    filters = [f"strategy {strategy}" if strategy else "", f"label {label}" if label else ""]
    if any(filters):
        shown += " · " + ", ".join(f for f in filters if f)
    n = int(summary.get("trades", 0))
    if not n:
        return f"{shown} · no closed round trip"
    span = f"{_time(trips['entry_time'].min())[:10]} to {_time(trips['exit_time'].max())[:10]}"
    return (
        f"{shown} · {n:,} round trips, {span} · net PnL {summary['net_pnl']:,.2f}"
        f" · win rate {summary['win_rate'] * 100:.1f}% · fees {summary['fees']:,.2f}"
    )


def fills_table(fills: pd.DataFrame, decimals: int = 2) -> Any:
    """A trade's fills: time, side, price, quantity, commission, realised PnL, labels."""
    head = html.Thead(
        html.Tr(
            [
                html.Th(h)
                for h in ("Time (UTC)", "Side", "Price", "Qty", "Fee", "Realised", "Labels")
            ]
        )
    )
    body = []
    for fill in fills.to_dict("records"):
        body.append(
            html.Tr(
                [
                    html.Td(_time(fill["time"])),
                    html.Td(fill["side"]),
                    html.Td(f"{fill['price']:,.{decimals}f}", className="text-end"),
                    html.Td(f"{fill['volume']:,.6g}", className="text-end"),
                    html.Td(f"{fill['commission']:,.2f}", className="text-end"),
                    html.Td(f"{fill['pnl']:,.2f}", className="text-end"),
                    html.Td(", ".join(fill["labels"] or ())),
                ],
                **{"data-trade-id": fill["trade_id"]},
            )
        )
    return dbc.Table(
        [head, html.Tbody(body)], size="sm", className="sl-fills-table mb-2", id="at-detail-fills"
    )


def context_table(fills: pd.DataFrame) -> Any:
    """The market context at each fill (the categories, then the numbers behind them)."""
    contexts = [fill.get("market_context") or {} for fill in fills.to_dict("records")]
    if not contexts:
        return html.Div()
    sides = [f"{f['side']} {_time(f['time'])[5:]}" for f in fills.to_dict("records")]
    rows = []
    for key in CONTEXT_FIELDS:
        rows.append((key.replace("_", " "), [_text(c.get(key)) or "—" for c in contexts]))
    for key, name in CONTEXT_NUMBERS:
        values = [_finite(c.get(key)) for c in contexts]
        if any(v is not None for v in values):
            rows.append((name, ["—" if v is None else f"{v:,.2f}" for v in values]))
    head = html.Thead(html.Tr([html.Th("at the fill"), *(html.Th(s) for s in sides)]))
    body = html.Tbody(
        [html.Tr([html.Td(name), *(html.Td(v) for v in values)]) for name, values in rows]
    )
    return dbc.Table(
        [head, body], size="sm", className="sl-context-table mb-0", id="at-detail-context"
    )


def trip_heading(trip: Mapping[str, Any]) -> Any:
    """The trade's one line: number, side, symbol, times, net PnL and return, its labels."""
    pnl = float(trip["net_pnl"])
    tone = "text-success" if pnl > 0 else "text-danger" if pnl < 0 else ""
    badges = [
        dbc.Badge(label, color="secondary", className="me-1 sl-label-badge")
        for label in trip["labels"] or ()
    ]
    return html.Div(
        [
            html.Div(
                [
                    html.Span(
                        f"#{trip['number']} {trip['direction']} {trip['symbol']} · "
                        f"{_time(trip['entry_time'])} → {_time(trip['exit_time'])} · "
                    ),
                    html.Span(
                        f"net PnL {pnl:,.2f} ({float(trip['return']) * 100:+.2f}%)", className=tone
                    ),
                    html.Span(
                        f" · held {format_duration(trip['holding_s'])}"
                        f" · fees {float(trip['fees']):,.2f}{_excursions(trip)}"
                    ),
                ],
                className="small mb-1",
                id="at-detail-heading",
            ),
            html.Div(
                badges or [html.Span("no labels", className="sl-muted small")],
                id="at-detail-labels",
                className="mb-2",
            ),
        ]
    )


def _excursions(trip: Mapping[str, Any]) -> str:
    """The trip's MAE and MFE (" · MAE -1.20% · MFE 0.80%"); nothing without bars."""
    mae, mfe = _finite(trip.get("mae")), _finite(trip.get("mfe"))
    if mae is None or mfe is None:
        return ""
    return f" · MAE {mae * 100:.2f}% · MFE {mfe * 100:.2f}%"


def query_view(search: str | None) -> dict[str, str]:
    """The view a link asks for: ``?account=..&strategy=..&label=..&benchmark=..&capital=..``
    (unknown keys ignored; the last value of a repeated key)."""
    query = parse_qs((search or "").lstrip("?"))
    keys = ("account", "strategy", "label", "benchmark", "capital")
    return {k: query[k][-1] for k in keys if query.get(k)}


def parse_capital(text: Any) -> tuple[float | None, str]:
    """(capital, problem): empty is None (the paper account's own cash, or none)."""
    if text is None or not str(text).strip():
        return None, ""
    try:
        value = float(str(text).replace(",", "").strip())
    except ValueError:
        return None, f"Capital: {text!r} is not a number"
    if not (math.isfinite(value) and value > 0):
        return None, f"Capital: {text!r} is invalid: expected a number > 0"
    return value, ""
