"""The alerts page's callbacks and the toasts' poll: thin wrappers over AlertService and the
drawing functions of tables.py; :func:`save_rule` and :func:`new_toasts` are plain functions
(tested without dash)."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, no_update

from dashboard.pages.alerts.tables import (
    MAX_TOASTS,
    failures_table,
    history_table,
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
        Input({"type": "al-ack", "id": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _acknowledge(clicks: list[int | None]):
        target = ctx.triggered_id
        # a re-drawn history adds buttons (n_clicks None): only a real click acknowledges
        if not isinstance(target, dict) or not any(clicks) or not ctx.triggered[0]["value"]:
            return no_update
        try:
            return service.acknowledge(int(target["id"])).id
        except AlertNotFoundError:
            return no_update

    @app.callback(
        Output("al-history", "children"),
        Input("al-seen", "data"),
        Input("al-ack-done", "data"),
        Input("url", "pathname"),
        prevent_initial_call=True,
    )
    def _history(_seen: int | None, _acked: int | None, path: str | None):
        if not _shown(path):
            # hidden: no query and no redraw (a redrawn table is a new component per cell,
            # each costing the browser a store update); showing the page redraws it
            return no_update
        return history_table(service.history())

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
