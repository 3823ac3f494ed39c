"""The alerts page (/alerts): the history (an AG Grid, "al-history"), the rules and the
delivery failures, each a card; the rules' edits answer in ``al-rule-feedback``."""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts.theme import DARK
from dashboard.pages.alerts.tables import (
    HISTORY_COLUMNS,
    failures_table,
    history_grid_style,
    history_rows,
    history_state,
    rules_table,
)
from services.alerts import AlertService

FAILURES_REFRESH_MS = 10_000  # failures come after the retries, not with a new alert


def _card(title: str, body: object, extra: object = None) -> dbc.Card:
    head = html.Div(
        [html.Div(title, className="fw-semibold"), extra] if extra else html.Div(title),
        className="d-flex justify-content-between align-items-center mb-2",
    )
    return dbc.Card(dbc.CardBody([head, body]), className="mb-3")


def layout(service: AlertService) -> html.Div:
    rules = service.rules()
    rows = history_rows(service.history(), rules)
    history = dag.AgGrid(
        id="al-history",
        columnDefs=HISTORY_COLUMNS,
        rowData=rows,
        className="sl-grid al-history",
        **history_grid_style(DARK),
    )
    return html.Div(
        [
            _card("Alerts (newest first)", history),
            _card(
                "Rules",
                html.Div(
                    [
                        rules_table(rules),
                        html.Div(id="al-rule-feedback", className="mt-2"),
                    ]
                ),
                html.Span(
                    "threshold: a drawdown as a fraction (0.1 = 10%), a metric's level; "
                    "cooldown: seconds a repeat of the same alert is only counted",
                    className="small text-body-secondary",
                ),
            ),
            _card(
                "Delivery failures",
                html.Div(failures_table(service.failed_deliveries()), id="al-failures"),
            ),
            dcc.Store(id="al-ack-done"),
            # what the grid shows (theme, rows' hash): a refresh sends only what changed
            dcc.Store(id="al-history-shown", data=history_state(DARK, rows)),
            dcc.Store(id="al-rule-result"),
            dcc.Interval(id="al-slow", interval=FAILURES_REFRESH_MS),
        ],
        className="pt-3",
    )
