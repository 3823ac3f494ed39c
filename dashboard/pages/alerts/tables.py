"""The alerts page's pieces as plain functions of records: the history grid's rows, columns
and look, the rules, the delivery failures and the toasts (no I/O: the callbacks fetch,
these draw). The history's Severity badge and Acknowledge button are drawn in the browser
(assets/alerts_grid.js): its rows stay plain values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from components.charts.theme import ChartTheme
from components.panels.performance import trade_table_style
from database.repositories.alerts import AlertRecord, AlertRuleRecord, DeliveryRecord

SEVERITY_COLOURS = {"info": "info", "warning": "warning", "critical": "danger"}
MAX_TOASTS = 3  # the newest stay stacked (over the charts: few); older ones leave the page
# an info alert (a fill) is news, not a problem: it leaves sooner than a warning
TOAST_MS = {"info": 4_000}
DEFAULT_TOAST_MS = 10_000


def _stamp(stamp: datetime | None) -> str:
    return "" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M:%S")


def when(stamp: datetime | None) -> str:
    return "" if stamp is None else f"{_stamp(stamp)} UTC"


def _where(alert: AlertRecord) -> str:
    return " · ".join(p for p in (alert.account, alert.deployment, alert.symbol) if p)


HISTORY_PAGE_ROWS = 20
ACK_COLUMN = "acknowledged"  # the column whose cell holds Acknowledge (the grid's renderer)


def history_rows(
    alerts: Sequence[AlertRecord], rules: Sequence[AlertRuleRecord] = ()
) -> list[dict[str, Any]]:
    """The history grid's rows, newest first as ``alerts`` come: plain values (id, time UTC,
    severity, the rule's name from ``rules``, kind, where, message with the duplicates held
    back, and when it was acknowledged: "" until then)."""
    names = {rule.id: rule.name for rule in rules}
    rows = []
    for alert in alerts:
        message = alert.message
        if alert.suppressed:
            message += f" (+{alert.suppressed} duplicate{'s' if alert.suppressed > 1 else ''})"
        rows.append(
            {
                "id": alert.id,
                "time": _stamp(alert.created_at),
                "severity": alert.severity,
                "rule": names.get(alert.rule_id, f"#{alert.rule_id}"),
                "kind": alert.kind,
                "where": _where(alert),
                "message": message,
                ACK_COLUMN: _stamp(alert.acknowledged_at),
            }
        )
    return rows


def _column(field: str, header: str, width: int, **extra: Any) -> dict[str, Any]:
    """A text column at least ``width`` px wide, its whole value on hover."""
    return {"field": field, "headerName": header, "minWidth": width, "tooltipField": field,
            **extra}  # fmt: skip


# widths: a time "2026-12-04 10:14:49" in bold, a kind "deployment_error"; together they fit
# 1280 px beside a page scrollbar. The message and the place wrap (their row grows) rather
# than being cut. The times are text (AG Grid would take them for dates: a date filter in the
# browser's locale). Severity and Acknowledged are drawn by assets/alerts_grid.js (a badge;
# Acknowledge until the alert is acknowledged, then the time)
HISTORY_COLUMNS = [
    {"field": "id", "headerName": "#", "width": 64, "flex": 0, "type": "rightAligned",
     "filter": "agNumberColumnFilter"},
    {**_column("time", "Time (UTC)", 170), "width": 170, "flex": 0, "cellDataType": "text"},
    {"field": "severity", "headerName": "Severity", "width": 95, "flex": 0,
     "cellRenderer": "AlertSeverity", "cellRendererParams": {"colours": SEVERITY_COLOURS}},
    _column("rule", "Rule", 145), _column("kind", "Kind", 145),
    _column("where", "Where", 140, wrapText=True, autoHeight=True),
    _column("message", "Message", 200, flex=3, wrapText=True, autoHeight=True),
    {"field": ACK_COLUMN, "headerName": "Acknowledged (UTC)", "width": 170, "flex": 0,
     "cellDataType": "text", "cellRenderer": "AlertAcknowledge"},
]  # fmt: skip


def history_grid_style(theme: ChartTheme) -> dict[str, Any]:
    """The history grid's look (the performance panel's grid in ``theme``) and behaviour:
    rows known by the alert's id (a refresh changes only the rows that changed), sortable
    and filterable, ``HISTORY_PAGE_ROWS`` a page, unacknowledged rows in bold."""
    style = trade_table_style(theme)
    options = {**style["dashGridOptions"], "paginationPageSize": HISTORY_PAGE_ROWS,
               "paginationPageSizeSelector": [HISTORY_PAGE_ROWS, 50, 100, 200],
               "tooltipShowDelay": 400,
               "localeText": {"noRowsToShow": "No alert yet."}}  # fmt: skip
    return {
        **style,
        "dashGridOptions": options,
        "rowClassRules": {"al-unacknowledged": f"!params.data.{ACK_COLUMN}"},
    }


def history_state(theme: ChartTheme, rows: list[dict[str, Any]]) -> dict[str, str]:
    """What the history grid shows, in a few bytes (the page's "al-history-shown" store): the
    theme's name and a hash of the rows."""
    digest = hashlib.sha1(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    return {"theme": theme.name, "rows": digest}


def rules_table(rules: Sequence[AlertRuleRecord]) -> Component:
    """Each rule with its threshold and cooldown inputs, its enabled switch and Save."""
    rows = []
    for rule in rules:
        ident = rule.id
        takes_threshold = rule.kind in ("drawdown", "metric")
        what = rule.kind if rule.metric is None else f"{rule.metric} {rule.direction}"
        rows.append(
            html.Tr(
                [
                    html.Td(rule.name, className="fw-semibold"),
                    html.Td(what, className="small"),
                    html.Td(
                        dbc.Input(
                            id={"type": "al-rule-threshold", "id": ident},
                            value="" if rule.threshold is None else f"{rule.threshold:g}",
                            disabled=not takes_threshold,
                            placeholder="—" if not takes_threshold else "",
                            size="sm",
                            debounce=True,
                        )
                    ),
                    html.Td(
                        dbc.Input(
                            id={"type": "al-rule-cooldown", "id": ident},
                            value=str(rule.cooldown_s),
                            size="sm",
                            debounce=True,
                        )
                    ),
                    html.Td(", ".join(rule.channels), className="small"),
                    html.Td(
                        dbc.Switch(
                            id={"type": "al-rule-enabled", "id": ident},
                            value=rule.enabled,
                            className="mb-0",
                        )
                    ),
                    html.Td(
                        dbc.Button(
                            "Save",
                            id={"type": "al-rule-save", "id": ident},
                            size="sm",
                            color="primary",
                            outline=True,
                        )
                    ),
                ],
                id=f"al-rule-{rule.name}",
            )
        )
    header = html.Thead(
        html.Tr(
            [
                html.Th(h)
                for h in ("Rule", "On", "Threshold", "Cooldown (s)", "Channels", "Enabled", "")
            ]
        )
    )
    return dbc.Table([header, html.Tbody(rows)], size="sm", className="mb-0 al-rules")


def failures_table(failures: Sequence[DeliveryRecord]) -> Component:
    if not failures:
        return html.P("No failed delivery.", className="text-body-secondary mb-0")
    rows = [
        html.Tr(
            [
                html.Td(when(d.updated_at), className="text-nowrap small"),
                html.Td(f"#{d.alert_id} {d.alert_kind}"),
                html.Td(d.channel),
                html.Td(str(d.attempts)),
                html.Td(d.last_error or "", className="small text-danger-emphasis"),
            ]
        )
        for d in failures
    ]
    header = html.Thead(
        html.Tr([html.Th(h) for h in ("Last attempt", "Alert", "Channel", "Attempts", "Error")])
    )
    return dbc.Table([header, html.Tbody(rows)], size="sm", className="mb-0")


def toast(alert: AlertRecord) -> dbc.Toast:
    """A new alert as a toast that closes itself after 10 s (an info alert after 4 s)."""
    where = _where(alert)
    return dbc.Toast(
        [html.Div(alert.message), html.Div(where, className="small text-body-secondary")],
        id={"type": "al-toast", "id": alert.id},
        header=f"{alert.severity.upper()} · {alert.kind}",
        icon=SEVERITY_COLOURS.get(alert.severity, "secondary"),
        duration=TOAST_MS.get(alert.severity, DEFAULT_TOAST_MS),
        dismissable=True,
        is_open=True,
        className="al-toast mb-2",
    )


def toast_area(latest_id: int, poll_ms: int = 2000) -> html.Div:
    """On every page: the toasts' corner, the poll's interval and the newest alert id seen
    (the page's load time: older alerts never pop up)."""
    return html.Div(
        [
            html.Div(id="al-toasts", className="al-toasts"),
            dcc.Interval(id="al-poll", interval=poll_ms),
            # one poll in flight at a time (assets/chart_view.js, gateToasts)
            dcc.Store(id="al-go"),
            dcc.Store(id="al-busy", data=False),
            dcc.Store(id="al-seen", data=latest_id),
        ]
    )
