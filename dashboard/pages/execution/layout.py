"""The Execution page's layout (/execution): the account and the grouping, the key figures,
the figures (each titled with its convention), the breakdown by algo, venue and order type,
the cost model's predictions, the n/a reasons and the trade-by-trade TCA grid. Ids start with
"ex-"."""

from __future__ import annotations

from collections.abc import Sequence

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts.theme import DARK
from dashboard.pages.execution.tables import grid_options, order_columns, query_view
from dashboard.pages.parts import card, loading_graph
from services.execution_views import GROUP_BY, ExecutionAccount

FIGURES = ("ex-slippage", "ex-shortfall", "ex-markouts", "ex-quality", "ex-breakdown", "ex-model")


def layout(accounts: Sequence[ExecutionAccount], search: str | None = None) -> html.Div:
    """The page on the account a link names (``?account=..&by=..``), else the first."""
    asked = query_view(search)
    names = [a.name for a in accounts]
    account = asked.get("account") if asked.get("account") in names else None
    account = account or (names[0] if names else None)
    controls = dbc.Row(
        [
            dbc.Col(
                [
                    html.Label("Account", htmlFor="ex-account", className="sl-label"),
                    dbc.Select(
                        id="ex-account",
                        options=[{"label": a.label, "value": a.name} for a in accounts],
                        value=account,
                        size="sm",
                    ),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    html.Label("Group by", htmlFor="ex-by", className="sl-label"),
                    dbc.Select(
                        id="ex-by",
                        options=[{"label": g, "value": g} for g in GROUP_BY],
                        value=asked.get("by", "venue"),
                        size="sm",
                    ),
                ],
                md=2,
            ),
            dbc.Col(
                [
                    dbc.Button(
                        "Download dataset (Parquet)",
                        id="ex-download-button",
                        size="sm",
                        color="secondary",
                        outline=True,
                    ),
                    dcc.Loading(
                        html.Div(id="ex-download-note", className="small sl-muted ms-2"),
                        type="dot",
                        color="#f0b90b",
                        delay_show=300,
                    ),
                    dcc.Download(id="ex-download"),
                ],
                md=6,
                className="d-flex align-items-end justify-content-end",
            ),
        ],
        className="g-2 mb-1 sl-controls",
    )
    slippage = card(
        "Arrival slippage",
        [loading_graph("ex-slippage")],
        "ex-slippage-card",
        note="bps of the arrival price · + = cost",
    )
    shortfall = card(
        "Implementation shortfall",
        [loading_graph("ex-shortfall")],
        "ex-shortfall-card",
        note="Perold · bps of the decision notional · + = cost",
    )
    markouts = card(
        "Markouts",
        [loading_graph("ex-markouts")],
        "ex-markouts-card",
        note="bps of the fill price · + = in the trade's favour · 95% band",
    )
    quality = card(
        "Decision quality",
        [loading_graph("ex-quality")],
        "ex-quality-card",
        note="net return after costs vs expected, ±10 bps",
    )
    breakdown = card(
        "Fill rate, latency and cost",
        [
            html.Div(id="ex-breakdown-note", className="small sl-muted"),
            loading_graph("ex-breakdown", 290),
            html.Div(
                "by algo, venue and order type · notional-weighted means · bps + = cost",
                className="small sl-muted mt-1",
            ),
            html.Div(id="ex-kinds", className="mt-1"),
        ],
        "ex-breakdown-card",
    )
    model = card(
        "Predicted vs realised cost",
        [html.Div(id="ex-model-note", className="small sl-muted"), loading_graph("ex-model", 600)],
        "ex-model-card",
        note="bps of the arrival price · + = cost",
    )
    reasons = card(
        "n/a: why a metric is missing",
        [html.Div(id="ex-reasons")],
        "ex-reasons-card",
        note="the report's reasons (docs/tca.md#na)",
    )
    grid = card(
        "Trade-by-trade TCA",
        [
            dag.AgGrid(
                id="ex-orders",
                columnDefs=order_columns(DARK, []),
                rowData=[],
                className="sl-grid",
                **grid_options(DARK),
            )
        ],
        "ex-orders-card",
        note="one row per order · costs in bps, + = cost · sort and filter any column",
    )
    return html.Div(
        [
            controls,
            html.Div(id="ex-status", className="sl-status small mb-2"),
            html.Div(id="ex-message", className="sl-error"),
            html.Div(id="ex-kpis"),
            dbc.Row([dbc.Col(slippage, lg=6), dbc.Col(shortfall, lg=6)], className="g-2 mb-2"),
            dbc.Row([dbc.Col(markouts, lg=6), dbc.Col(quality, lg=6)], className="g-2 mb-2"),
            dbc.Row([dbc.Col(breakdown, lg=7), dbc.Col(model, lg=5)], className="g-2 mb-2"),
            dbc.Row([dbc.Col(grid, lg=12)], className="g-2 mb-2"),
            dbc.Row([dbc.Col(reasons, lg=12)], className="g-2 mb-2"),
        ],
        className="sl-attribution sl-execution",
    )
