"""The Trading page's callbacks: thin wrappers over PaperTrading (services/paper.py), the
read models (services/trading_views.py) and the page's plain functions (form.py, tables.py).

The refresh reads one snapshot of the chosen account per tick (its interval runs only while
the page is shown, and a tick goes out only once the previous one was answered) and sends
nothing when the snapshot and the theme are what the page shows already. An action (create,
deploy, start, stop, cancel, modify) bumps "tr-changed", which refreshes at once.
Errors show in red under the control that caused them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from components.panels.performance import kpi_style
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
    KPI_PREFIX,
    alerts_list,
    deployment_rows,
    fill_rows,
    grid_style,
    kpi_row,
    no_account_kpis,
    order_rows,
    position_rows,
    snapshot_kpis,
    status_line,
)
from dashboard.shell import one_in_flight, shown_page
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
KPI_SLUGS = tuple(k.slug for k in no_account_kpis())
# what the refresh writes, in the callback's order (refresh answers a dict of these)
REFRESH_OUTPUTS: tuple[str, ...] = (
    "tr-kpis.children",
    *(f"{KPI_PREFIX}-{slug}.{prop}" for slug in KPI_SLUGS for prop in ("children", "style")),
    "trading-alerts.children",
    "tr-deployment.options",
    "tr-status.children",
    *(f"{grid}.rowData" for grid in GRIDS),
    *(f"{grid}.dashGridOptions" for grid in GRIDS),
    "tr-shown.data",
)
_GRID_KEYS = {
    "tr-deployments": ("name", {"rows": 6}),
    "tr-positions": ("symbol", {"rows": 5}),
    "tr-orders": ("client_order_id", {"select": True}),
    "tr-fills": ("fill_id", {}),
}


def refresh(
    views: TradingViews, account: str | None, light: bool, shown: dict[str, Any] | None
) -> dict[str, Any]:
    """What the page must change to show ``account`` now: one value per entry of
    :data:`REFRESH_OUTPUTS` ("component.property"), ``no_update`` where the page shows it
    already; PreventUpdate when nothing changed. ``shown`` is the previous answer's
    "tr-shown.data" (the theme and a hash of each part).

    Only changed parts go out, and as leaf properties (texts, styles, rows): a callback that
    returns new components costs the browser a store update per component, and the grids'
    options (their theme) rebuild each grid's styles. Refreshing everything four times a
    second kept a core of the browser busy until the page fell minutes behind the account.
    The cards and the grids' options are rebuilt only when the theme changes."""
    theme = THEMES["light" if light else "dark"]
    snapshot = views.snapshot(account) if account else None
    kpis = snapshot_kpis(snapshot)
    names = [] if snapshot is None else [d.name for d in snapshot.deployments]
    rows = (deployment_rows(snapshot), position_rows(snapshot), order_rows(snapshot),
            fill_rows(snapshot))  # fmt: skip
    parts: dict[str, Any] = {
        "kpis": [(k.text, k.tone) for k in kpis],
        "alerts": [] if snapshot is None else list(snapshot.alerts),
        "options": names,
        "status": status_line(snapshot),
        **dict(zip(GRIDS, rows, strict=True)),  # each grid's rows, a part of its own
    }
    hashes = {
        name: hashlib.sha1(json.dumps(value, default=str, sort_keys=True).encode()).hexdigest()
        for name, value in parts.items()
    }
    before = shown or {}
    same_theme = before.get("theme") == theme.name
    old = before.get("parts") or {}
    if same_theme and old == hashes:
        raise PreventUpdate

    def changed(name: str) -> bool:
        return old.get(name) != hashes[name]

    out: dict[str, Any] = dict.fromkeys(REFRESH_OUTPUTS, no_update)
    if not same_theme:
        out["tr-kpis.children"] = kpi_row(kpis, theme)  # the values come with the cards
        for grid, (row_id, options) in _GRID_KEYS.items():
            out[f"{grid}.dashGridOptions"] = grid_style(theme, row_id, **options)["dashGridOptions"]
    elif changed("kpis"):
        for kpi in kpis:
            out[f"{KPI_PREFIX}-{kpi.slug}.children"] = kpi.text
            out[f"{KPI_PREFIX}-{kpi.slug}.style"] = kpi_style(kpi, theme)
    if changed("alerts"):
        out["trading-alerts.children"] = alerts_list(snapshot)
    if changed("options"):
        out["tr-deployment.options"] = [{"label": n, "value": n} for n in names]
    if changed("status"):
        out["tr-status.children"] = parts["status"]
    for grid in GRIDS:
        if changed(grid):
            out[f"{grid}.rowData"] = parts[grid]
    out["tr-shown.data"] = {"theme": theme.name, "parts": hashes}
    return out


def register_callbacks(app: Dash, paper: PaperTrading, views: TradingViews, market) -> None:
    @app.callback(Output("tr-tick", "disabled"), Input("url", "pathname"))
    def _visible(pathname: str | None) -> bool:
        return shown_page(pathname) != "trading"

    busy = one_in_flight(app, "gateTrading", "tr-tick", "tr-go", "tr-busy")

    @app.callback(
        *(Output(*output.rsplit(".", 1)) for output in REFRESH_OUTPUTS),
        Input("tr-go", "data"),
        Input("tr-account", "value"),
        Input("tr-changed", "data"),
        Input("theme-switch", "value"),
        Input("url", "pathname"),
        State("tr-shown", "data"),
        running=[(busy, True, False)],
    )
    def _refresh(_n, account, _changed, light, pathname, shown):
        if shown_page(pathname) != "trading":
            # hidden: nothing is read or sent (the page loads with the others, and would
            # compete with the page on screen); shown again, it refreshes at once
            raise PreventUpdate
        answer = refresh(views, account, bool(light), shown)
        return tuple(answer[output] for output in REFRESH_OUTPUTS)

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
