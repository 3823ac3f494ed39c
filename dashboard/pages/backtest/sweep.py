"""The backtest page's sweep: one or two parameters of the form's strategy over a list or a
range of values each, every combination run and stored by the sweep service the command line's
``python app.py sweep`` uses (services/batch.py: ``expand`` then ``run_batch``), shown as a
sortable grid (every combination with its key metrics) and a heatmap of a chosen metric over
the two parameters (one parameter: a bar chart). Clicking a cell or a row loads that
combination into the form.

>>> outputs = run_sweep(values, [("fast", "5:30:5"), ("slow", "40, 60")], database_url, None,
...                     "dark", workers=0)
>>> outputs["bt-sweep-message.children"]
'Sweep: 12 runs stored (#3-#14) in 4.1 s.'

Everything but the grid of the sweep comes from the form (strategy, its other parameters,
symbol, timeframe, period, costs, sizing, stops, preset), checked as a Run checks it; the grid
is checked by :func:`~dashboard.pages.backtest.parse.sweep_grid` (at most
:data:`~dashboard.pages.backtest.parse.MAX_COMBINATIONS` combinations). A combination the
strategy refuses (fast not below slow) is skipped, as the command line skips it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import numpy as np
import plotly.graph_objects as go
from dash import dcc, html, no_update

from components.charts.style import cell_text, diverging_scale, style_figure
from components.charts.theme import ChartTheme
from components.panels.performance import trade_table_style
from dashboard.pages.backtest.form import form_dict, progress_bars, run_buttons
from dashboard.pages.backtest.parse import (
    MAX_COMBINATIONS,
    FormError,
    parse_form,
    request_form,
    sweep_grid,
)
from dashboard.pages.backtest.results import outcome, runs_rows
from dashboard.pages.backtest.style import HIDE, SHOW, SMALL_GRAPH, resolve_theme, tidy
from services.backtests import open_context
from services.batch import expand, run_batch
from strategies import registry

SWEEP_METRICS: tuple[str, ...] = (
    "Sharpe Ratio",
    "Return [%]",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "Profit Factor",
    "# Trades",
)
"""The key metrics the grid shows of every combination; the heatmap shows one of them."""
NO_PARAM = ""  # the second parameter's "none" choice

SWEEP_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-sweep-data", "data"),
    ("bt-sweep-graph", "figure"),
    ("bt-sweep-grid", "rowData"),
    ("bt-sweep-grid", "columnDefs"),
    ("bt-sweep-result", "style"),
    ("bt-sweep-message", "children"),
    ("bt-runs", "rowData"),
)
SWEEP_WRITE_OUTPUT = "bt-sweep-data.data"
"""One output of the Sweep callback, which stores runs (the server's write guard)."""
SWEEP_PROGRESS: tuple[tuple[str, str], ...] = (
    ("bt-sweep-progress", "value"),
    ("bt-sweep-progress", "label"),
    ("bt-sweep-progress-step", "children"),
)


def sweep_options(strategy: str | None) -> list[dict[str, str]]:
    """The number parameters of ``strategy``, the ones a sweep can vary."""
    if not strategy:
        return []
    cls = registry.get(strategy)
    return [{"label": p.name, "value": p.name} for p in cls.params if p.kind in (int, float)]


def sweep_choices(strategy: str | None) -> tuple[list[dict[str, str]], str | None, Any, str]:
    """(first parameter options, its value, second parameter options, its value) for
    ``strategy``: the first two number parameters (the second may be "none")."""
    options = sweep_options(strategy)
    names = [o["value"] for o in options]
    second = [{"label": "none (one parameter)", "value": NO_PARAM}, *options]
    return (
        options,
        names[0] if names else None,
        second,
        names[1] if len(names) > 1 else NO_PARAM,
    )


def sweep_grid_style(look: ChartTheme) -> dict[str, Any]:
    """The sweep grid's props: the trade grid's look and behaviour (sortable, filterable,
    paginated), 10 combinations a page; a row's id is its combination's number (``row``)."""
    return {**trade_table_style(look), "getRowId": "'' + params.data.row"}


def sweep_card(strategy: str, look: ChartTheme) -> dbc.Card:
    """The Sweep section for the form's ``strategy`` in ``look``: the two parameters and their
    values, the metric of the heatmap, Sweep and Cancel, the progress, then the heatmap (or
    bars) and the grid."""
    x_options, x, y_options, y = sweep_choices(strategy)
    chosen = {"bt-sweep-x": (x_options, x), "bt-sweep-y": (y_options, y)}

    def axis(label: str, select: str, values: str, placeholder: str) -> dbc.Col:
        options, value = chosen[select]
        return dbc.Col(
            [
                html.Label(label, htmlFor=select, className="sl-label"),
                dbc.InputGroup(
                    [
                        dbc.Select(
                            id=select,
                            options=options,
                            value=value,
                            size="sm",
                            style={"maxWidth": "9rem"},
                        ),
                        dbc.Input(
                            id=values,
                            type="text",
                            placeholder=placeholder,
                            size="sm",
                            debounce=True,
                            autocomplete="off",
                        ),
                        dbc.FormFeedback(id=f"{values}-feedback", type="invalid"),
                    ],
                    size="sm",
                    className="has-validation",
                ),
            ],
            md=4,
        )

    controls = dbc.Row(
        [
            axis("Parameter 1 and its values", "bt-sweep-x", "bt-sweep-x-values", "5:50:5"),
            axis("Parameter 2 and its values", "bt-sweep-y", "bt-sweep-y-values", "20, 40, 60"),
            dbc.Col(
                [
                    html.Label("Heatmap of", htmlFor="bt-sweep-metric", className="sl-label"),
                    dbc.Select(
                        id="bt-sweep-metric",
                        options=[{"label": m, "value": m} for m in SWEEP_METRICS],
                        value=SWEEP_METRICS[0],
                        size="sm",
                    ),
                ],
                md=2,
            ),
            dbc.Col(
                run_buttons("Sweep", "bt-sweep-run", "bt-sweep-cancel", "align-items-end h-100"),
                md=2,
            ),
        ],
        className="g-2",
    )
    result = html.Div(
        [
            dcc.Graph(
                id="bt-sweep-graph", config=SMALL_GRAPH, style={"height": "380px"}, figure={}
            ),
            html.Div(
                "Click a cell or a row to load that combination into the form.",
                className="small text-secondary mb-1",
            ),
            dag.AgGrid(
                id="bt-sweep-grid",
                columnDefs=[],
                rowData=[],
                className="sl-grid",
                **sweep_grid_style(look),
            ),
        ],
        id="bt-sweep-result",
        style=HIDE,
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Span("Sweep", className="fw-semibold me-2"),
                        html.Span(
                            "one or two parameters of the strategy, the rest as in the form; "
                            f"values 5, 10, 20 or a range start:stop:step; at most "
                            f"{MAX_COMBINATIONS} combinations, each stored as a run",
                            className="small text-secondary",
                        ),
                    ],
                    className="mb-2",
                ),
                controls,
                html.Div(
                    progress_bars("bt-sweep-progress", "bt-sweep-outcome"), id="bt-sweep-bars"
                ),
                html.Div(id="bt-sweep-message", className="sl-status small mt-1"),
                result,
                dcc.Store(id="bt-sweep-data"),
            ],
            className="p-2",
        ),
        id="bt-sweep-card",
        className="sl-card mt-3",
    )


def sweep_axes(
    x: str | None, x_values: str | None, y: str | None, y_values: str | None
) -> list[tuple[str | None, str | None]]:
    """The sweep's axes as :func:`~dashboard.pages.backtest.parse.sweep_grid` takes them."""
    return [(x or None, x_values), (y or None, y_values)]


def sweep_feedback(
    values: Mapping[str, Any], axes: Sequence[tuple[str | None, str | None]]
) -> dict[str, tuple[bool, str]]:
    """(invalid, feedback) of each axis' values field, "sweep_x" and "sweep_y": its own
    problem, or the grid's size."""
    strategy = values.get("strategy")
    try:
        cls = registry.get(strategy) if strategy else None
    except registry.UnknownStrategyError:
        cls = None
    problems: dict[str, str] = {}
    if cls is not None:
        try:
            sweep_grid(cls, axes)
        except FormError as exc:
            problems = exc.problems
    return {field: (field in problems, problems.get(field, "")) for field in ("sweep_x", "sweep_y")}


def run_sweep(
    values: Mapping[str, Any],
    axes: Sequence[tuple[str | None, str | None]],
    database_url: str,
    cache_url: str | None,
    theme: str,
    metric: str = SWEEP_METRICS[0],
    *,
    workers: int | None = None,
    set_progress: Any = None,
) -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`SWEEP_OUTPUTS` plus the outcome bar
    ("bt-sweep-outcome-bar.*", "bt-sweep-outcome-step.children"): the sweep of ``axes`` over
    the form ``values`` (the callback's, :func:`~.form.form_dict`), run by
    ``services.batch.run_batch`` (``workers``: its processes; 0 in this one) and stored like the
    command line's. ``set_progress`` gets (percent, "40%", "4/10 runs") as runs finish. A bad
    form or grid runs nothing and says why."""
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in SWEEP_OUTPUTS}
    try:
        request = parse_form(form_dict(values))
        grid = sweep_grid(registry.get(request.strategy), axes)
    except FormError as exc:
        outputs["bt-sweep-message.children"] = html.Span(
            f"Not swept: {exc}", className="text-danger"
        )
        return {**outputs, **outcome("not run", "not swept: fix the problems above", "bt-sweep")}
    names = list(grid)
    full = {name: grid.get(name, [value]) for name, value in request.params.items()}
    jobs = expand(
        [request.strategy],
        {request.strategy: full},
        [request.symbol],
        request.timeframe,
        start=request.start,
        end=request.end,
    )
    skipped = len(jobs.skipped)
    if not jobs:
        reason = jobs.skipped[0].reason if jobs.skipped else "no combination"
        outputs["bt-sweep-message.children"] = html.Span(
            f"Not swept: the strategy refuses every combination ({reason})",
            className="text-danger",
        )
        return {**outputs, **outcome("not run", "not swept: no valid combination", "bt-sweep")}

    def progress(done: int, total: int) -> None:
        if set_progress is not None:
            value = round(100 * done / total)
            set_progress((value, f"{value}%", f"{done}/{total} runs"))

    progress(0, len(jobs))
    started = time.perf_counter()
    report = run_batch(
        database_url,
        jobs,
        request.settings,
        workers=workers,
        progress=progress,
        store=True,
        preset=request.preset,
        cache_url=cache_url,
        results=False,  # a cell opened runs again (saved_runs.reopen_run): no 20 MB per run
    )
    elapsed = time.perf_counter() - started
    rows = []
    for number, result in enumerate(report.results):
        row: dict[str, Any] = {"row": number}
        row.update((name, result.job.params[name]) for name in names)
        row["run_id"] = result.run_id
        row["error"] = result.error
        for key in SWEEP_METRICS:
            value = None if result.metrics is None else result.metrics.get(key)
            row[key] = None if value is None or _nan(value) else float(value)
        rows.append(row)
    data = {"params": names, "form": request_form(request), "rows": rows}
    context = open_context(database_url, cache_url)
    try:
        outputs["bt-runs.rowData"] = runs_rows(context.reads)
    finally:
        context.close()
    ids = [r["run_id"] for r in rows if r["run_id"] is not None]
    stored = f" (#{min(ids)}-#{max(ids)})" if ids else ""
    text = f"Sweep: {len(rows) - len(report.failed)} runs stored{stored} in {elapsed:.1f} s."
    if skipped:
        text += f" {skipped} combination{'s' * (skipped > 1)} skipped: {jobs.skipped[0].reason}."
    if report.failed:
        text += f" {len(report.failed)} failed: {report.failed[0].error}."
    outputs.update(
        {
            "bt-sweep-data.data": data,
            "bt-sweep-graph.figure": sweep_figure(data, metric, theme),
            "bt-sweep-grid.rowData": rows,
            "bt-sweep-grid.columnDefs": sweep_columns(names),
            "bt-sweep-result.style": SHOW,
            "bt-sweep-message.children": text,
        }
    )
    kind = "failed" if len(report.failed) == len(rows) else "done"
    return {
        **outputs,
        **outcome(kind, f"{kind}: {len(rows)}/{len(rows)} runs in {elapsed:.1f} s", "bt-sweep"),
    }


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


SWEEP_OUTCOME: tuple[tuple[str, str], ...] = (
    ("bt-sweep-outcome-bar", "value"),
    ("bt-sweep-outcome-bar", "label"),
    ("bt-sweep-outcome-bar", "color"),
    ("bt-sweep-outcome-step", "children"),
)


def sweep_columns(names: Sequence[str]) -> list[dict[str, Any]]:
    """The grid's columns: the swept parameters, the run id, the key metrics, the error."""
    number = {"type": "rightAligned", "filter": "agNumberColumnFilter"}
    columns: list[dict[str, Any]] = [{"field": n, "headerName": n, **number} for n in names]
    columns.append({"field": "run_id", "headerName": "Run #", "width": 100, **number})
    two = {"function": "params.value == null ? '' : params.value.toFixed(2)"}
    for key in SWEEP_METRICS:
        formatted = {} if key == "# Trades" else {"valueFormatter": two}
        columns.append({"field": key, "headerName": key, **number, **formatted})
    columns.append({"field": "error", "headerName": "Error", "minWidth": 200})
    return columns


def sweep_figure(data: Mapping[str, Any] | None, metric: str, theme: str) -> go.Figure:
    """``metric`` over the swept parameters of ``data`` (the sweep store): a heatmap over two
    (first parameter across, second up), bars over one; a skipped or failed combination is an
    empty cell."""
    look = resolve_theme(theme)
    figure = go.Figure()
    if not data or not data.get("rows"):
        return figure
    names = data["params"]
    rows = data["rows"]
    x = names[0]
    xs = sorted({r[x] for r in rows})
    if len(names) == 1:
        by_x = {r[x]: r.get(metric) for r in rows}
        figure.add_trace(
            go.Bar(
                x=[str(v) for v in xs],
                y=[by_x[v] for v in xs],
                marker_color=look.line_palette[0],
                name=metric,
                hovertemplate=f"{x}=%{{x}}<br>{metric}: %{{y:.3f}}<extra></extra>",
            )
        )
        style_figure(figure, look, hovermode="closest")
        figure.update_xaxes(type="category", title_text=x)
        figure.update_yaxes(title_text=metric)
    else:
        y = names[1]
        ys = sorted({r[y] for r in rows})
        cells = {(r[x], r[y]): r.get(metric) for r in rows}
        z = np.array([[_value(cells.get((cx, cy))) for cx in xs] for cy in ys], dtype=np.float64)
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=[str(v) for v in xs],
                y=[str(v) for v in ys],
                zmid=0,
                colorscale=diverging_scale(look),
                text=cell_text(z, 2, look),
                texttemplate="%{text}",
                textfont={"size": 11},
                xgap=1,
                ygap=1,
                colorbar={"title": {"text": metric, "side": "right"}, "thickness": 12},
                hovertemplate=f"{x}=%{{x}}, {y}=%{{y}}<br>{metric}: %{{z:.3f}}<extra></extra>",
                name=metric,
            )
        )
        style_figure(figure, look, hovermode="closest")
        figure.update_xaxes(type="category", title_text=x, showgrid=False)
        figure.update_yaxes(type="category", title_text=y, showgrid=False, side="left")
    figure.update_layout(showlegend=False, title={"text": metric, "x": 0.01, "font": {"size": 13}})
    return tidy(figure)


def sweep_retheme(
    theme: str, data: Mapping[str, Any] | None, metric: str | None
) -> tuple[Any, dict[str, Any]]:
    """(the figure, the grid's ``dashGridOptions``) of the sweep shown, in ``theme``; the
    figure is ``no_update`` while no sweep is shown."""
    options = sweep_grid_style(resolve_theme(theme))["dashGridOptions"]
    if not data:
        return no_update, options
    return sweep_figure(data, metric or SWEEP_METRICS[0], theme), options


def _value(value: Any) -> float:
    return np.nan if value is None else float(value)


def sweep_pick(
    data: Mapping[str, Any] | None, point: Mapping[str, Any] | None = None, row: Any = None
) -> tuple[dict[str, Any], str]:
    """(the form to load, a message) for the combination clicked: a point of the figure
    (``clickData["points"][0]``: x and y are the parameters' values as text) or a row of the
    grid (``cellClicked["rowIndex"]`` is not used: ``row`` is the row's data). Raises
    LookupError when nothing matches (the sweep was replaced meanwhile)."""
    if not data:
        raise LookupError("no sweep shown")
    names = data["params"]
    rows = data["rows"]
    if row is None:
        if point is None:
            raise LookupError("nothing clicked")
        wanted = [str(point.get("x"))] + ([str(point.get("y"))] if len(names) > 1 else [])
        matches = [r for r in rows if [str(r[n]) for n in names] == wanted]
        if not matches:
            raise LookupError(f"no combination {wanted}")
        row = matches[0]
    form = dict(data["form"])
    form["params"] = {**form["params"], **{n: row[n] for n in names}}
    chosen = ", ".join(f"{n}={row[n]}" for n in names)
    run = f" (run #{row['run_id']})" if row.get("run_id") is not None else ""
    return form, f"Loaded {chosen}{run} into the form: press Run to see it in full."
