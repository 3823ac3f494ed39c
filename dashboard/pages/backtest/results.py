"""What the backtest page shows of runs, as plain functions (tested without dash): a run or a
saved one opened (in the background worker, with progress), its result, the comparison of
several saved runs, the page redrawn in another theme, the shown run's exports.

Each returns ``"id.prop"`` -> value for its callback's outputs (:data:`RESULT_OUTPUTS`,
:data:`COMPARE_OUTPUTS`, :data:`THEMED_OUTPUTS`), ``no_update`` where nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
from dash import dcc, html, no_update
from dash.exceptions import PreventUpdate

from analytics.exports import export_bytes, export_filename
from analytics.metrics import period_returns
from components.panels.comparison import (
    RunSummary,
    best_per_row,
    comparison_table,
    comparison_table_component,
    correlation_heatmap_figure,
    drawdown_overlay_figure,
    equity_overlay_figure,
    risk_return_scatter_figure,
)
from components.panels.performance import (
    kpi_cards,
    kpi_values,
    monthly_heatmap_figure,
    monthly_returns_table,
    performance_figure,
    price_decimals,
    returns_distribution_figure,
    trade_table_columns,
    trade_table_records,
)
from dashboard.pages.backtest.form import form_dict
from dashboard.pages.backtest.parse import (
    FormError,
    parse_form,
    request_form,
    unshown_settings,
)
from dashboard.pages.backtest.style import (
    HIDE,
    SHOW,
    resolve_theme,
    runs_grid_style,
    tidy,
    trades_grid_style,
)
from services.backtests import (
    STEPS,
    RunFailed,
    RunResult,
    context_from,
    open_context,
    params_text,
    run_request,
)
from services.saved_runs import ResultCache, list_runs, reopen_run
from strategies.registry import get as get_strategy

KPI_PREFIX = "bt-kpi"
TRADE_ROWS = 2000
"""Trades the grid gets at most: the last ones (a million bars can make 40,000 trades, 16 MB of
rows; the trades export has them all)."""
STEP_NAMES: tuple[str, ...] = STEPS  # what the progress bar shows, in order
# what showing a result writes, in the order of the callback's outputs
WRITE_OUTPUT = "bt-result-title.children"
"""One output of the Run/Open callback, the page's only one that writes (Run stores a run)."""

RESULT_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-result-title", "children"),
    ("bt-kpis", "children"),
    ("bt-performance", "figure"),
    ("bt-returns", "figure"),
    ("bt-returns", "style"),
    ("bt-monthly", "figure"),
    ("bt-monthly", "style"),
    ("bt-trades", "rowData"),
    ("bt-trades", "columnDefs"),
    ("bt-current", "data"),
    ("bt-result-body", "style"),
    ("bt-empty", "style"),
    ("bt-status", "children"),
    ("bt-runs", "rowData"),
    ("bt-outcome-bar", "value"),
    ("bt-outcome-bar", "label"),
    ("bt-outcome-bar", "color"),
    ("bt-outcome-step", "children"),
    ("bt-load", "data"),
)
PROGRESS_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-progress", "value"),
    ("bt-progress", "label"),
    ("bt-progress-step", "children"),
)
"""What the worker reports as a run goes: the bar, its percentage label, the step line."""
Progress = Callable[[Sequence[Any]], None]  # dash's set_progress: PROGRESS_OUTPUTS' values


def step_progress(step: int, total: int, name: str) -> tuple[int, str, str]:
    """The values of :data:`PROGRESS_OUTPUTS` as step ``step`` of ``total`` (from 1) begins:
    ``(40, "40%", "2/5 computing signals")``: the bar counts the steps begun."""
    value = round(100 * step / total)
    return value, f"{value}%", f"{step}/{total} {name}"


def outcome(kind: str, text: str, prefix: str = "bt") -> dict[str, Any]:
    """The outcome bar of a run that ended (``"id.prop"`` -> value of the ``{prefix}-outcome``
    bar and line): a full bar labelled ``kind``, green for "done", red for "failed" and "not
    run", grey for "cancelled"; ``text``, the line under it, says where it ended ("failed at
    1/5 loading data")."""
    color = {"done": "success", "failed": "danger", "cancelled": "secondary", "not run": "danger"}
    return {
        f"{prefix}-outcome-bar.value": 100,
        f"{prefix}-outcome-bar.label": kind,
        f"{prefix}-outcome-bar.color": color[kind],
        f"{prefix}-outcome-step.children": text,
    }


def runs_rows(sessions: Any) -> list[dict[str, Any]]:
    """The saved-runs grid's rows (:func:`services.saved_runs.list_runs`), newest first; each
    also carries ``row_id``, its run id as text (the grid's row id)."""
    return [{**run.row(), "row_id": str(run.id)} for run in list_runs(sessions)]


def run_or_open(
    trigger: str | None,
    values: Mapping[str, Any],
    selected_ids: Sequence[Any] | None,
    database_url: str,
    cache_url: str | None,
    theme: str,
    *,
    set_progress: Progress | None = None,
    min_step_s: float = 0.0,
) -> dict[str, Any]:
    """What the Run ("bt-run") or Open ("bt-open") button shows: ``"id.prop"`` -> value for
    every one of :data:`RESULT_OUTPUTS`. ``selected_ids``: the saved-runs grid's selected
    rows (or run ids).

    Run: the form's backtest, stored. Open: the first selected saved run as it finished (its
    stored trades and equity; a run stored without them re-runs from its stored config;
    nothing stored), and its settings loaded into the form ("bt-load": the next Run runs
    them). Opens its own database context from ``database_url`` (the background worker is
    another process). ``set_progress`` gets each step (:data:`STEP_NAMES`) as it begins
    (:func:`step_progress`); ``min_step_s`` keeps each step on screen at least that long (0 in
    the app; a browser test slows a fast run down to watch the bar move). The outcome bar
    says how it ended (:func:`outcome`). A bad form or a failed run only changes the status
    line and the outcome bar.
    """
    selected = selected_run_ids(selected_ids)
    reached = [(0, 0, "")]  # the last step begun: (step, total, name)

    def progress(step: int, total: int, name: str) -> None:
        reached.append((step, total, name))
        if set_progress is not None:
            set_progress(step_progress(step, total, name))
        if min_step_s > 0:
            time.sleep(min_step_s)

    if trigger == "bt-open" and not selected:
        return _status_only(
            "Select a saved run in the table, then press Open.",
            outcome("not run", "not opened: no saved run selected"),
        )
    if trigger not in ("bt-run", "bt-open"):
        raise PreventUpdate
    request = None
    if trigger == "bt-run":
        try:
            request = parse_form(form_dict(values))
        except FormError as exc:
            count = len(exc.problems)
            return _status_only(
                _message(f"Not run: {exc}", "danger"),
                outcome("not run", f"not run: the form has {count} problem{'s' * (count > 1)}"),
            )
    started = time.perf_counter()
    context = open_context(database_url, cache_url)
    try:
        try:
            if request is not None:
                result = run_request(request, context, progress=progress)
            else:
                result = reopen_run(selected[0], context, progress=progress)
        except RunFailed as exc:
            stored = f" (stored as failed run #{exc.run_id})" if exc.run_id else ""
            step, total, name = reached[-1]
            at = f"{step}/{total} {name}" if total else exc.step
            return _status_only(
                _message(f"Run failed at {exc}{stored}", "danger"),
                outcome("failed", f"failed at {at}"),
            )
        rows = runs_rows(context.reads)
    finally:
        context.close()
    elapsed = time.perf_counter() - started
    step, total, _ = reached[-1]
    if request is not None:
        status = f"Run #{result.run_id} stored in {elapsed:.1f} s."
        load: Any = no_update  # the form already describes the run
    else:
        how = (
            f"its stored trades and equity, {elapsed:.1f} s"
            if result.from_stored
            else f"re-run from its stored config in {elapsed:.1f} s"
        )
        status = f"Opened run #{result.run_id} ({how}); the form now holds its settings."
        unshown = unshown_settings(result.request)
        if unshown:  # said, never dropped silently
            status += f" The form cannot hold {', '.join(unshown)}: a Run trades without them."
        load = request_form(result.request)
    outputs = result_outputs(result, theme, status)
    outputs["bt-runs.rowData"] = rows  # the grid keeps the selection (rows keyed by id)
    outputs.update(outcome("done", f"done: {step}/{total} steps in {elapsed:.1f} s"))
    outputs["bt-load.data"] = load
    return outputs


def selected_run_ids(selection: Sequence[Any] | None) -> list[int]:
    """Run ids of a selection: the saved-runs grid's ``selectedRows`` (row dicts) or ids."""
    return [int(r["id"]) if isinstance(r, Mapping) else int(r) for r in (selection or [])]


def _message(text: str, color: str) -> html.Span:
    return html.Span(text, className=f"text-{color}")


def _status_only(status: Any, ended: Mapping[str, Any]) -> dict[str, Any]:
    """Only the status line and the outcome bar change."""
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in RESULT_OUTPUTS}
    outputs["bt-status.children"] = status
    outputs.update(ended)
    return outputs


def result_title(result: RunResult) -> tuple[str, str]:
    """(headline, details) of a result: ``("SMA crossover (fast=5, slow=30, direction=long) ·
    SP500 1d", "run #12 · 1999-01-04 → 2018-12-31 · metrics: backtesting.py")``."""
    request = result.request
    cls = get_strategy(request.strategy)
    headline = (
        f"{cls.title or cls.name} ({params_text(request.params)}) · "
        f"{request.symbol} {request.timeframe}"
    )
    run = f"run #{result.run_id}" if result.run_id is not None else "not stored"
    period = f"{_day(request.start)} → {_day(request.end)}"
    return headline, f"{run} · {period} · metrics: {request.preset}"


def _title(headline: str, details: str) -> list[html.Div]:
    return [
        html.Div(headline, className="fw-semibold text-truncate", title=headline),
        html.Div(details, className="small text-secondary text-truncate"),
    ]


def _day(value: pd.Timestamp | None) -> str:
    return "…" if value is None else value.strftime("%Y-%m-%d")


def result_outputs(result: RunResult, theme: str, status: Any = "") -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`RESULT_OUTPUTS` but the saved-runs table, for
    ``result``: title, KPI cards, performance, returns and monthly figures (the two
    side by side at one height), trade rows (the last :data:`TRADE_ROWS`, numbered as in the
    run; the status line says so when there are more) and columns, the current-run store, the
    result shown and the hint hidden, the status line."""
    look = resolve_theme(theme)
    trades = result.trades
    decimals = price_decimals(trades["entry_price"]) if len(trades) else 2
    returns = period_returns(result.equity, result.request.preset)
    monthly = monthly_returns_table(result.equity)
    height = {"height": f"{min(560, max(300, 70 + 22 * len(monthly)))}px"}
    heatmap = tidy(monthly_heatmap_figure(monthly, theme=look))
    heatmap.update_layout(height=None, autosize=True)
    shown = trades.iloc[-TRADE_ROWS:]
    if len(shown) < len(trades):
        note = (
            f"The trade table shows the last {len(shown):,} of {len(trades):,} trades; "
            "export the trades for all of them."
        )
        status = [status, " ", note] if status else note
    return {
        "bt-result-title.children": _title(*result_title(result)),
        "bt-kpis.children": kpi_cards(
            kpi_values(result.metrics, result.initial_cash), id_prefix=KPI_PREFIX, theme=look
        ),
        "bt-performance.figure": tidy(
            performance_figure(result.equity, trades, benchmark=result.benchmark, theme=look)
        ),
        "bt-returns.figure": tidy(returns_distribution_figure(returns, theme=look)),
        "bt-returns.style": height,
        "bt-monthly.figure": heatmap,
        "bt-monthly.style": height,
        "bt-trades.rowData": trade_table_records(shown, len(trades) - len(shown) + 1),
        "bt-trades.columnDefs": trade_table_columns(decimals, look),
        "bt-current.data": {"run_id": result.run_id, "label": short_label(result)},
        "bt-result-body.style": SHOW,
        "bt-empty.style": HIDE,
        "bt-status.children": status,
    }


def short_label(result: RunResult, *, series: bool = True) -> str:
    """``"#12 sma_crossover(5, 30, long) SP500 1d"`` (``series=False``: without the symbol and
    timeframe): a legend and column label."""
    request = result.request
    values = ", ".join(
        f"{v:g}" if isinstance(v, float) else str(v) for v in request.params.values()
    )
    head = f"#{result.run_id} " if result.run_id is not None else ""
    tail = f" {request.symbol} {request.timeframe}" if series else ""
    return f"{head}{request.strategy}({values}){tail}"


COMPARE_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-compare-table", "children"),
    ("bt-compare-equity", "figure"),
    ("bt-compare-drawdown", "figure"),
    ("bt-compare-correlation", "figure"),
    ("bt-compare-scatter", "figure"),
    ("bt-compare-card", "style"),
    ("bt-compared", "data"),
    ("bt-runs-message", "children"),
)


def compare(
    run_ids: Sequence[Any] | None, services: Any, cache: ResultCache, theme: str
) -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`COMPARE_OUTPUTS`: the comparison panel of the selected
    runs (2 or more, by run id): metrics table with the best per row marked, equity overlay,
    drawdown overlay, correlation heatmap, risk/return scatter, the panel shown, the ids
    compared, a message. Fewer than two runs: only the message changes."""
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in COMPARE_OUTPUTS}
    ids = sorted(set(selected_run_ids(run_ids)))  # oldest first, whatever the selection order
    if len(ids) < 2:
        outputs["bt-runs-message.children"] = "Select two or more saved runs, then press Compare."
        return outputs
    look = resolve_theme(theme)
    context = context_from(services.sessions, services.integrator)
    try:
        results = [cache.get(run_id, context) for run_id in ids]
    except RunFailed as exc:
        outputs["bt-runs-message.children"] = _message(f"Cannot compare: {exc}", "danger")
        return outputs
    # the symbol and timeframe in the labels only when they differ between the runs
    series = len({(r.request.symbol, r.request.timeframe) for r in results}) > 1
    runs = {}
    for result in results:
        label = short_label(result, series=series)
        runs[label] = RunSummary(label, result.equity, result.trades, result.metrics)
    table = comparison_table(runs)
    outputs.update(
        {
            "bt-compare-table.children": comparison_table_component(
                table, best_per_row(table), theme=look, table_id="bt-compare-metrics"
            ),
            "bt-compare-equity.figure": tidy(equity_overlay_figure(runs, theme=look)),
            "bt-compare-drawdown.figure": tidy(drawdown_overlay_figure(runs, theme=look)),
            "bt-compare-correlation.figure": tidy(correlation_heatmap_figure(runs, theme=look)),
            "bt-compare-scatter.figure": tidy(risk_return_scatter_figure(runs, theme=look)),
            "bt-compare-card.style": SHOW,
            "bt-compared.data": ids,
            "bt-runs-message.children": f"Comparing runs {', '.join(f'#{i}' for i in ids)}.",
        }
    )
    return outputs


THEMED_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-kpis", "children"),
    ("bt-performance", "figure"),
    ("bt-returns", "figure"),
    ("bt-monthly", "figure"),
    ("bt-trades", "dashGridOptions"),
    ("bt-trades", "columnDefs"),
    ("bt-runs", "dashGridOptions"),
    *COMPARE_OUTPUTS[:5],
)


def retheme(
    theme: str,
    current: Mapping[str, Any] | None,
    compared: Sequence[int] | None,
    services: Any,
    cache: ResultCache,
) -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`THEMED_OUTPUTS` in ``theme``: the tables' colours, and
    the shown run (``current``) and comparison (``compared`` ids) drawn again (from the
    result cache, or reopened); what is not shown stays as it is."""
    look = resolve_theme(theme)
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in THEMED_OUTPUTS}
    outputs["bt-trades.dashGridOptions"] = trades_grid_style(look)["dashGridOptions"]
    outputs["bt-trades.columnDefs"] = trade_table_columns(2, look)
    outputs["bt-runs.dashGridOptions"] = runs_grid_style(look)["dashGridOptions"]
    context = context_from(services.sessions, services.integrator)
    if current and current.get("run_id") is not None:
        try:
            shown = result_outputs(cache.get(int(current["run_id"]), context), theme)
        except RunFailed:  # deleted meanwhile: leave the charts as they are
            shown = {}
        for key in (
            "bt-trades.columnDefs",
            "bt-kpis.children",
            "bt-performance.figure",
            "bt-returns.figure",
            "bt-monthly.figure",
        ):
            outputs[key] = shown.get(key, no_update)
    if compared and len(compared) >= 2:
        panel = compare(compared, services, cache, theme)
        for id_, prop in COMPARE_OUTPUTS[:5]:
            outputs[f"{id_}.{prop}"] = panel[f"{id_}.{prop}"]
    return outputs


def export(
    kind: str, fmt: str, current: Mapping[str, Any] | None, services: Any, cache: ResultCache
) -> dict[str, Any]:
    """``dcc.Download`` data of the shown run's ``kind`` ("trades", "metrics", "equity") in
    ``fmt`` ("csv", "json", "xlsx"), via analytics.exports; raises PreventUpdate when no
    stored run is shown."""
    if not current or current.get("run_id") is None:
        raise PreventUpdate
    context = context_from(services.sessions, services.integrator)
    result = cache.get(int(current["run_id"]), context)
    data: Any = {"trades": result.trades, "metrics": result.metrics, "equity": result.equity}[kind]
    extra = {"benchmark": result.benchmark} if kind == "equity" else {}
    payload, _, mime = export_bytes(kind, data, fmt, **extra)  # type: ignore[arg-type]
    name = export_filename(kind, current.get("label") or f"run {current['run_id']}", fmt)  # type: ignore[arg-type]
    return dcc.send_bytes(payload, name, type=mime)
