"""The alerts page's pieces as plain functions of records: the history, the rules, the
delivery failures and the toasts (no I/O: the callbacks fetch, these draw)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from database.repositories.alerts import AlertRecord, AlertRuleRecord, DeliveryRecord

SEVERITY_COLOURS = {"info": "info", "warning": "warning", "critical": "danger"}
MAX_TOASTS = 3  # the newest stay stacked (over the charts: few); older ones leave the page
# an info alert (a fill) is news, not a problem: it leaves sooner than a warning
TOAST_MS = {"info": 4_000}
DEFAULT_TOAST_MS = 10_000


def when(stamp: datetime | None) -> str:
    return "" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def severity_badge(severity: str) -> dbc.Badge:
    return dbc.Badge(severity, color=SEVERITY_COLOURS.get(severity, "secondary"), className="me-1")


def _where(alert: AlertRecord) -> str:
    return " · ".join(p for p in (alert.account, alert.deployment, alert.symbol) if p)


def history_table(alerts: Sequence[AlertRecord]) -> Component:
    """Newest first: time, severity, kind, where, message (with the duplicates held back),
    and Acknowledge or when it was."""
    if not alerts:
        return html.P("No alert yet.", className="text-body-secondary mb-0", id="al-history-empty")
    rows = []
    for alert in alerts:
        message = alert.message
        if alert.suppressed:
            message += f" (+{alert.suppressed} duplicate{'s' if alert.suppressed > 1 else ''})"
        if alert.acknowledged_at is None:
            status = dbc.Button(
                "Acknowledge",
                id={"type": "al-ack", "id": alert.id},
                size="sm",
                color="secondary",
                outline=True,
            )
        else:
            status = html.Span(
                f"acknowledged {when(alert.acknowledged_at)}", className="small text-body-secondary"
            )
        rows.append(
            html.Tr(
                [
                    html.Td(when(alert.created_at), className="text-nowrap small"),
                    html.Td(severity_badge(alert.severity)),
                    html.Td(alert.kind),
                    html.Td(_where(alert), className="small"),
                    html.Td(message, className="al-message"),
                    html.Td(status, className="text-nowrap"),
                ],
                id=f"al-row-{alert.id}",
                className="" if alert.acknowledged_at else "fw-semibold",
            )
        )
    header = html.Thead(
        html.Tr([html.Th(h) for h in ("Time", "Severity", "Kind", "Where", "Message", "")])
    )
    return dbc.Table([header, html.Tbody(rows)], size="sm", hover=True, className="mb-0")


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
