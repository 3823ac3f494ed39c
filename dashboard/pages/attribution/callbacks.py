"""The Attribution page's callbacks: thin wrappers over the read model
(services/tracking_views.py), the figure builders (components/panels/attribution.py) and the
page's plain functions (tables.py).

Three callbacks: the account chosen resets its filters and capital; the view (account,
filters, benchmark, capital, risk dimension, theme) draws every figure and grid while the
page is shown; a round trip clicked in the grid shows its detail.
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from components.panels.attribution import (
    alpha_beta_card,
    bucket_figure,
    empty_figure,
    factor_table,
    hour_weekday_figure,
    label_pnl_figure,
    risk_figure,
    trip_figure,
)
from components.panels.performance import price_decimals
from dashboard.pages.attribution.layout import ALL
from dashboard.pages.attribution.tables import (
    context_table,
    fills_table,
    grid_options,
    parse_capital,
    pattern_columns,
    pattern_rows,
    status_line,
    trip_columns,
    trip_decimals,
    trip_heading,
    trip_rows,
)
from dashboard.shell import shown_page
from services.tracking import UnknownAccountError
from services.tracking_views import AttributionViews

PAGE_PATH = "/attribution"
FIGURES = ("at-labels", "at-heatmap", "at-regime", "at-size", "at-risk")
# what the view writes, in the callback's order (view_outputs answers a dict of these)
VIEW_OUTPUTS: tuple[str, ...] = (
    "at-status.children",
    "at-message.children",
    "at-strategy.options",
    "at-label.options",
    *(f"{figure}.figure" for figure in FIGURES),
    "at-alpha.children",
    "at-factors.children",
    "at-patterns.rowData",
    "at-patterns.columnDefs",
    "at-patterns.dashGridOptions",
    "at-trades.rowData",
    "at-trades.columnDefs",
    "at-trades.dashGridOptions",
)


def _chosen(value: str | None) -> str | None:
    """A filter's value: None for "every" (or nothing chosen)."""
    return None if value in (None, "", ALL) else value


def _options(values: list[str], every: str) -> list[dict[str, str]]:
    return [{"label": every, "value": ALL}, *({"label": v, "value": v} for v in values)]


def view_outputs(
    views: AttributionViews,
    account: str | None,
    strategy: str | None,
    label: str | None,
    benchmark: str | None,
    capital_text: Any,
    risk_by: str | None,
    light: bool,
) -> dict[str, Any]:
    """Everything the page draws for this choice: one value per entry of
    :data:`VIEW_OUTPUTS` ("component.property")."""
    theme = THEMES["light" if light else "dark"]
    out: dict[str, Any] = dict.fromkeys(VIEW_OUTPUTS, no_update)
    capital, problem = parse_capital(capital_text)
    try:
        if not account:
            raise UnknownAccountError("no account has trades yet: import some or trade paper")
        view = views.view(
            account,
            strategy=_chosen(strategy),
            label=_chosen(label),
            benchmark=_chosen(benchmark),
            capital=capital,
            risk_by=risk_by or "label",
        )
    except UnknownAccountError as exc:
        blank = empty_figure(str(exc), theme)
        out.update({f"{figure}.figure": blank for figure in FIGURES})
        out.update(
            {
                "at-status.children": str(exc),
                "at-message.children": problem,
                "at-patterns.rowData": [],
                "at-trades.rowData": [],
                "at-alpha.children": None,
                "at-factors.children": None,
            }
        )
        return out
    fit = view.fit
    decimals = trip_decimals(view.trips)
    out.update(
        {
            "at-status.children": status_line(
                view.account, view.source, view.summary, view.trips, view.strategy, view.label
            ),
            "at-message.children": problem,
            "at-strategy.options": _options(view.strategies, "every strategy"),
            "at-label.options": _options(view.labels, "every label"),
            "at-labels.figure": label_pnl_figure(view.by_label, theme=theme),
            "at-heatmap.figure": hour_weekday_figure(view.hour_weekday, theme=theme),
            "at-regime.figure": bucket_figure(
                view.by_regime, axis="volatility regime at entry", theme=theme
            ),
            "at-size.figure": bucket_figure(
                view.by_size, axis="entry notional bucket", theme=theme
            ),
            "at-risk.figure": risk_figure(view.risk, theme=theme),
            "at-alpha.children": alpha_beta_card(
                None if fit is None else fit.alpha_beta,
                None if fit is None else fit.symbol,
                capital=None if fit is None else fit.capital,
                error=None if fit is None else fit.error,
                theme=theme,
            ),
            "at-factors.children": None
            if fit is None or not fit.alpha_beta
            else factor_table(fit.factors, theme=theme),
            "at-patterns.rowData": pattern_rows(view.patterns),
            "at-patterns.columnDefs": pattern_columns(theme),
            "at-patterns.dashGridOptions": grid_options(theme, "key", rows=8)["dashGridOptions"],
            "at-trades.rowData": trip_rows(view.trips),
            "at-trades.columnDefs": trip_columns(theme, decimals),
            "at-trades.dashGridOptions": grid_options(theme, "trip_id", rows=12, click=True)[
                "dashGridOptions"
            ],
        }
    )
    return out


def detail_outputs(
    views: AttributionViews, account: str | None, trip_id: str | None, light: bool
) -> tuple[Any, Any, Any]:
    """(heading and labels, chart, fills and context tables) of one round trip."""
    theme = THEMES["light" if light else "dark"]
    hint = "click a round trip in the grid"
    if not account or not trip_id:
        return None, empty_figure(hint, theme, height=300), None
    try:
        detail = views.trip(account, trip_id)
    except UnknownAccountError as exc:
        detail, hint = None, str(exc)
    if detail is None:
        hint = f"no round trip {trip_id!r} in account {account}"
        return _hint(hint), empty_figure(hint, theme, height=300), None
    bars = detail.bars
    decimals = price_decimals([detail.trip["entry_price"], detail.trip["exit_price"]])
    chart = trip_figure(
        bars.candles, bars.timeframe, detail.trip, detail.fills, theme=theme, note=bars.note
    )
    tables = [fills_table(detail.fills, decimals), context_table(detail.fills)]
    return trip_heading(detail.trip), chart, tables


def _hint(text: str) -> Any:
    return html.Div(text, className="sl-hint")


def account_choice(
    views: AttributionViews,
    account: str | None,
    benchmarks: list[dict[str, str]] | None,
    benchmark: str | None,
) -> tuple[str, str, str, str | None]:
    """A new account: every strategy and label, its own capital (a paper account's starting
    cash; else empty) and the benchmark it traded most (else the one chosen)."""
    choice = views.account(account) if account else None
    if choice is None:
        return ALL, ALL, "", benchmark
    capital = "" if choice.capital is None else f"{choice.capital:g}"
    symbols = [o["value"] for o in benchmarks or [] if o["value"] != ALL]
    return ALL, ALL, capital, views.benchmark_for(choice.name, symbols) or benchmark


def register_callbacks(app: Dash, views: AttributionViews) -> None:
    @app.callback(
        Output("at-strategy", "value"),
        Output("at-label", "value"),
        Output("at-capital", "value"),
        Output("at-benchmark", "value"),
        Input("at-account", "value"),
        State("at-benchmark", "options"),
        State("at-benchmark", "value"),
        prevent_initial_call=True,
    )
    def _account(account, benchmarks, benchmark):
        return account_choice(views, account, benchmarks, benchmark)

    @app.callback(
        Output("at-capital-note", "children"),
        Input("at-account", "value"),
        Input("at-capital", "value"),
    )
    def _capital_note(account, capital):
        choice = views.account(account) if account else None
        if choice is not None and choice.capital is not None:
            return f"paper account: starts with {choice.capital:,.0f}"
        return "" if str(capital or "").strip() else "needed for alpha and beta"

    @app.callback(
        *(Output(*output.rsplit(".", 1)) for output in VIEW_OUTPUTS),
        Input("at-account", "value"),
        Input("at-strategy", "value"),
        Input("at-label", "value"),
        Input("at-benchmark", "value"),
        Input("at-capital", "value"),
        Input("at-risk-by", "value"),
        Input("theme-switch", "value"),
        Input("url", "pathname"),
    )
    def _view(account, strategy, label, benchmark, capital, risk_by, light, pathname):
        if shown_page(pathname) != "attribution":
            raise PreventUpdate  # hidden: nothing read; shown again, it draws at once
        out = view_outputs(
            views, account, strategy, label, benchmark, capital, risk_by, bool(light)
        )
        return tuple(out[output] for output in VIEW_OUTPUTS)

    @app.callback(
        Output("at-detail", "children"),
        Output("at-detail-chart", "figure"),
        Output("at-detail-tables", "children"),
        Input("at-trades", "cellClicked"),
        Input("at-account", "value"),
        Input("theme-switch", "value"),
        State("at-trades", "selectedRows"),
    )
    def _detail(clicked, account, light, selected):
        trip_id = None
        if ctx.triggered_id != "at-account":
            trip_id = (clicked or {}).get("rowId") or ((selected or [{}])[0] or {}).get("trip_id")
        return detail_outputs(views, account, trip_id, bool(light))
