"""The Backtest page (/backtest): a form, a background run with a progress bar, the result in
the performance panels, and the saved runs (open one, compare several).

>>> register_callbacks(app, services, dash.DiskcacheManager(diskcache.Cache(cache_dir)))
>>> app.layout = lambda: layout(services, theme="dark")

layout.py      the page: form beside the result, the sweep, the saved runs, the comparison
form.py        the form's widgets and the plain functions of its callbacks (checks, updates)
parse.py       the form's values checked into a request (every problem named), a request
               back into a form, a sweep's values and grid
results.py     run or open, the result shown, compare, retheme, export: plain functions
sweep.py       the sweep: one or two parameters' values run by services.batch, heatmap, grid
style.py       shown/hidden styles, the theme by name, the grids' props, figure tidying
callbacks.py   the page's callbacks (thin wrappers over form.py and results.py)
standalone.py  make_test_app: the page alone, for browser tests and screenshots

Left, the form: strategy (every registered one; or a saved user strategy to start from), its
parameter inputs generated from its ``StrategyParam`` declarations (type, bounds, default),
symbol and timeframe (stored and resampled ones, as the live page), period, costs, sizing,
stops, metrics preset and backtesting.py compat. Every value is checked where it is typed (on
leaving the field or Enter, never per keystroke): an invalid one is flagged red with the reason
and the allowed range, every problem is listed under the form and Run is disabled (and a Run
of an invalid form is refused with the list); nothing is replaced by a default. Right, the
result: KPI cards, equity/drawdown/volume, return distribution, monthly
returns, the trade grid (dash-ag-grid, as the panels module builds it) and the exports.
Below, the sweep (sweep.py), then the saved runs: "Open" shows a stored run again (its stored
trades and equity, or re-run from its stored config for runs stored without them:
services/saved_runs.py) and loads its settings into the form, "Compare" two or more. Charts
and grids take their colours from the "bt-theme" store ("dark"/"light"); writing it redraws
what is shown.

Run and Open go through one dash background callback (``background=True``, the manager passed
in): it runs in a worker process that opens its own database engine from the URL, and reports
each step of :data:`services.backtests.STEPS` to the progress bar (step, name, percentage);
when it ends an outcome bar says how: done, failed at a step, cancelled or not run. Sweep is
another background callback, its progress counting runs. Every callback is a thin wrapper over
a plain function of form.py, results.py or sweep.py (``run_or_open``, ``run_sweep``,
``compare``, ``export``, ...), tested without dash in tests/dashboard/test_backtest_page.py.
The callbacks that store runs are named by :data:`WRITE_OUTPUTS` (one output each: the
server's write guard). Component ids start with "bt-".
"""

from dashboard.pages.backtest.callbacks import register_callbacks
from dashboard.pages.backtest.form import (
    CHECKED,
    FORM_IDS,
    FORM_OUTPUTS,
    PARAM_FEEDBACK,
    PARAM_TYPE,
    form_dict,
    form_feedback,
    form_update,
    param_inputs,
    period_bounds,
    saved_strategy_options,
    strategy_form,
    strategy_options,
    symbol_choices,
)
from dashboard.pages.backtest.layout import layout
from dashboard.pages.backtest.parse import request_form
from dashboard.pages.backtest.results import (
    COMPARE_OUTPUTS,
    KPI_PREFIX,
    PROGRESS_OUTPUTS,
    RESULT_OUTPUTS,
    STEP_NAMES,
    THEMED_OUTPUTS,
    TRADE_ROWS,
    WRITE_OUTPUT,
    compare,
    export,
    outcome,
    result_outputs,
    result_title,
    retheme,
    run_or_open,
    runs_rows,
    selected_run_ids,
    short_label,
    step_progress,
)
from dashboard.pages.backtest.standalone import make_test_app
from dashboard.pages.backtest.style import (
    HIDE,
    SHOW,
    resolve_theme,
    runs_grid_style,
    tidy,
    trades_grid_style,
)
from dashboard.pages.backtest.sweep import (
    SWEEP_METRICS,
    SWEEP_OUTPUTS,
    SWEEP_WRITE_OUTPUT,
    run_sweep,
    sweep_choices,
    sweep_feedback,
    sweep_figure,
    sweep_pick,
)

WRITE_OUTPUTS: tuple[str, ...] = (WRITE_OUTPUT, SWEEP_WRITE_OUTPUT)
"""One output of each callback that stores runs (Run/Open, Sweep): for the write guard."""

__all__ = [
    "CHECKED",
    "COMPARE_OUTPUTS",
    "FORM_IDS",
    "FORM_OUTPUTS",
    "HIDE",
    "KPI_PREFIX",
    "PARAM_FEEDBACK",
    "PARAM_TYPE",
    "PROGRESS_OUTPUTS",
    "RESULT_OUTPUTS",
    "SHOW",
    "STEP_NAMES",
    "SWEEP_METRICS",
    "SWEEP_OUTPUTS",
    "SWEEP_WRITE_OUTPUT",
    "THEMED_OUTPUTS",
    "TRADE_ROWS",
    "WRITE_OUTPUT",
    "WRITE_OUTPUTS",
    "compare",
    "export",
    "form_dict",
    "form_feedback",
    "form_update",
    "layout",
    "make_test_app",
    "outcome",
    "param_inputs",
    "period_bounds",
    "register_callbacks",
    "request_form",
    "resolve_theme",
    "result_outputs",
    "result_title",
    "retheme",
    "run_or_open",
    "run_sweep",
    "runs_grid_style",
    "runs_rows",
    "saved_strategy_options",
    "selected_run_ids",
    "short_label",
    "step_progress",
    "strategy_form",
    "strategy_options",
    "sweep_choices",
    "sweep_feedback",
    "sweep_figure",
    "sweep_pick",
    "symbol_choices",
    "tidy",
    "trades_grid_style",
]
