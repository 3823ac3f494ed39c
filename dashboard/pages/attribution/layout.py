"""The Attribution page's layout (/attribution): the account and its filters, the figures, the
alpha/beta card and factor table, the label patterns, the round trips and a trade's detail.
Ids start with "at-"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts.theme import DARK
from dashboard.pages.attribution.tables import (
    grid_options,
    pattern_columns,
    query_view,
    trip_columns,
)
from dashboard.pages.parts import FIG, KEEP_VISIBLE, card, loading_graph
from services.tracking_views import AccountChoice

ALL = "(all)"  # the filters' "every strategy / label" value
RISK_DIMENSIONS = (
    ("label", "label"),
    ("regime", "volatility regime"),
    ("size", "size bucket"),
    ("session", "session"),
    ("hour", "entry hour"),
    ("weekday", "weekday"),
    ("strategy", "strategy"),
    ("symbol", "symbol"),
)


def _select(id_: str, label: str, options: list[dict], value: Any, width: int = 2) -> dbc.Col:
    return dbc.Col(
        [
            html.Label(label, htmlFor=id_, className="sl-label"),
            dbc.Select(id=id_, options=options, value=value, size="sm"),
        ],
        md=width,
    )


def _grid(grid_id: str, columns: list, row_id: str, **options: Any) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id,
        columnDefs=columns,
        rowData=[],
        className="sl-grid",
        **grid_options(DARK, row_id, **options),
    )


def layout(
    accounts: Sequence[AccountChoice],
    symbols: Sequence[str],
    search: str | None = None,
    benchmark_for: Callable[[str], str | None] = lambda _: None,
):
    """The page on the account a link names (``?account=...``, see ``tables.query_view``),
    else the first; ``symbols``: the stored ones, the benchmarks to choose from;
    ``benchmark_for(account)``: the benchmark an account opens on (the link's first)."""
    asked = query_view(search)
    names = [a.name for a in accounts]
    account = asked.get("account") if asked.get("account") in names else None
    account = account or (names[0] if names else None)
    choice = next((a for a in accounts if a.name == account), None)
    benchmark = asked.get("benchmark") if asked.get("benchmark") in symbols else None
    benchmark = benchmark or (benchmark_for(account) if account else None) or ALL
    capital = asked.get("capital") or (
        f"{choice.capital:g}" if choice is not None and choice.capital is not None else ""
    )
    controls = dbc.Row(
        [
            _select(
                "at-account",
                "Account",
                [{"label": a.label, "value": a.name} for a in accounts],
                account,
                3,
            ),
            _select(
                "at-strategy",
                "Strategy",
                [{"label": "every strategy", "value": ALL}],
                asked.get("strategy", ALL),
            ),
            _select(
                "at-label",
                "Label",
                [{"label": "every label", "value": ALL}],
                asked.get("label", ALL),
            ),
            _select(
                "at-benchmark",
                "Benchmark",
                [{"label": "none", "value": ALL}, *({"label": s, "value": s} for s in symbols)],
                benchmark,
            ),
            dbc.Col(
                [
                    html.Label("Capital", htmlFor="at-capital", className="sl-label"),
                    dbc.Input(
                        id="at-capital",
                        value=capital,
                        type="text",
                        size="sm",
                        debounce=True,
                        placeholder="starting capital",
                    ),
                    html.Div(id="at-capital-note", className="small sl-muted"),
                ],
                md=3,
            ),
        ],
        className="g-2 mb-1 sl-controls",
    )
    label_card = card(
        "PnL and win rate by label",
        [loading_graph("at-labels", 320)],
        "at-labels-card",
        "a trip counts in each of its labels",
    )
    heatmap_card = card(
        "Net PnL by entry weekday and hour",
        [loading_graph("at-heatmap", 320)],
        "at-heatmap-card",
        "UTC · hover: trades",
    )
    regime = card(
        "Volatility regime", [loading_graph("at-regime", 260)], "at-regime-card", "at entry"
    )
    size = card(
        "Size", [loading_graph("at-size", 260)], "at-size-card", "quintiles of entry notional"
    )
    risk_by = dbc.Select(
        id="at-risk-by",
        value="label",
        size="sm",
        style={"maxWidth": "9rem"},
        options=[{"label": f"by {name}", "value": v} for v, name in RISK_DIMENSIONS],
    )
    risk = card(
        "Risk: share of variance", [loading_graph("at-risk", None)], "at-risk-card", tools=risk_by
    )
    alpha = card(
        "Skill or market: alpha and beta",
        [html.Div(id="at-alpha"), html.Div(id="at-factors", className="mt-2")],
        "at-alpha-card",
    )
    patterns = card(
        "Label patterns",
        [_grid("at-patterns", pattern_columns(DARK), "key", rows=8)],
        "at-patterns-card",
        "pairs and whole label sets; noise: under 30 trades or |t| < 2",
    )
    trades = card(
        "Round trips",
        [_grid("at-trades", trip_columns(DARK), "trip_id", rows=12, click=True)],
        "at-trades-card",
        "click a row for its fills, context and chart · filter labels in the box",
    )
    detail = card(
        "Trade detail",
        [
            html.Div(id="at-detail"),
            dcc.Loading(
                dcc.Graph(id="at-detail-chart", config=FIG, style={"height": "340px"}),
                type="dot",
                color="#f0b90b",
                delay_show=500,
                overlay_style=KEEP_VISIBLE,
            ),
            html.Div(id="at-detail-tables"),
        ],
        "at-detail-card",
    )
    return html.Div(
        [
            controls,
            html.Div(id="at-status", className="sl-status small mb-2"),
            html.Div(id="at-message", className="sl-error"),
            dbc.Row([dbc.Col(label_card, lg=7), dbc.Col(heatmap_card, lg=5)], className="g-2 mb-2"),
            dbc.Row(
                [dbc.Col(regime, lg=4), dbc.Col(size, lg=4), dbc.Col(risk, lg=4)],
                className="g-2 mb-2",
            ),
            dbc.Row([dbc.Col(alpha, lg=5), dbc.Col(patterns, lg=7)], className="g-2 mb-2"),
            dbc.Row([dbc.Col(trades, lg=7), dbc.Col(detail, lg=5)], className="g-2 mb-2"),
        ],
        className="sl-attribution",
    )
