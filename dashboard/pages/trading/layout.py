"""The Trading page's layout (/trading): account, KPIs, deployments, orders, positions,
fills, alerts, and the forms that create accounts and deployments. Ids start with "tr-"
(the alerts region is "trading-alerts")."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts.theme import DARK
from dashboard.pages.trading.form import account_form, deploy_form
from dashboard.pages.trading.tables import (
    DEPLOYMENT_COLUMNS,
    FILL_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    grid_style,
    kpi_row,
    no_account_kpis,
)


def _card(title: str, body: list[Any], card_id: str, tools: Any = None) -> dbc.Card:
    head = html.Div(
        [html.Div(title, className="fw-semibold"), *([tools] if tools is not None else [])],
        className="d-flex justify-content-between align-items-center mb-2 gap-2",
    )
    return dbc.Card(dbc.CardBody([head, *body], className="p-2"), id=card_id,
                    className="sl-card mb-2")  # fmt: skip


def _grid(grid_id: str, columns: list, row_id: str, **options: Any) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id, columnDefs=columns, rowData=[], className="sl-grid",
        **grid_style(DARK, row_id, **options),
    )  # fmt: skip


def _button(label: str, id_: str, color: str = "secondary") -> dbc.Button:
    return dbc.Button(label, id=id_, size="sm", color=color, outline=True)


def layout(
    accounts: list[str], symbols: list[str], timeframes: list[str], refresh_ms: int
) -> html.Div:
    """The page, opened on the first account (if any). ``timeframes``: the first symbol's."""
    account = accounts[0] if accounts else None
    top = dbc.Row(
        [
            dbc.Col(
                [
                    html.Label("Account", htmlFor="tr-account", className="sl-label"),
                    dbc.Select(
                        id="tr-account",
                        options=[{"label": a, "value": a} for a in accounts],
                        value=account,
                        placeholder="no account yet",
                        size="sm",
                    ),
                ],
                md=3,
            ),
            dbc.Col(
                html.Div(id="tr-status", className="sl-status small"),
                md=9,
                className="d-flex align-items-end",
            ),
        ],
        className="g-2 mb-2",
    )
    deployments = _card(
        "Deployments",
        [
            _grid("tr-deployments", DEPLOYMENT_COLUMNS, "name", rows=6),
            html.Div(id="tr-deployment-message", className="small text-danger mt-1"),
        ],
        "tr-deployments-card",
        html.Div(
            [
                dbc.Select(
                    id="tr-deployment",
                    options=[],
                    value=None,
                    size="sm",
                    placeholder="deployment",
                    style={"minWidth": "10rem"},
                ),
                _button("Start", "tr-start", "success"),
                _button("Stop", "tr-stop", "danger"),
            ],
            className="d-flex gap-2",
        ),
    )
    modify = html.Div(
        [
            dbc.Input(id="tr-mod-qty", placeholder="qty", size="sm", type="text"),
            dbc.Input(id="tr-mod-limit", placeholder="limit", size="sm", type="text"),
            dbc.Input(id="tr-mod-stop", placeholder="stop", size="sm", type="text"),
            _button("Modify", "tr-modify"),
            _button("Cancel order", "tr-cancel", "danger"),
        ],
        className="d-flex gap-2 sl-order-tools",
    )
    orders = _card(
        "Open orders",
        [
            _grid("tr-orders", ORDER_COLUMNS, "client_order_id", select=True),
            html.Div(id="tr-order-message", className="small mt-1"),
        ],
        "tr-orders-card",
        modify,
    )
    positions = _card("Positions", [_grid("tr-positions", POSITION_COLUMNS, "symbol", rows=5)],
                      "tr-positions-card")  # fmt: skip
    fills = _card("Fills (newest first)", [_grid("tr-fills", FILL_COLUMNS, "fill_id")],
                  "tr-fills-card")  # fmt: skip
    alerts = _card("Alerts", [html.Div(id="trading-alerts")], "tr-alerts-card")
    new_deployment = _card("New deployment", [deploy_form(symbols, timeframes)], "tr-deploy-card")
    new_account = _card("Accounts", [account_form()], "tr-account-card")
    return html.Div(
        [
            top,
            # the cards are always there: a refresh sets their values (tables.kpi_row)
            html.Div(kpi_row(no_account_kpis(), DARK), id="tr-kpis", className="mb-2"),
            dbc.Row(
                [
                    dbc.Col([deployments, orders, positions, fills], lg=8),
                    dbc.Col([alerts, new_deployment, new_account], lg=4),
                ],
                className="g-2",
            ),
            dcc.Interval(id="tr-tick", interval=refresh_ms, disabled=True),
            # one refresh in flight at a time (assets/chart_view.js, gateTrading)
            dcc.Store(id="tr-go"),
            dcc.Store(id="tr-busy", data=False),
            dcc.Store(id="tr-changed", data=0),  # an action done: refresh at once
            dcc.Store(id="tr-shown"),  # what the page shows: a refresh sends only changes
        ],
        className="sl-trading",
    )
