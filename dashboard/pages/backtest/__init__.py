"""The Backtest page (/backtest): a form, a background run with a progress bar, the result in
the performance panels, and the saved runs (open one, compare several).

>>> register_callbacks(app, services, dash.DiskcacheManager(diskcache.Cache(cache_dir)))
>>> app.layout = lambda: layout(services, theme="dark")

layout.py      the page: form beside the result, the saved runs, the comparison, the stores
form.py        the form's widgets and the plain functions of its callbacks
results.py     run or open, the result shown, compare, retheme, export: plain functions
style.py       shown/hidden styles, the theme by name, the grids' props, figure tidying
callbacks.py   the page's callbacks (thin wrappers over form.py and results.py)
standalone.py  make_test_app: the page alone, for browser tests and screenshots

Left, the form: strategy (every registered one; or a saved user strategy to start from), its
parameter inputs generated from its ``StrategyParam`` declarations (type, bounds, default),
symbol and timeframe (stored and resampled ones, as the live page), period, costs, sizing,
stops, metrics preset and backtesting.py compat. An invalid value shows a message under the
form naming the field (strategy parameters: ``StrategyParamError``'s message), never a
traceback. Right, the result: KPI cards, equity/drawdown/volume, return distribution, monthly
returns, the trade grid (dash-ag-grid, as the panels module builds it) and the exports.
Below, the saved runs: "Open" shows a stored run again (its stored trades and equity, or
re-run from its stored config for runs stored without them: services/saved_runs.py),
"Compare" two or more. Charts and grids take their colours from the "bt-theme" store
("dark"/"light"); writing it redraws what is shown.

Run and Open go through one dash background callback (``background=True``, the manager passed
in): it runs in a worker process that opens its own database engine from the URL, and reports
each step of :data:`services.backtests.STEPS` to the progress bar. Every callback is a thin
wrapper over a plain function of form.py or results.py (``run_or_open``, ``compare``,
``export``, ...), tested without dash in tests/dashboard/test_backtest_page.py. Component ids
start with "bt-".
"""

from dashboard.pages.backtest.callbacks import register_callbacks
from dashboard.pages.backtest.form import (
    FORM_IDS,
    PARAM_TYPE,
    form_dict,
    form_message,
    param_inputs,
    period_bounds,
    saved_strategy_options,
    strategy_form,
    strategy_options,
    symbol_choices,
)
from dashboard.pages.backtest.layout import layout
from dashboard.pages.backtest.results import (
    COMPARE_OUTPUTS,
    KPI_PREFIX,
    RESULT_OUTPUTS,
    STEP_NAMES,
    THEMED_OUTPUTS,
    TRADE_ROWS,
    WRITE_OUTPUT,
    compare,
    export,
    result_outputs,
    result_title,
    retheme,
    run_or_open,
    runs_rows,
    selected_run_ids,
    short_label,
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

__all__ = [
    "COMPARE_OUTPUTS",
    "FORM_IDS",
    "HIDE",
    "KPI_PREFIX",
    "PARAM_TYPE",
    "RESULT_OUTPUTS",
    "SHOW",
    "STEP_NAMES",
    "THEMED_OUTPUTS",
    "TRADE_ROWS",
    "WRITE_OUTPUT",
    "compare",
    "export",
    "form_dict",
    "form_message",
    "layout",
    "make_test_app",
    "param_inputs",
    "period_bounds",
    "register_callbacks",
    "resolve_theme",
    "result_outputs",
    "result_title",
    "retheme",
    "run_or_open",
    "runs_grid_style",
    "runs_rows",
    "saved_strategy_options",
    "selected_run_ids",
    "short_label",
    "strategy_form",
    "strategy_options",
    "symbol_choices",
    "tidy",
    "trades_grid_style",
]
