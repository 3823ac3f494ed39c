"""The backtest page's callbacks: thin wrappers over the plain functions of
:mod:`~dashboard.pages.backtest.form`, :mod:`~dashboard.pages.backtest.results` and
:mod:`~dashboard.pages.backtest.sweep`; Run/Open and Sweep in dash background callbacks with a
progress bar each and Cancel.

No callback fires per keystroke: number fields report their value when the trader leaves them
or presses Enter (``debounce=True``), and the check of the form is one small server call then.
"""

from __future__ import annotations

from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from dashboard.pages.backtest.form import (
    CHECKED,
    FORM_IDS,
    FORM_OUTPUTS,
    PARAM_FEEDBACK,
    PARAM_TYPE,
    form_feedback,
    form_update,
    strategy_manager,
)
from dashboard.pages.backtest.layout import EXPORT_KINDS
from dashboard.pages.backtest.results import (
    COMPARE_OUTPUTS,
    PROGRESS_OUTPUTS,
    RESULT_OUTPUTS,
    THEMED_OUTPUTS,
    compare,
    export,
    outcome,
    retheme,
    run_or_open,
    runs_rows,
)
from dashboard.pages.backtest.style import HIDE, SHOW
from dashboard.pages.backtest.sweep import (
    SWEEP_OUTCOME,
    SWEEP_OUTPUTS,
    SWEEP_PROGRESS,
    run_sweep,
    sweep_axes,
    sweep_choices,
    sweep_feedback,
    sweep_figure,
    sweep_pick,
    sweep_retheme,
)
from services.saved_runs import ResultCache

POLL_MS = 100
"""How often the browser asks whether a Run or Open finished (and for its progress): each ask
is a small request; the result shows at most this long after the run ends."""


def register_callbacks(
    app: Dash,
    services: Any,
    manager: Any,
    *,
    min_step_s: float = 0.0,
    sweep_workers: int | None = None,
) -> None:
    """The page's callbacks on ``app``; Run/Open and Sweep run in the background through
    ``manager`` (a ``dash.DiskcacheManager``). ``min_step_s``: see :func:`run_or_open` (tests
    only); ``sweep_workers``: the sweep's processes (``services.batch.run_batch``; None: one
    per CPU, as the command line; 0: in the background job's own process).

    The "bt-theme" store ("dark" or "light") colours the charts and tables: an app-wide theme
    switch writes it (``Output("bt-theme", "data")``) and the page redraws in that theme."""
    database_url = services.settings.database_url
    cache_url = services.settings.redis_url
    cache = ResultCache()
    strategies = strategy_manager(services)
    form_state = _form_values(State)

    @app.callback(
        [Output(id_, prop) for id_, prop in FORM_OUTPUTS],
        Input("bt-strategy", "value"),
        Input("bt-saved", "value"),
        Input("bt-symbol", "value"),
        Input("bt-load", "data"),
        State("bt-timeframe", "value"),
        prevent_initial_call=True,
    )
    def _form(strategy, saved, symbol, load, timeframe):
        outputs = form_update(
            ctx.triggered_id, strategy, saved, symbol, load, timeframe, services, strategies
        )
        return [outputs[f"{id_}.{prop}"] for id_, prop in FORM_OUTPUTS]

    param_inputs = {"type": PARAM_TYPE, "name": ALL, "control": "input"}

    @app.callback(
        output={
            "flags": [Output(id_, "invalid") for id_ in CHECKED.values()],
            "feedback": [Output(f"{id_}-feedback", "children") for id_ in CHECKED.values()],
            "param_flags": Output(param_inputs, "invalid"),
            "param_feedback": Output({"type": PARAM_FEEDBACK, "name": ALL}, "children"),
            "message": Output("bt-form-message", "children"),
            "run": Output("bt-run", "disabled", allow_duplicate=True),
            "sweep": Output("bt-sweep-run", "disabled", allow_duplicate=True),
        },
        inputs={"values": _form_values(Input)},
        state={"ids": State(param_inputs, "id")},
        prevent_initial_call=True,
    )
    def _check(values: dict[str, Any], ids: list[dict[str, Any]]):
        flags, params, message, problems = form_feedback(values, ids)
        return {
            "flags": [flags[name][0] for name in CHECKED],
            "feedback": [flags[name][1] for name in CHECKED],
            "param_flags": [invalid for invalid, _ in params],
            "param_feedback": [text for _, text in params],  # one line per "input" control
            "message": message,
            "run": bool(problems),
            "sweep": bool(problems),
        }

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
        **_background(manager, "bt", PROGRESS_OUTPUTS, ("bt-run", "bt-open")),
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

    _on_cancel(app, "bt", "cancelled during {}", "the start")

    @app.callback(
        Output("bt-sweep-x", "options"),
        Output("bt-sweep-x", "value"),
        Output("bt-sweep-y", "options"),
        Output("bt-sweep-y", "value"),
        Input("bt-strategy", "value"),
        prevent_initial_call=True,
    )
    def _sweep_params(strategy: str | None):
        return sweep_choices(strategy)

    @app.callback(
        *(
            Output(target, prop)
            for field in ("bt-sweep-x-values", "bt-sweep-y-values")
            for target, prop in ((field, "invalid"), (f"{field}-feedback", "children"))
        ),
        *(Input(id_, "value") for id_ in _SWEEP_AXES),
        State("bt-strategy", "value"),
        prevent_initial_call=True,
    )
    def _check_sweep(x, x_values, y, y_values, strategy):
        if not x_values and not y_values:
            return False, "", False, ""  # nothing typed yet: nothing to flag
        flags = sweep_feedback({"strategy": strategy}, sweep_axes(x, x_values, y, y_values))
        return (*flags["sweep_x"], *flags["sweep_y"])

    @app.callback(
        output=[
            Output(id_, prop, allow_duplicate=id_ == "bt-runs")
            for id_, prop in (*SWEEP_OUTPUTS, *SWEEP_OUTCOME)
        ],
        inputs={"clicks": Input("bt-sweep-run", "n_clicks")},
        state={
            "values": form_state,
            "axes": [State(id_, "value") for id_ in _SWEEP_AXES],
            "metric": State("bt-sweep-metric", "value"),
            "theme": State("bt-theme", "data"),
        },
        **_background(manager, "bt-sweep", SWEEP_PROGRESS, ("bt-sweep-run",)),
        prevent_initial_call=True,
    )
    def _sweep(set_progress, clicks, values, axes, metric, theme):
        outputs = run_sweep(
            values,
            sweep_axes(*axes),
            database_url,
            cache_url,
            theme,
            metric,
            workers=sweep_workers,
            set_progress=set_progress,
        )
        keys = [*SWEEP_OUTPUTS, *SWEEP_OUTCOME]
        return [outputs[f"{id_}.{prop}"] for id_, prop in keys]

    # the runs finished before Cancel stay stored (each is a run of its own)
    _on_cancel(app, "bt-sweep", "cancelled after {}", "no run")

    @app.callback(
        Output("bt-sweep-graph", "figure", allow_duplicate=True),
        Input("bt-sweep-metric", "value"),
        State("bt-sweep-data", "data"),
        State("bt-theme", "data"),
        prevent_initial_call=True,
    )
    def _sweep_metric(metric: str, data: dict | None, theme: str):
        if not data:
            raise PreventUpdate
        return sweep_figure(data, metric, theme or "dark")

    @app.callback(
        Output("bt-sweep-graph", "figure", allow_duplicate=True),
        Output("bt-sweep-grid", "dashGridOptions"),
        Input("bt-theme", "data"),
        State("bt-sweep-data", "data"),
        State("bt-sweep-metric", "value"),
        prevent_initial_call=True,
    )
    def _sweep_theme(theme: str, data: dict | None, metric: str | None):
        return sweep_retheme(theme or "dark", data, metric)

    @app.callback(
        Output("bt-load", "data", allow_duplicate=True),
        Output("bt-sweep-message", "children", allow_duplicate=True),
        Input("bt-sweep-graph", "clickData"),
        Input("bt-sweep-grid", "cellClicked"),
        State("bt-sweep-grid", "virtualRowData"),
        State("bt-sweep-grid", "rowData"),
        State("bt-sweep-data", "data"),
        prevent_initial_call=True,
    )
    def _sweep_pick(click, cell, shown_rows, rows, data):
        try:
            if ctx.triggered_id == "bt-sweep-grid":
                row = _clicked_row(cell, shown_rows or rows)
                return sweep_pick(data, row=row)
            points = (click or {}).get("points") or []
            return sweep_pick(data, point=points[0] if points else None)
        except LookupError:
            raise PreventUpdate from None

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


_SWEEP_AXES = ("bt-sweep-x", "bt-sweep-x-values", "bt-sweep-y", "bt-sweep-y-values")
_OUTCOME = (("bar", "value"), ("bar", "label"), ("bar", "color"), ("step", "children"))


def _background(
    manager: Any, prefix: str, progress: Any, buttons: tuple[str, ...]
) -> dict[str, Any]:
    """A background callback's arguments: run by ``manager``, polled every :data:`POLL_MS`,
    reporting to ``progress`` (the ``{prefix}-progress`` bar, its label and step line); while
    it runs ``buttons`` are disabled, ``{prefix}-cancel`` enabled (and cancels it), the
    progress bar shown and the ``{prefix}-outcome`` bar hidden; then the other way round."""
    return {
        "background": True,
        "manager": manager,
        "interval": POLL_MS,
        "progress": [Output(id_, prop) for id_, prop in progress],
        "progress_default": [0, "", "waiting for a worker"],
        "running": [
            *((Output(button, "disabled"), True, False) for button in buttons),
            (Output(f"{prefix}-cancel", "disabled"), False, True),
            (Output(f"{prefix}-progress-wrap", "style"), SHOW, HIDE),
            (Output(f"{prefix}-outcome", "style"), HIDE, SHOW),
        ],
        "cancel": [Input(f"{prefix}-cancel", "n_clicks")],
    }


def _on_cancel(app: Dash, prefix: str, words: str, before: str) -> None:
    """``{prefix}-cancel`` also writes the ``{prefix}-outcome`` bar: cancelled, where (``words``
    takes the step line reached, ``before`` when there was none yet)."""

    @app.callback(
        [Output(f"{prefix}-outcome-{k}", p, allow_duplicate=True) for k, p in _OUTCOME],
        Input(f"{prefix}-cancel", "n_clicks"),
        State(f"{prefix}-progress-step", "children"),
        prevent_initial_call=True,
    )
    def _cancelled(_n: int, step: str | None):
        ended = outcome("cancelled", words.format(step or before), prefix)
        return [ended[f"{prefix}-outcome-{k}.{p}"] for k, p in _OUTCOME]


def _clicked_row(cell: dict[str, Any] | None, rows: list[dict[str, Any]] | None) -> Any:
    """The sweep grid's row a ``cellClicked`` names (its ``rowIndex`` in the sorted,
    filtered rows shown)."""
    if not cell or rows is None:
        raise LookupError("no cell clicked")
    index = cell.get("rowIndex")
    if index is None or not 0 <= index < len(rows):
        raise LookupError(f"no row {index}")
    return rows[index]


def _form_values(kind: type[Input] | type[State]) -> dict[str, Any]:
    """The form's values as callback dependencies of ``kind`` (Input or State): every
    :data:`FORM_IDS` field's value, the parameter inputs' ids and values (what
    :func:`~dashboard.pages.backtest.form.form_dict` reads)."""
    values = {name: kind(id_, "value") for name, id_ in FORM_IDS.items()}
    params = {"type": PARAM_TYPE, "name": ALL, "control": ALL}
    values["param_ids"] = kind(params, "id")
    values["param_values"] = kind(params, "value")
    return values
