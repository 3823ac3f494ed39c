"""The Execution page's callbacks: thin wrappers over the read model
(services/execution_views.py: TCAService and ExecutionMLService), the figure builders
(components/panels/execution.py) and the page's plain functions (tables.py).

Two callbacks: the view (account, grouping, theme) draws every figure, table and the grid
while the page is shown; the download button sends the account's decision dataset.
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, no_update
from dash.exceptions import PreventUpdate

from analytics.tca import TCAInputError
from components.charts.theme import THEMES
from components.panels.attribution import empty_figure
from components.panels.execution import (
    breakdown_figure,
    breakdown_table,
    markout_figure,
    prediction_figure,
    quality_figure,
    shortfall_figure,
    slippage_figure,
)
from dashboard.pages.execution.layout import FIGURES
from dashboard.pages.execution.tables import (
    grid_options,
    key_figures,
    markout_fields,
    order_columns,
    order_rows,
    reasons_list,
    status_line,
)
from dashboard.shell import shown_page
from services.execution_views import (
    BREAKDOWN_METRICS,
    ExecutionViews,
    first_fills,
    group_rows,
    markout_curve,
    quality_counts,
    quality_period,
    reason_counts,
    shortfall_split,
    slippage_values,
)
from services.tracking import UnknownAccountError

PAGE_PATH = "/execution"
VIEW_OUTPUTS: tuple[str, ...] = (
    "ex-status.children",
    "ex-message.children",
    "ex-kpis.children",
    *(f"{figure}.figure" for figure in FIGURES),
    "ex-breakdown-note.children",
    "ex-kinds.children",
    "ex-model-note.children",
    "ex-reasons.children",
    "ex-orders.rowData",
    "ex-orders.columnDefs",
    "ex-orders.dashGridOptions",
)
NO_ACCOUNT = (
    "no account has orders yet: trade paper (app.py paper replay ...) or import orders "
    "(app.py trades import FILE --format orders-csv|freqtrade|hummingbot)"
)


def view_outputs(
    views: ExecutionViews, account: str | None, by: str | None, light: bool
) -> dict[str, Any]:
    """Everything the page draws for this choice: one value per entry of
    :data:`VIEW_OUTPUTS` ("component.property")."""
    theme = THEMES["light" if light else "dark"]
    out: dict[str, Any] = dict.fromkeys(VIEW_OUTPUTS, no_update)
    try:
        if not account:
            raise UnknownAccountError(NO_ACCOUNT)
        view = views.view(account, by or "venue")
    except (UnknownAccountError, TCAInputError) as exc:
        blank = empty_figure(str(exc).splitlines()[0], theme)
        out.update({f"{figure}.figure": blank for figure in FIGURES})
        out.update(
            {
                "ex-status.children": str(exc).splitlines()[0],
                "ex-message.children": str(exc) if isinstance(exc, TCAInputError) else None,
                "ex-kpis.children": None,
                "ex-kinds.children": None,
                "ex-model-note.children": None,
                "ex-reasons.children": None,
                "ex-orders.rowData": [],
            }
        )
        return out
    report = view.tca.report
    orders = report.orders
    slippage = slippage_values(orders)
    period = quality_period(report.round_trips)
    predictions = views.predictions(view.account.name)
    rows = order_rows(orders, first_fills(report.fills))
    if predictions.rows is None:
        model_figure = empty_figure("no cost model stored for this account", theme)
        model_note = predictions.note
    else:
        model_figure = prediction_figure(predictions.rows, theme=theme)
        model_note = f"trained {str(predictions.trained_at or '?')[:19]} UTC · test = later period"
    out.update(
        {
            "ex-status.children": status_line(
                view.account.name, view.account.source, view.summary, len(rows)
            ),
            "ex-message.children": None,
            "ex-kpis.children": key_figures(view.overall, view.summary),
            "ex-slippage.figure": slippage_figure(
                slippage, theme=theme, missing=len(orders) - len(slippage)
            ),
            "ex-shortfall.figure": shortfall_figure(shortfall_split(orders), theme=theme),
            "ex-markouts.figure": markout_figure(markout_curve(report.fills), theme=theme),
            "ex-quality.figure": quality_figure(
                quality_counts(report.round_trips, period), period, theme=theme
            ),
            "ex-breakdown.figure": breakdown_figure(
                group_rows(view.by_group, BREAKDOWN_METRICS), view.by, theme=theme
            ),
            "ex-breakdown-note.children": f"by {view.by} · notional-weighted means",
            "ex-kinds.children": breakdown_table(group_rows(view.by_kind, BREAKDOWN_METRICS)),
            "ex-model.figure": model_figure,
            "ex-model-note.children": model_note,
            "ex-reasons.children": reasons_list(
                reason_counts(orders), view.tca.left_out, len(orders)
            ),
            "ex-orders.rowData": rows,
            "ex-orders.columnDefs": order_columns(theme, markout_fields(orders)),
            "ex-orders.dashGridOptions": grid_options(theme)["dashGridOptions"],
        }
    )
    return out


def download(views: ExecutionViews, account: str | None) -> tuple[Any, str]:
    """(dcc.Download data, note): the account's decision dataset as Parquet."""
    if not account:
        return no_update, NO_ACCOUNT
    try:
        data = views.dataset_bytes(account)
    except (UnknownAccountError, TCAInputError, ValueError) as exc:
        return no_update, f"no dataset: {str(exc).splitlines()[0]}"
    name = f"{account}-decisions.parquet"
    return dcc.send_bytes(data, name), f"{name}: {len(data) / 1024:,.0f} KiB (docs/dataset.md)"


def register_callbacks(app: Dash, views: ExecutionViews) -> None:
    @app.callback(
        *(Output(*output.rsplit(".", 1)) for output in VIEW_OUTPUTS),
        Input("ex-account", "value"),
        Input("ex-by", "value"),
        Input("theme-switch", "value"),
        Input("url", "pathname"),
    )
    def _view(account, by, light, pathname):
        if shown_page(pathname) != "execution":
            raise PreventUpdate  # hidden: nothing read; shown again, it draws at once
        out = view_outputs(views, account, by, bool(light))
        return tuple(out[output] for output in VIEW_OUTPUTS)

    @app.callback(
        Output("ex-download", "data"),
        Output("ex-download-note", "children"),
        Input("ex-download-button", "n_clicks"),
        State("ex-account", "value"),
        prevent_initial_call=True,
    )
    def _download(_clicks, account):
        return download(views, account)
