"""The Trading page's callbacks: thin wrappers over PaperTrading (services/paper.py), the
read models (services/trading_views.py) and the page's plain functions (form.py, tables.py).

The refresh reads one snapshot of the chosen account per tick (its interval runs only while
the page is shown) and sends nothing when the snapshot and the theme are what the page
shows already. An action (create, deploy, start, stop, cancel, modify) bumps "tr-changed",
which refreshes at once. Errors show in red under the control that caused them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from dashboard.pages.trading.form import (
    PARAM_TYPE,
    SETTINGS,
    DeployFormError,
    account_request,
    deploy_request,
    setting_id,
    strategy_inputs,
)
from dashboard.pages.trading.tables import (
    alerts_list,
    deployment_rows,
    fill_rows,
    grid_style,
    kpi_row,
    order_rows,
    position_rows,
    status_line,
)
from services.paper import PaperError, PaperTrading
from services.trading_views import TradingViews

PAGE_PATH = "/trading"
# one output of each callback that writes (the server's write guard)
WRITE_OUTPUTS: tuple[str, ...] = (
    "tr-account-message.children",
    "tr-deploy-message.children",
    "tr-deployment-message.children",
    "tr-order-message.children",
)
GRIDS = ("tr-deployments", "tr-positions", "tr-orders", "tr-fills")
_GRID_KEYS = {
    "tr-deployments": ("name", {"rows": 6}),
    "tr-positions": ("symbol", {"rows": 5}),
    "tr-orders": ("client_order_id", {"select": True}),
    "tr-fills": ("fill_id", {}),
}


def refresh(views: TradingViews, account: str | None, light: bool, shown: str | None):
    """(kpis, alerts, deployment options, status, 4 grids' rows, 4 grids' options, shown
    key) of ``account`` now; PreventUpdate when the page shows exactly that already."""
    theme = THEMES["light" if light else "dark"]
    snapshot = views.snapshot(account) if account else None
    rows = [deployment_rows(snapshot), position_rows(snapshot), order_rows(snapshot),
            fill_rows(snapshot)]  # fmt: skip
    alerts = () if snapshot is None else snapshot.alerts
    key = hashlib.sha1(
        json.dumps([account, theme.name, rows, alerts, status_line(snapshot),
                    None if snapshot is None else snapshot.account.__dict__],
                   default=str, sort_keys=True).encode()
    ).hexdigest()  # fmt: skip
    if key == shown:
        raise PreventUpdate
    names = [] if snapshot is None else [d.name for d in snapshot.deployments]
    grids = [
        grid_style(theme, row_id, **options)["dashGridOptions"]
        for row_id, options in _GRID_KEYS.values()
    ]
    return (
        kpi_row(snapshot, theme), alerts_list(snapshot),
        [{"label": n, "value": n} for n in names], status_line(snapshot),
        *rows, *grids, key,
    )  # fmt: skip


def register_callbacks(app: Dash, paper: PaperTrading, views: TradingViews, market) -> None:
    @app.callback(Output("tr-tick", "disabled"), Input("url", "pathname"))
    def _visible(pathname: str | None) -> bool:
        return (pathname or "/").rstrip("/") != PAGE_PATH

    @app.callback(
        Output("tr-kpis", "children"),
        Output("trading-alerts", "children"),
        Output("tr-deployment", "options"),
        Output("tr-status", "children"),
        *(Output(g, "rowData") for g in GRIDS),
        *(Output(g, "dashGridOptions") for g in GRIDS),
        Output("tr-shown", "data"),
        Input("tr-tick", "n_intervals"),
        Input("tr-account", "value"),
        Input("tr-changed", "data"),
        Input("theme-switch", "value"),
        State("tr-shown", "data"),
    )
    def _refresh(_n, account, _changed, light, shown):
        return refresh(views, account, bool(light), shown)

    @app.callback(
        Output("tr-account-message", "children"),
        Output("tr-account", "options"),
        Output("tr-account", "value"),
        Input("tr-create-account", "n_clicks"),
        State("tr-new-account", "value"),
        State("tr-new-cash", "value"),
        State("tr-new-dd", "value"),
        prevent_initial_call=True,
    )
    def _create(_n, name, cash, drawdown):
        try:
            paper.create_account(*account_request(name, cash, drawdown))
        except (DeployFormError, PaperError) as exc:
            return str(exc), no_update, no_update
        accounts = views.account_names()
        return "", [{"label": a, "value": a} for a in accounts], name.strip()

    @app.callback(
        Output("tr-dep-params", "children"),
        Input("tr-dep-strategy", "value"),
        prevent_initial_call=True,
    )
    def _params(strategy):
        if not strategy:
            raise PreventUpdate
        return strategy_inputs(strategy)

    @app.callback(
        Output("tr-dep-timeframe", "options"),
        Output("tr-dep-timeframe", "value"),
        Input("tr-dep-symbol", "value"),
        State("tr-dep-timeframe", "value"),
        prevent_initial_call=True,
    )
    def _timeframes(symbol, current):
        if not symbol:
            raise PreventUpdate
        timeframes = market.timeframes(symbol)
        value = current if current in timeframes else (timeframes[0] if timeframes else None)
        return [{"label": t, "value": t} for t in timeframes], value

    @app.callback(
        Output("tr-deploy-message", "children"),
        Output("tr-changed", "data", allow_duplicate=True),
        Input("tr-deploy", "n_clicks"),
        State("tr-dep-name", "value"),
        State("tr-account", "value"),
        State("tr-dep-strategy", "value"),
        State("tr-dep-direction", "value"),
        State({"type": PARAM_TYPE, "name": ALL, "control": ALL}, "id"),
        State({"type": PARAM_TYPE, "name": ALL, "control": ALL}, "value"),
        State("tr-dep-symbol", "value"),
        State("tr-dep-timeframe", "value"),
        State("tr-set-sizing", "value"),
        *(State(setting_id(name), "value") for name in SETTINGS),
        State("tr-changed", "data"),
        prevent_initial_call=True,
    )
    def _deploy(_n, name, account, strategy, direction, ids, values, symbol, tf, sizing, *rest):
        *settings, changed = rest
        try:
            request = deploy_request(
                name=name, account=account, strategy=strategy, direction=direction,
                param_ids=ids, param_values=values, symbol=symbol, timeframe=tf,
                sizing=sizing, settings=dict(zip(SETTINGS, settings, strict=True)),
            )  # fmt: skip
            paper.deploy(request.pop("name"), **request)
        except (DeployFormError, PaperError) as exc:
            return str(exc), no_update
        return "", (changed or 0) + 1

    @app.callback(
        Output("tr-deployment-message", "children"),
        Output("tr-changed", "data", allow_duplicate=True),
        Input("tr-start", "n_clicks"),
        Input("tr-stop", "n_clicks"),
        State("tr-deployment", "value"),
        State("tr-changed", "data"),
        prevent_initial_call=True,
    )
    def _start_stop(_start, _stop, name, changed):
        if not name:
            return "choose a deployment", no_update
        status = "running" if ctx.triggered_id == "tr-start" else "stopped"
        try:
            paper.set_status(name, status)
        except PaperError as exc:
            return str(exc), no_update
        return "", (changed or 0) + 1

    @app.callback(
        Output("tr-order-message", "children"),
        Output("tr-order-message", "className"),
        Output("tr-changed", "data", allow_duplicate=True),
        Input("tr-cancel", "n_clicks"),
        Input("tr-modify", "n_clicks"),
        State("tr-orders", "selectedRows"),
        State("tr-mod-qty", "value"),
        State("tr-mod-limit", "value"),
        State("tr-mod-stop", "value"),
        State("tr-changed", "data"),
        prevent_initial_call=True,
    )
    def _order(_cancel, _modify, selected, qty, limit, stop, changed):
        return order_action(paper, ctx.triggered_id, selected, qty, limit, stop, changed)


def order_action(
    paper: PaperTrading,
    action: str | None,
    selected: list[dict[str, Any]] | None,
    qty: Any,
    limit: Any,
    stop: Any,
    changed: int | None,
) -> tuple[str, str, Any]:
    """Cancel or modify (``action``: "tr-cancel" / "tr-modify") the selected open order:
    (message, its class, tr-changed)."""
    error = "small mt-1 text-danger"
    if not selected:
        return "select an open order in the grid first", error, no_update
    order_id = selected[0]["client_order_id"]
    try:
        if action == "tr-cancel":
            done = paper.cancel(order_id)
        else:
            changes = {}
            for key, label, text in (("quantity", "qty", qty), ("limit_price", "limit", limit),
                                     ("stop_price", "stop", stop)):  # fmt: skip
                if text is not None and str(text).strip():
                    try:
                        changes[key] = float(str(text).strip())
                    except ValueError:
                        return f"{label}: {text!r} is not a number", error, no_update
            done = paper.modify(order_id, **changes)
    except PaperError as exc:
        return str(exc), error, no_update
    return done, "small mt-1 text-success", (changed or 0) + 1
