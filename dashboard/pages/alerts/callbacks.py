"""The alerts page's callbacks and the toasts' poll: thin wrappers over AlertService and the
drawing functions of tables.py; :func:`save_rule`, :func:`new_toasts`,
:func:`history_update` and :func:`acknowledge_clicked` are plain functions (tested without
dash)."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from dashboard.pages.alerts.tables import (
    ACK_COLUMN,
    MAX_TOASTS,
    failures_table,
    history_grid_style,
    history_rows,
    history_state,
    toast,
)
from dashboard.shell import one_in_flight, shown_page
from database.repositories.alerts import AlertNotFoundError
from services.alerts import AlertService

ACK_OUTPUT = "al-ack-done.data"
RULE_OUTPUT = "al-rule-result.data"
ALERTS_PATH = "/alerts"


def new_toasts(
    service: AlertService, seen: int | None, shown: list[Any] | None
) -> tuple[list[Any], int] | None:
    """The toasts to show after a poll (the newest ``MAX_TOASTS``) and the newest id seen;
    None when nothing is new (the poll then changes nothing in the page): known from the
    service's newest id, shared by every page, before any query of this page's own."""
    if seen is not None and service.newest_id() <= int(seen):
        return None
    fresh = service.newer_than(int(seen or 0), limit=MAX_TOASTS)
    if not fresh:
        return None
    toasts = [*(shown or []), *(toast(alert) for alert in fresh)][-MAX_TOASTS:]
    return toasts, fresh[-1].id


def save_rule(
    service: AlertService, rule_id: int, threshold: Any, cooldown: Any, enabled: Any
) -> tuple[bool, str]:
    """Store a rule's edit: (True, what was saved) or (False, why nothing was)."""
    rules = {rule.id: rule for rule in service.rules()}
    rule = rules.get(rule_id)
    if rule is None:
        return False, f"no alert rule with id {rule_id}"
    takes_threshold = rule.kind in ("drawdown", "metric")
    try:
        saved = service.update_rule(
            rule_id,
            threshold=(threshold if takes_threshold else None),
            cooldown_s=("" if cooldown is None else str(cooldown).strip()),
            enabled=bool(enabled),
        )
    except ValueError as exc:
        return False, f"{rule.name}: {exc}; nothing was saved"
    parts = [] if saved.threshold is None else [f"threshold {saved.threshold:g}"]
    parts += [f"cooldown {saved.cooldown_s} s", "enabled" if saved.enabled else "disabled"]
    return True, f"{saved.name} saved: {', '.join(parts)}"


def history_update(
    service: AlertService, light: bool, shown: dict[str, str] | None
) -> tuple[Any, Any, dict[str, str]]:
    """What the history grid must change to show the newest alerts in the theme (``light``):
    (its rowData, its dashGridOptions, the new "al-history-shown"), ``no_update`` for what it
    shows already; PreventUpdate when nothing changed. ``shown``: what it shows (theme name,
    rows' hash). The rows go whole (200 at most, plain values): the grid knows them by id
    and redraws only the rows that changed; the options (the theme) only with the theme."""
    theme = THEMES["light" if light else "dark"]
    rows = history_rows(service.history(), service.rules())
    state = history_state(theme, rows)
    before = shown or {}
    if before == state:
        raise PreventUpdate
    same_theme = before.get("theme") == state["theme"]
    options = no_update if same_theme else history_grid_style(theme)["dashGridOptions"]
    return (no_update if before.get("rows") == state["rows"] else rows), options, state


def acknowledge_clicked(service: AlertService, clicked: dict[str, Any] | None) -> Any:
    """Acknowledge the alert whose Acknowledge was clicked in the history grid (``clicked``:
    the grid's cellRendererData, its value the alert's id): the id once stored, ``no_update``
    for anything else (another cell, an id that is not an alert's)."""
    if not isinstance(clicked, dict) or clicked.get("colId") != ACK_COLUMN:
        return no_update
    try:
        alert_id = int(clicked["value"])
    except (KeyError, TypeError, ValueError):
        return no_update
    try:
        return service.acknowledge(alert_id).id
    except AlertNotFoundError:
        return no_update


def _value_of(states: list[dict[str, Any]], rule_id: int) -> Any:
    return next((s.get("value") for s in states if s["id"]["id"] == rule_id), None)


def _shown(path: str | None) -> bool:
    """Whether the alerts page is the one shown (the others are in the layout, hidden)."""
    return shown_page(path) == "alerts"


def register_callbacks(app: Dash, service: AlertService) -> None:
    busy = one_in_flight(app, "gateToasts", "al-poll", "al-go", "al-busy")

    @app.callback(
        Output("al-toasts", "children"),
        Output("al-seen", "data"),
        Input("al-go", "data"),
        State("al-seen", "data"),
        State("al-toasts", "children"),
        running=[(busy, True, False)],
        prevent_initial_call=True,
    )
    def _poll(_n: int, seen: int | None, shown: list[Any] | None):
        result = new_toasts(service, seen, shown)
        return (no_update, no_update) if result is None else result

    @app.callback(
        Output("al-ack-done", "data"),
        Input("al-history", "cellRendererData"),
        prevent_initial_call=True,
    )
    def _acknowledge(clicked: dict[str, Any] | None):
        return acknowledge_clicked(service, clicked)

    @app.callback(
        Output("al-history", "rowData"),
        Output("al-history", "dashGridOptions"),
        Output("al-history-shown", "data"),
        Input("al-seen", "data"),
        Input("al-ack-done", "data"),
        Input("url", "pathname"),
        Input("theme-switch", "value"),
        State("al-history-shown", "data"),
    )
    def _history(_seen, _acked, path: str | None, light: bool | None, shown):
        # runs when the page is laid out too: a light page's grid takes its theme at once
        if not _shown(path):
            # hidden: no query and nothing sent; showing the page refreshes it
            raise PreventUpdate
        return history_update(service, bool(light), shown)

    @app.callback(
        Output("al-failures", "children"),
        Input("al-slow", "n_intervals"),
        Input("al-seen", "data"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    def _failures(_n: int, _seen: int | None, path: str | None):
        if not _shown(path):
            return no_update  # the page is hidden: no query
        return failures_table(service.failed_deliveries())

    @app.callback(
        Output("al-rule-result", "data"),
        Output("al-rule-feedback", "children"),
        Input({"type": "al-rule-save", "id": ALL}, "n_clicks"),
        State({"type": "al-rule-threshold", "id": ALL}, "value"),
        State({"type": "al-rule-cooldown", "id": ALL}, "value"),
        State({"type": "al-rule-enabled", "id": ALL}, "value"),
        prevent_initial_call=True,
    )
    def _save_rule(clicks: list[int | None], *_values: list[Any]):
        target = ctx.triggered_id
        if not isinstance(target, dict) or not ctx.triggered[0]["value"]:
            return no_update, no_update
        rule_id = int(target["id"])
        thresholds, cooldowns, enabled = ctx.states_list
        ok, text = save_rule(
            service,
            rule_id,
            _value_of(thresholds, rule_id),
            _value_of(cooldowns, rule_id),
            _value_of(enabled, rule_id),
        )
        colour = "success" if ok else "danger"
        feedback = dbc.Alert(text, color=colour, className="py-1 px-2 mb-0", id="al-rule-message")
        return (rule_id if ok else no_update), feedback
