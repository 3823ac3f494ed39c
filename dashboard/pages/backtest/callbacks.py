"""The backtest page's callbacks: thin wrappers over the plain functions of
:mod:`~dashboard.pages.backtest.form` and :mod:`~dashboard.pages.backtest.results`; Run and
Open in a dash background callback with a progress bar."""

from __future__ import annotations

from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from dashboard.pages.backtest.form import (
    FORM_IDS,
    PARAM_TYPE,
    form_message,
    strategy_form,
    strategy_manager,
    symbol_choices,
)
from dashboard.pages.backtest.layout import EXPORT_KINDS
from dashboard.pages.backtest.results import (
    COMPARE_OUTPUTS,
    RESULT_OUTPUTS,
    THEMED_OUTPUTS,
    compare,
    export,
    retheme,
    run_or_open,
    runs_rows,
)
from dashboard.pages.backtest.style import HIDE, SHOW
from services.saved_runs import ResultCache

POLL_MS = 100
"""How often the browser asks whether a Run or Open finished (and for its progress): each ask
is a small request; the result shows at most this long after the run ends."""


def register_callbacks(app: Dash, services: Any, manager: Any, *, min_step_s: float = 0.0) -> None:
    """The page's callbacks on ``app``; Run/Open run in the background through ``manager``
    (a ``dash.DiskcacheManager``). ``min_step_s``: see :func:`run_or_open` (tests only).

    The "bt-theme" store ("dark" or "light") colours the charts and tables: an app-wide theme
    switch writes it (``Output("bt-theme", "data")``) and the page redraws in that theme."""
    database_url = services.settings.database_url
    cache_url = services.settings.redis_url
    cache = ResultCache()
    strategies = strategy_manager(services)
    form_state = _form_values(State)

    @app.callback(
        Output("bt-strategy", "value"),
        Output("bt-params", "children"),
        Output("bt-direction", "value"),
        Input("bt-strategy", "value"),
        Input("bt-saved", "value"),
        prevent_initial_call=True,
    )
    def _strategy(strategy: str | None, saved: str | None):
        return strategy_form(strategy, saved, ctx.triggered_id, strategies)

    @app.callback(
        Output("bt-timeframe", "options"),
        Output("bt-timeframe", "value"),
        Output("bt-start", "min"),
        Output("bt-start", "max"),
        Output("bt-start", "value"),
        Output("bt-end", "min"),
        Output("bt-end", "max"),
        Output("bt-end", "value"),
        Input("bt-symbol", "value"),
        State("bt-timeframe", "value"),
        prevent_initial_call=True,
    )
    def _symbol(symbol: str | None, current: str | None):
        if not symbol:
            raise PreventUpdate
        options, value, first, last = symbol_choices(services, symbol, current)
        return options, value, first, last, first, first, last, last

    @app.callback(Output("bt-form-message", "children"), inputs={"values": _form_values(Input)})
    def _validate(values: dict[str, Any]):
        return form_message(values)

    @app.callback(
        output=[Output(id_, prop) for id_, prop in RESULT_OUTPUTS],
        inputs={
            "run_clicks": Input("bt-run", "n_clicks"),
            "open_clicks": Input("bt-open", "n_clicks"),
        },
        state={
            "values": form_state,
            "selected": State("bt-runs", "selectedRows"),
            "theme": State("bt-theme", "data"),
        },
        background=True,
        manager=manager,
        interval=POLL_MS,
        progress=[Output("bt-progress", "value"), Output("bt-progress", "label")],
        progress_default=[0, ""],
        running=[
            (Output("bt-run", "disabled"), True, False),
            (Output("bt-open", "disabled"), True, False),
            (Output("bt-cancel", "disabled"), False, True),
            (Output("bt-progress-wrap", "style"), SHOW, HIDE),
        ],
        cancel=[Input("bt-cancel", "n_clicks")],
        prevent_initial_call=True,
    )
    def _run(set_progress, run_clicks, open_clicks, values, selected, theme):
        outputs = run_or_open(
            ctx.triggered_id,
            values,
            selected,
            database_url,
            cache_url,
            theme,
            set_progress=set_progress,
            min_step_s=min_step_s,
        )
        return [outputs[f"{id_}.{prop}"] for id_, prop in RESULT_OUTPUTS]

    @app.callback(
        [Output(id_, prop) for id_, prop in COMPARE_OUTPUTS],
        Input("bt-compare", "n_clicks"),
        State("bt-runs", "selectedRows"),
        State("bt-theme", "data"),
        prevent_initial_call=True,
    )
    def _compare(_n: int, selected: list[int] | None, theme: str):
        outputs = compare(selected, services, cache, theme)
        return [outputs[f"{id_}.{prop}"] for id_, prop in COMPARE_OUTPUTS]

    @app.callback(
        [Output(id_, prop, allow_duplicate=True) for id_, prop in THEMED_OUTPUTS],
        Input("bt-theme", "data"),
        State("bt-current", "data"),
        State("bt-compared", "data"),
        prevent_initial_call=True,
    )
    def _retheme(theme: str, current: dict | None, compared: list[int] | None):
        outputs = retheme(theme or "dark", current, compared, services, cache)
        return [outputs[f"{id_}.{prop}"] for id_, prop in THEMED_OUTPUTS]

    @app.callback(
        Output("bt-runs", "rowData", allow_duplicate=True),
        Input("bt-refresh", "n_clicks"),
        prevent_initial_call=True,
    )
    def _refresh(_n: int):
        return runs_rows(services.sessions)

    @app.callback(
        Output("bt-download", "data"),
        *(Input(f"bt-export-{kind}", "n_clicks") for kind in EXPORT_KINDS),
        State("bt-export-format", "value"),
        State("bt-current", "data"),
        prevent_initial_call=True,
    )
    def _export(*args: Any):
        fmt, current = args[-2], args[-1]
        kind = str(ctx.triggered_id).removeprefix("bt-export-")
        return export(kind, fmt or "csv", current, services, cache)


def _form_values(kind: type[Input] | type[State]) -> dict[str, Any]:
    """The form's values as callback dependencies of ``kind`` (Input or State): every
    :data:`FORM_IDS` field's value, the parameter inputs' ids and values (what
    :func:`~dashboard.pages.backtest.form.form_dict` reads)."""
    values = {name: kind(id_, "value") for name, id_ in FORM_IDS.items()}
    values["param_ids"] = kind({"type": PARAM_TYPE, "name": ALL}, "id")
    values["param_values"] = kind({"type": PARAM_TYPE, "name": ALL}, "value")
    return values
