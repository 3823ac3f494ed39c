"""The Backtest page without a browser: its service functions (services/backtests.py,
services/saved_runs.py; the form: dashboard/pages/backtest/parse.py) and its callbacks as
plain functions (dashboard/pages/backtest/), on SQLite and on PostgreSQL.

The reference for every number is the command line's pipeline: ``services.batch.run_job``
with the settings ``python app.py backtest`` builds (and once the command itself, --json).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io as pio
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate
from pandas.testing import assert_frame_equal, assert_series_equal

import cli
from analytics.backtest import BacktestSettings
from analytics.metrics import PRESETS
from cli.backtest import backtest_settings
from components.charts.theme import DARK, LIGHT
from components.panels.performance import format_metric, metric_slug
from config.settings import Settings
from dashboard.pages import backtest as page
from dashboard.pages.backtest.parse import (
    MAX_COMBINATIONS,
    FormError,
    form_problems,
    parse_form,
    sweep_grid,
    unshown_settings,
)
from database.repositories import CandleRepository, StrategyRunRepository
from market.sample_data import load_sample
from services.backtests import (
    STEPS,
    BacktestRequest,
    BatchJob,
    JobContext,
    RunFailed,
    context_from,
    open_context,
    run_request,
)
from services.batch import run_job
from services.runtime import Services, build_services
from services.saved_runs import ResultCache, compare_runs, list_runs, load_request, reopen_run
from services.strategy_runs import run_strategy
from strategies.manager import StrategyManager
from strategies.registry import all_strategies, create
from strategies.registry import get as get_strategy

FORM: dict[str, Any] = {
    "strategy": "sma_crossover",
    "params": {"fast": 5, "slow": 30},
    "symbol": "SP500",
    "timeframe": "1d",
}
DEMO_BARS = 3 * 1440  # three days of the bundled 1m random walk


def cli_settings(strategy: str = "sma_crossover", **params: Any) -> BacktestSettings:
    """What `python app.py backtest --strategy ... --set ...` trades with (its defaults)."""
    args = type("Args", (), {"cash": 10_000.0, "commission": 0.0, "slippage_bps": 0.0})()
    return backtest_settings(args, compat=None, direction=create(strategy, **params).direction)


def cli_job(params: dict[str, Any], **window: Any) -> BatchJob:
    return BatchJob("sma_crossover", params, "SP500", "1d", window.get("start"), window.get("end"))


def make_services(database_url: str, tmp_path: Path) -> Services:
    """Services over ``database_url`` holding the whole SP500 and three days of DEMO, no feed."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "STRATLENS_DATA_DIR": str(tmp_path),
            "FEEDS": "none",
            "LOAD_SAMPLE_DATA": "false",
            "STRATEGIES_DIR": str(tmp_path / "user_strategies"),
        }
    )
    context = open_context(database_url, None)
    try:
        with context.writes.begin() as session:
            repo = CandleRepository(session)
            repo.upsert("SP500", "1d", load_sample("SP500"))
            repo.upsert("DEMO", "1m", load_sample("DEMO").iloc[:DEMO_BARS])
    finally:
        context.close()
    return build_services(settings)


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    services = make_services(database_url, tmp_path)
    yield services
    services.close()


@pytest.fixture
def context(services: Services) -> JobContext:
    return context_from(services.sessions, services.integrator)


@pytest.fixture
def reference(services: Services) -> Iterator[JobContext]:
    """A context of its own (as the command line opens one): no cache shared with the page."""
    context = open_context(services.settings.database_url, None)
    yield context
    context.close()


def assert_same_result(a: Any, b: Any) -> None:
    assert_series_equal(a.metrics, b.metrics)
    assert_frame_equal(a.trades, b.trades)
    assert_series_equal(a.equity, b.equity)
    assert_series_equal(a.benchmark, b.benchmark)


# -- the form ------------------------------------------------------------------------------


def test_a_default_form_trades_like_the_command_line():
    request = parse_form(FORM)
    assert request.params == {"fast": 5, "slow": 30, "direction": "long"}
    assert request.settings == cli_settings(fast=5)
    assert (request.start, request.end, request.preset) == (None, None, "backtesting.py")


def test_percent_fields_become_fractions_and_the_end_day_is_included():
    request = parse_form(
        {
            **FORM,
            "start": "2010-01-01",
            "end": "2010-12-31",
            "commission": 0.1,
            "commission_fixed": 1,
            "slippage_bps": 2,
            "spread_bps": 3,
            "stop_loss": 5,
            "take_profit": 150,
            "trailing_stop": 7.5,
            "max_drawdown_halt": 30,
            "sizing": "fraction",
            "size": 50,
            "direction": "both",
            "fill": "close",
            "preset": "quantstats",
        }
    )
    s = request.settings
    assert (s.commission_pct, s.commission_fixed, s.slippage_bps, s.spread_bps) == (
        0.001,
        1.0,
        2.0,
        3.0,
    )
    assert (s.stop_loss_pct, s.take_profit_pct, s.trailing_stop_pct) == (0.05, 1.5, 0.075)
    assert (s.max_drawdown_halt_pct, s.sizing, s.size, s.fill) == (0.3, "fraction", 0.5, "close")
    assert s.direction == request.params["direction"] == "both"
    assert request.start == pd.Timestamp("2010-01-01", tz="UTC")
    assert request.end == pd.Timestamp("2011-01-01", tz="UTC") - pd.Timedelta(microseconds=1)
    assert request.preset == "quantstats"
    quantity = parse_form({**FORM, "sizing": "quantity", "size": 3}).settings
    assert (quantity.sizing, quantity.size) == ("quantity", 3.0)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"params": {"fast": 40, "slow": 30}}, "fast", "fast=40 is not below slow"),
        ({"params": {"fast": 1}}, "fast", "fast=1 is out of range; allowed: int in 2..1000"),
        ({"params": {"fast": 5.5}}, "fast", "fast=5.5 is not an integer"),
        ({"params": {"fast": None}}, "fast", "fast is empty; allowed: int in 2..1000"),
        ({"params": {"fsat": 5}}, "fsat", "did you mean 'fast'?"),
        ({"strategy": "sma_crosover"}, "strategy", "did you mean 'sma_crossover'?"),
        ({"strategy": None}, "strategy", "Strategy: choose one"),
        ({"symbol": ""}, "symbol", "Symbol: choose one"),
        ({"timeframe": "2d"}, "timeframe", "Timeframe: '2d' is not one of"),
        ({"cash": 0}, "cash", "Cash: 0 is invalid: expected a number > 0"),
        ({"cash": "-5000"}, "cash", "Cash: -5000 is invalid: expected a number > 0"),
        ({"cash": "lots"}, "cash", "Cash: 'lots' is not a number"),
        ({"cash": None}, "cash", "Cash: empty; enter a number > 0"),
        ({"cash": " "}, "cash", "Cash: empty; enter a number > 0"),
        ({"commission": 12}, "commission", "Commission [%]: 12 is invalid"),
        (
            {"commission": "50"},
            "commission",
            "Commission [%]: 50 is invalid: expected a number >= 0 and <= 10",
        ),
        ({"commission": None}, "commission", "Commission [%]: empty; enter a number >= 0"),
        ({"spread_bps": ""}, "spread_bps", "Spread [bps]: empty; enter a number >= 0 and <= 10000"),
        ({"params": {"fast": "abc"}}, "fast", "fast='abc' is not a number; allowed: int in 2"),
        ({"params": {"fast": "7.5"}}, "fast", "fast=7.5 is not an integer"),
        ({"commission": -1}, "commission", "Commission [%]: -1 is invalid"),
        ({"slippage_bps": 20_000}, "slippage_bps", "Slippage [bps]: 20000 is invalid"),
        ({"stop_loss": 0}, "stop_loss", "Stop-loss [%]: 0 is invalid: expected a number > 0"),
        ({"trailing_stop": 100.5}, "trailing_stop", "Trailing stop [%]: 100.5 is invalid"),
        ({"sizing": "fraction"}, "size", "Size: empty; enter a number > 0"),
        ({"sizing": "fraction", "size": 150}, "size", "expected a percent in (0, 100]"),
        ({"sizing": "lots"}, "sizing", "Sizing: 'lots' is not one of all_in"),
        ({"direction": "up"}, "direction", "Direction: 'up' is not one of long"),
        ({"preset": "mine"}, "preset", "Metrics preset: 'mine' is not one of"),
        ({"start": "2010-13-01"}, "start", "From: '2010-13-01' is not a date"),
        ({"start": "2011-01-01", "end": "2010-01-01"}, "end", "To: 2010-01-01 is before From"),
        ({"compat": True, "stop_loss": 5}, "compat", "does not support Stop-loss [%]"),
        (
            {"compat": True, "sizing": "half_kelly"},
            "compat",
            "does not support Sizing='half_kelly'",
        ),
    ],
)
def test_an_invalid_value_is_refused_with_a_message_naming_its_field(change, field, words):
    with pytest.raises(FormError) as caught:
        parse_form({**FORM, **change})
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert list(caught.value.problems) == [field]


def test_every_problem_is_named_and_nothing_is_replaced_by_a_default():
    # the form: cash -5000 and commission 50 ran with the defaults, unflagged
    form = {**FORM, "cash": "-5000", "commission": "50", "params": {"fast": "x", "slow": "2"}}
    with pytest.raises(FormError) as caught:
        parse_form(form)
    assert caught.value.problems == {
        "fast": "sma_crossover: fast='x' is not a number; allowed: int in 2..1000",
        "slow": "sma_crossover: slow=2 is out of range; allowed: int in 3..5000",
        "cash": "Cash: -5000 is invalid: expected a number > 0",
        "commission": "Commission [%]: 50 is invalid: expected a number >= 0 and <= 10",
    }
    assert str(caught.value).startswith("4 problems: sma_crossover: fast='x' is not a number")
    assert caught.value.field == "fast"
    assert form_problems(form) == caught.value.problems
    # what the text inputs send is read as typed; empty stops are "off", not a problem
    request = parse_form(
        {**FORM, "cash": " 2500.5 ", "commission": "0.2", "params": {"fast": "7"}, "stop_loss": ""}
    )
    assert (request.settings.cash, request.settings.commission_pct) == (2500.5, 0.002)
    assert (request.params["fast"], request.settings.stop_loss_pct) == (7, None)
    assert form_problems(FORM) == {}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {
            "params": {"fast": 6, "slow": 40},
            "start": "2010-01-04",
            "end": "2012-06-29",
            "cash": 2500.0,
            "commission": 0.07,
            "commission_fixed": 1.5,
            "slippage_bps": 2.0,
            "spread_bps": 3.0,
            "fill": "close",
            "direction": "both",
            "sizing": "fraction",
            "size": 35.0,
            "stop_loss": 7.0,
            "take_profit": 150.0,
            "trailing_stop": 2.5,
            "max_drawdown_halt": 30.0,
            "preset": "quantstats",
        },
        {"sizing": "quantity", "size": 3.0, "compat": True},
    ],
)
def test_a_request_loads_back_into_the_form_that_describes_it(change):
    request = parse_form({**FORM, **change})
    form = page.request_form(request)
    assert parse_form(form) == request
    assert {k: form[k] for k in change if k != "params"} == {
        k: v for k, v in change.items() if k != "params"
    }
    assert form["params"] == {k: v for k, v in request.params.items() if k != "direction"}
    assert unshown_settings(request) == []


def test_settings_the_form_cannot_hold_are_named_not_dropped():
    request = parse_form(FORM)
    # a sweep of the command line trades with BacktestSettings' own direction ("both")
    stored = replace(request, settings=replace(request.settings, direction="both", kelly_window=20))
    assert unshown_settings(stored) == ["direction='both'", "kelly_window=20"]


@pytest.mark.parametrize(
    ("axes", "grid"),
    [
        (
            [("fast", "5:20:5"), ("slow", "30, 40,50")],
            {"fast": [5, 10, 15, 20], "slow": [30, 40, 50]},
        ),
        ([("fast", "5, 5, 8"), (None, "")], {"fast": [5, 8]}),
        ([("fast", "10:11:5"), ("slow", "60")], {"fast": [10], "slow": [60]}),
    ],
)
def test_a_sweep_grid_is_read_from_lists_and_ranges(axes, grid):
    assert sweep_grid(get_strategy("sma_crossover"), axes) == grid
    oversold = sweep_grid(get_strategy("rsi_reversion"), [("oversold", "20:30:2.5"), (None, None)])
    assert oversold == {"oversold": [20.0, 22.5, 25.0, 27.5, 30.0]}


@pytest.mark.parametrize(
    ("axes", "field", "words"),
    [
        ([("fast", "")], "sweep_x", "Sweep fast: empty; enter values"),
        ([("fast", "5, x")], "sweep_x", "Sweep fast: 'x' is not a number"),
        ([("fast", "1, 5")], "sweep_x", "fast=1 is out of range; allowed: int in 2..1000"),
        ([("fast", "5.5")], "sweep_x", "fast=5.5 is not an integer"),
        ([("fast", "5:10")], "sweep_x", "a range is start:stop:step (5:50:5)"),
        ([("fast", "10:5:1")], "sweep_x", "expected start <= stop and a step > 0"),
        ([("fast", "5:10:0")], "sweep_x", "expected start <= stop and a step > 0"),
        ([("fast", "2:1000:1")], "sweep_x", "gives 999 values; at most 400 combinations run"),
        ([("direction", "1")], "sweep_x", "'direction' is not a number parameter of sma_crossover"),
        ([("fast", "5"), ("fast", "6")], "sweep_y", "fast is swept twice"),
        ([(None, ""), (None, "")], "sweep_x", "choose a parameter to sweep"),
        (
            [("fast", "2:42:2"), ("slow", "50:100:2")],
            "sweep_y",
            "21 fast x 26 slow = 546 combinations; at most 400 run",
        ),
    ],
)
def test_a_bad_sweep_grid_is_refused_naming_its_field(axes, field, words):
    with pytest.raises(FormError) as caught:
        sweep_grid(get_strategy("sma_crossover"), axes)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_exactly_the_bound_of_combinations_runs():
    grid = sweep_grid(get_strategy("sma_crossover"), [("fast", "2:41:1"), ("slow", "50:59:1")])
    assert len(grid["fast"]) * len(grid["slow"]) == MAX_COMBINATIONS == 400


# -- the service functions -----------------------------------------------------------------


def test_a_run_reports_each_step_matches_the_command_line_and_is_stored(context, reference):
    seen: list[tuple[int, int, str]] = []
    result = run_request(parse_form(FORM), context, progress=lambda *step: seen.append(step))
    assert seen == [(i + 1, len(STEPS), name) for i, name in enumerate(STEPS)]
    expected = run_job(
        cli_job({"fast": 5}), cli_settings(fast=5), reference, store=False, keep_backtest=True
    )
    assert_series_equal(result.metrics, expected.metrics)
    assert_frame_equal(result.trades, expected.backtest.trades)
    assert_series_equal(result.equity, expected.backtest.equity)
    assert result.metrics["# Trades"] > 50

    frame = load_sample("SP500")
    assert (result.request.start, result.request.end) == (frame.index[0], frame.index[-1])
    with context.reads() as session:
        run = StrategyRunRepository(session).get(result.run_id)
    assert (run.strategy_name, run.symbol, run.timeframe, run.mode, run.status) == (
        "sma_crossover",
        "SP500",
        "1d",
        "backtest",
        "finished",
    )
    assert run.config["fast"] == 5
    assert run.config["backtest"]["cash"] == 10_000.0
    assert run.config["window"] == {
        "start": frame.index[0].isoformat(),
        "end": frame.index[-1].isoformat(),
    }
    assert run.config["metrics"] == {"preset": "backtesting.py"}
    saved = list_runs(context.reads)
    assert [s.id for s in saved] == [result.run_id]
    assert saved[0].row() == {
        "id": result.run_id,
        "strategy": "sma_crossover",
        "params": "fast=5, slow=30, direction=long",
        "symbol": "SP500",
        "timeframe": "1d",
        "period": "1999-01-04 → 2018-12-31",
        "finished": run.finished_at.strftime("%Y-%m-%d %H:%M:%S"),
    }


def test_reopening_a_run_gives_the_same_result_even_after_the_series_grew(context, reference):
    form = {
        **FORM,
        "params": {"fast": 8, "slow": 21},
        "direction": "both",
        "commission": 0.1,
        "stop_loss": 4,
        "preset": "quantstats",
        "start": "2004-01-01",
    }
    shown = run_request(parse_form(form), context)
    later = load_sample("SP500").iloc[-30:].copy()  # a live feed appends bars after the run
    later.index = later.index + pd.Timedelta(days=60)
    with context.writes.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", later)

    again = reopen_run(shown.run_id, reference)
    assert_same_result(again, shown)
    assert again.run_id == shown.run_id
    assert again.request == shown.request
    assert again.metrics.name == "quantstats"
    request, finished = load_request(reference.reads, shown.run_id)
    assert request == shown.request
    assert finished is not None
    assert len(list_runs(reference.reads)) == 1, "reopening stores nothing"


def test_a_resampled_timeframe_runs_on_complete_buckets_and_reopens_the_same(context, reference):
    form = {
        **FORM,
        "timeframe": "1w",
        "params": {"fast": 4, "slow": 12},
        "start": "2005-01-01",
        "end": "2012-12-31",
    }
    result = run_request(parse_form(form), context)
    index = result.candles.index
    assert (index.day_of_week == 0).all(), "weekly buckets start on Monday"
    assert index[0] == pd.Timestamp("2005-01-03", tz="UTC")
    assert result.request.end == pd.Timestamp("2012-12-31", tz="UTC")  # the last stored bar
    assert result.metrics["# Trades"] > 0
    assert_same_result(reopen_run(result.run_id, reference), result)


def test_a_run_without_data_fails_at_loading_and_is_stored_as_failed(context):
    seen: list[str] = []
    form = {**FORM, "start": "2030-01-01"}
    with pytest.raises(RunFailed) as caught:
        run_request(parse_form(form), context, progress=lambda *step: seen.append(step[2]))
    assert caught.value.step == "loading data"
    assert str(caught.value) == "loading data: no 1d candles of SP500 in this window"
    assert seen == ["loading data"]
    with context.reads() as session:
        run = StrategyRunRepository(session).get(caught.value.run_id)
    assert (run.status, run.error) == ("failed", str(caught.value))
    assert list_runs(context.reads) == [], "failed runs are not listed"
    with pytest.raises(RunFailed, match="is a failed backtest run"):
        reopen_run(run.id, context)
    with pytest.raises(RunFailed, match="no stored run with id 999"):
        reopen_run(999, context)
    with pytest.raises(RunFailed, match="cannot be resampled to 1h"):
        run_request(parse_form({**FORM, "timeframe": "1h"}), context, store=False)


def test_runs_of_the_command_line_are_listed_and_reopen_like_it_computed_them(
    context, reference, services
):
    stored = run_job(cli_job({"fast": 7}), cli_settings(fast=7), reference, keep_backtest=True)
    signals_only = run_strategy(
        services.sessions, services.integrator, create("ema_crossover"), "SP500", "1d"
    )
    saved = list_runs(context.reads)
    assert [s.id for s in saved] == [stored.run_id], "a signals-only run has no backtest"
    assert saved[0].period == "all bars"
    again = reopen_run(stored.run_id, context)
    assert_series_equal(again.metrics, stored.metrics)
    assert_frame_equal(again.trades, stored.backtest.trades)
    with pytest.raises(RunFailed, match="has no backtest settings"):
        reopen_run(signals_only.run.id, context)


def test_compare_reopens_each_run_once_in_order_and_the_cache_reuses_results(context):
    first = run_request(parse_form(FORM), context)
    second = run_request(parse_form({**FORM, "params": {"fast": 10, "slow": 50}}), context)
    results = compare_runs([second.run_id, first.run_id, second.run_id], context)
    assert [r.run_id for r in results] == [second.run_id, first.run_id]
    assert_same_result(results[1], first)
    cache = ResultCache(size=1)
    hit = cache.get(first.run_id, context)
    assert cache.get(first.run_id, context) is hit
    cache.get(second.run_id, context)  # evicts the first (size 1)
    assert cache.get(first.run_id, context) is not hit


def test_a_request_round_trips_through_its_stored_config():
    request = parse_form({**FORM, "stop_loss": 3, "compat": False, "preset": "trade"})
    request = BacktestRequest(**{**request.__dict__, "start": pd.Timestamp("2001-01-02", tz="UTC")})
    config = json.loads(json.dumps(request.config()))
    record = type(
        "Run",
        (),
        {
            "id": 1,
            "strategy_name": "sma_crossover",
            "symbol": "SP500",
            "timeframe": "1d",
            "config": config,
        },
    )()
    assert BacktestRequest.from_run(record) == request


# -- the page's callbacks as plain functions -----------------------------------------------


def component_ids(component: Any) -> list[Any]:
    """Every id in a component tree."""
    found = []
    stack = [component]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not hasattr(item, "to_plotly_json"):
            continue
        if getattr(item, "id", None) is not None:
            found.append(item.id)
        children = getattr(item, "children", None)
        if children is not None:
            stack.append(children)
        for prop in ("label",):
            value = getattr(item, prop, None)
            if hasattr(value, "to_plotly_json"):
                stack.append(value)
    return found


def find(component: Any, id_: Any) -> Any:
    stack = [component]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif hasattr(item, "to_plotly_json"):
            if getattr(item, "id", None) == id_:
                return item
            children = getattr(item, "children", None)
            if children is not None:
                stack.append(children)
    raise LookupError(id_)


def values(**change: Any) -> dict[str, Any]:
    """What the callback's form states hold: the layout's defaults, then ``change``."""
    form = {
        "strategy": "sma_crossover",
        "symbol": "SP500",
        "timeframe": "1d",
        "start": "1999-01-04",
        "end": "2018-12-31",
        "cash": 10_000,
        "commission": 0,
        "commission_fixed": 0,
        "slippage_bps": 0,
        "spread_bps": 0,
        "fill": "next_open",
        "direction": "long",
        "sizing": "all_in",
        "size": None,
        "stop_loss": None,
        "take_profit": None,
        "trailing_stop": None,
        "max_drawdown_halt": None,
        "preset": "backtesting.py",
        "compat": False,
    }
    params = change.pop("params", {"fast": 10, "slow": 30})
    form.update(change)
    form["param_ids"] = [{"type": page.PARAM_TYPE, "name": name} for name in params]
    form["param_values"] = list(params.values())
    return form


def kpi_text(outputs: dict[str, Any], key: str) -> str:
    return find(outputs["bt-kpis.children"], f"{page.KPI_PREFIX}-{metric_slug(key)}").children


def run(services: Services, trigger: str, form: dict[str, Any], selected=None, progress=None):
    return page.run_or_open(
        trigger,
        form,
        selected,
        services.settings.database_url,
        services.settings.redis_url,
        "dark",
        set_progress=progress,
    )


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_layout_offers_every_strategy_and_uses_only_bt_ids(services, theme):
    tree = page.layout(services, theme=theme)
    ids = component_ids(tree)
    names = [i["type"] if isinstance(i, dict) else i for i in ids]
    assert names
    assert all(name.startswith("bt-") for name in names), [n for n in names if n[:3] != "bt-"]
    assert len(set(map(str, ids))) == len(ids), "ids are unique"
    strategy = find(tree, "bt-strategy")
    assert [o["value"] for o in strategy.options] == [cls.name for cls in all_strategies()]
    assert strategy.value == "sma_crossover"
    assert [o["value"] for o in find(tree, "bt-timeframe").options] == ["1d", "1w"]
    assert [o["value"] for o in find(tree, "bt-preset").options] == sorted(PRESETS)
    assert (find(tree, "bt-start").value, find(tree, "bt-end").value) == (
        "1999-01-04",
        "2018-12-31",
    )
    assert find(tree, "bt-empty").style == page.SHOW, "a hint instead of blank panels"
    assert find(tree, "bt-result-body").style == page.HIDE
    trades = find(tree, "bt-trades")
    assert trades.defaultColDef["sortable"] is trades.defaultColDef["filter"] is True
    assert trades.dashGridOptions["pagination"] is True
    assert trades.dashGridOptions["paginationPageSize"] == 15
    assert [c["field"] for c in trades.columnDefs][:4] == ["id", "side", "entry_time", "exit_time"]
    runs = find(tree, "bt-runs")
    assert runs.dashGridOptions["rowSelection"]["mode"] == "multiRow"
    assert [c["field"] for c in runs.columnDefs] == [
        "id",
        "strategy",
        "params",
        "symbol",
        "timeframe",
        "period",
        "finished",
    ]
    assert find(tree, "bt-theme").data == theme
    with pytest.raises(ValueError, match="theme='blue' is invalid"):
        page.layout(services, theme="blue")


@pytest.mark.parametrize("cls", all_strategies(), ids=lambda cls: cls.name)
def test_parameter_inputs_follow_the_declarations(cls):
    controls = [i for i in _walk(page.param_inputs(cls.name)) if isinstance(_id(i), dict)]
    inputs = {i.id["name"]: i for i in controls if i.id["type"] == page.PARAM_TYPE}
    feedback = [i.id["name"] for i in controls if i.id["type"] == page.PARAM_FEEDBACK]
    declared = [p for p in cls.params if p.name != "direction"]
    assert list(inputs) == [p.name for p in declared], "direction is the form's own field"
    assert feedback == [p.name for p in declared if p.kind is not bool], "one line per input"
    for p in declared:
        control = inputs[p.name]
        assert control.id["control"] == ("switch" if p.kind is bool else "input")
        if p.kind is bool:
            assert type(control).__name__ == "Switch"
            assert control.value is p.default
        elif p.kind is str:
            assert [o["value"] for o in control.options] == list(p.choices)
        else:
            # a text input: what is typed reaches the check as typed, reported on leaving it
            assert (control.type, control.value, control.debounce) == ("text", p.default, True)
            assert control.inputmode == ("numeric" if p.kind is int else "decimal")
            assert control.placeholder == f"{p.low}..{p.high}"


def _id(component: Any) -> Any:
    return getattr(component, "id", None)


def _params_shown(inputs: Any) -> dict[str, Any]:
    """The parameter inputs' values: name -> value."""
    return {
        i.id["name"]: i.value
        for i in _walk(inputs)
        if isinstance(_id(i), dict) and i.id["type"] == page.PARAM_TYPE
    }


def _walk(component: Any) -> list[Any]:
    out, stack = [], [component]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif hasattr(item, "to_plotly_json"):
            out.append(item)
            children = getattr(item, "children", None)
            if children is not None:
                stack.append(children)
    return out


def test_symbols_offer_their_stored_and_resampled_timeframes_and_their_period(services):
    options, value, first, last = page.symbol_choices(services, "DEMO", "4h")
    assert [o["value"] for o in options] == ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]
    assert (value, first, last) == ("4h", "2024-01-01", "2024-01-03")
    options, value, first, last = page.symbol_choices(services, "SP500", "4h")
    assert ([o["value"] for o in options], value) == (["1d", "1w"], "1d")
    assert (first, last) == ("1999-01-04", "2018-12-31")


def test_changing_the_strategy_or_starting_from_a_saved_one_rebuilds_the_parameters(tmp_path):
    manager = StrategyManager(tmp_path / "user")
    manager.create(
        {
            "strategy": "rsi_reversion",
            "name": "RSI deep",
            "params": {"period": 7, "oversold": 20.0, "direction": "both"},
        }
    )
    strategy, inputs, direction = page.strategy_form("ema_crossover", None, "bt-strategy", manager)
    assert (strategy, direction) == ("ema_crossover", no_update)
    assert _params_shown(inputs) == {"fast": 12, "slow": 26}
    strategy, inputs, direction = page.strategy_form(
        "ema_crossover", "RSI deep", "bt-saved", manager
    )
    got = _params_shown(inputs)
    assert (strategy, direction, got["period"], got["oversold"]) == (
        "rsi_reversion",
        "both",
        7,
        20.0,
    )
    assert page.saved_strategy_options(manager) == [
        {"label": "RSI deep (rsi_reversion)", "value": "RSI deep"}
    ]
    with pytest.raises(PreventUpdate):
        page.strategy_form(None, None, "bt-strategy", manager)


def test_the_checks_flag_each_invalid_field_with_its_reason_and_list_every_problem():
    ids = [{"type": page.PARAM_TYPE, "name": n, "control": "input"} for n in ("fast", "slow")]
    flags, params, message, problems = page.form_feedback(values(), ids)
    assert (params, message, problems) == ([(False, ""), (False, "")], "", {})
    assert set(flags) == set(page.CHECKED)
    assert not any(bad for bad, _ in flags.values())
    assert "compat" not in page.CHECKED, "a switch cannot be flagged: its problems are listed"

    typed = values(cash="-5000", commission="50", params={"fast": "40", "slow": "30"})
    flags, params, message, problems = page.form_feedback(typed, ids)
    assert flags["cash"] == (True, "Cash: -5000 is invalid: expected a number > 0")
    assert flags["commission"] == (
        True,
        "Commission [%]: 50 is invalid: expected a number >= 0 and <= 10",
    )
    assert flags["spread_bps"] == (False, "")
    assert params == [
        (True, "sma_crossover: fast=40 is not below slow; allowed: fast < slow (slow=30)"),
        (False, ""),
    ]
    assert [li.children for li in find(message, "bt-problems").children[1].children] == list(
        problems.values()
    )
    assert message.children[0].children == "3 problems: fix to run"
    # an emptied cash is a problem, not the default 10,000
    flags, *_ = page.form_feedback(values(cash=None), ids)
    assert flags["cash"] == (True, "Cash: empty; enter a number > 0")


def test_the_form_loads_a_run_strategy_or_symbol(services, tmp_path):
    request = parse_form(
        {
            **FORM,
            "params": {"fast": 6, "slow": 40},
            "symbol": "DEMO",
            "timeframe": "15m",
            "start": "2024-01-02",
            "end": "2024-01-02",
            "cash": 2500,
            "commission": 0.05,
            "stop_loss": 4,
            "direction": "both",
            "preset": "quantstats",
        }
    )
    load = page.request_form(request)
    outputs = page.form_update(
        "bt-load", "ema_crossover", None, "SP500", load, "1d", services, None
    )
    assert set(outputs) == {f"{i}.{p}" for i, p in page.FORM_OUTPUTS}
    got = {name: outputs[f"{id_}.value"] for name, id_ in page.FORM_IDS.items()}
    assert got == {name: load[name] for name in page.FORM_IDS}
    assert (got["strategy"], got["symbol"], got["timeframe"], got["cash"]) == (
        "sma_crossover",
        "DEMO",
        "15m",
        2500.0,
    )
    assert (got["commission"], got["stop_loss"], got["direction"]) == (0.05, 4.0, "both")
    assert (outputs["bt-start.min"], outputs["bt-end.max"]) == ("2024-01-01", "2024-01-03")
    assert "15m" in [o["value"] for o in outputs["bt-timeframe.options"]]
    shown = _params_shown(outputs["bt-params.children"])
    assert shown == {"fast": 6, "slow": 40}
    # what the form then holds is the run loaded
    held = values(
        **{k: v for k, v in got.items() if k != "strategy"},
        params=shown,
    )
    assert parse_form(page.form_dict(held)) == request
    # a run without a stored window: the symbol's whole period
    whole = page.form_update(
        "bt-load", None, None, None, {**load, "start": None, "end": None}, None, services, None
    )
    assert (whole["bt-start.value"], whole["bt-end.value"]) == ("2024-01-01", "2024-01-03")
    # a strategy chosen: its parameters at their defaults, nothing else touched
    chosen = page.form_update(
        "bt-strategy", "ema_crossover", None, None, None, "1d", services, None
    )
    assert chosen["bt-cash.value"] is no_update
    assert chosen["bt-symbol.value"] is no_update
    assert chosen["bt-strategy.value"] == "ema_crossover"
    # a symbol chosen: its timeframes and whole period
    symbol = page.form_update("bt-symbol", None, None, "DEMO", None, "4h", services, None)
    assert (symbol["bt-timeframe.value"], symbol["bt-start.value"]) == ("4h", "2024-01-01")
    with pytest.raises(PreventUpdate):
        page.form_update("bt-load", None, None, None, None, None, services, None)


def test_run_shows_the_result_with_the_command_line_numbers_and_lists_the_run(services, reference):
    progress: list[tuple[int, str]] = []
    outputs = run(
        services, "bt-run", values(params={"fast": 5, "slow": 30}), progress=progress.append
    )
    assert progress == [
        (20 * (i + 1), f"{20 * (i + 1)}%", f"{i + 1}/5 {name}") for i, name in enumerate(STEPS)
    ]
    assert set(outputs) == {f"{i}.{p}" for i, p in page.RESULT_OUTPUTS}
    expected = run_job(cli_job({"fast": 5}), cli_settings(fast=5), reference, store=False)
    for key in ("# Trades", "Return [%]", "Sharpe Ratio", "Max. Drawdown [%]"):
        assert kpi_text(outputs, key) == format_metric(key, expected.metrics[key])
    run_id = outputs["bt-current.data"]["run_id"]
    assert outputs["bt-current.data"]["label"] == f"#{run_id} sma_crossover(5, 30, long) SP500 1d"
    assert [row["id"] for row in outputs["bt-runs.rowData"]] == [run_id]
    assert len(outputs["bt-trades.rowData"]) == expected.metrics["# Trades"]
    assert (outputs["bt-result-body.style"], outputs["bt-empty.style"]) == (page.SHOW, page.HIDE)
    assert outputs["bt-status.children"].startswith(f"Run #{run_id} stored in ")
    assert (outputs["bt-outcome-bar.value"], outputs["bt-outcome-bar.label"]) == (100, "done")
    assert outputs["bt-outcome-bar.color"] == "success"
    assert outputs["bt-outcome-step.children"].startswith("done: 5/5 steps in ")
    assert outputs["bt-load.data"] is no_update, "the form already holds what ran"
    names = [trace.name for trace in outputs["bt-performance.figure"].data]
    assert names == ["Equity", "Buy & hold", "Drawdown", "Traded notional"]
    title = [div.children for div in outputs["bt-result-title.children"]]
    assert title == [
        "SMA crossover (fast=5, slow=30, direction=long) · SP500 1d",
        f"run #{run_id} · 1999-01-04 → 2018-12-31 · metrics: backtesting.py",
    ]


def test_open_shows_a_saved_run_exactly_as_it_was_shown(services):
    shown = run(
        services,
        "bt-run",
        values(params={"fast": 6, "slow": 40}, direction="both", commission=0.05),
    )
    run_id = shown["bt-current.data"]["run_id"]
    steps: list[tuple[int, str]] = []
    opened = run(
        services,
        "bt-open",
        values(),
        selected=[{"id": run_id, "strategy": "sma_crossover"}],
        progress=steps.append,
    )
    assert [step for _, _, step in steps] == ["1/2 loading data", "2/2 computing metrics"]
    assert [value for value, _, _ in steps] == [50, 100]
    # the form now holds the run opened: the next Run runs it
    assert parse_form(opened["bt-load.data"]) == parse_form(
        page.form_dict(values(params={"fast": 6, "slow": 40}, direction="both", commission=0.05))
    )
    for key in (
        "bt-kpis.children",
        "bt-trades.rowData",
        "bt-trades.columnDefs",
        "bt-current.data",
        "bt-result-title.children",
    ):
        assert json.dumps(opened[key], cls=_PlotlyEncoder) == json.dumps(
            shown[key], cls=_PlotlyEncoder
        )
    for key in ("bt-performance.figure", "bt-returns.figure", "bt-monthly.figure"):
        assert pio.to_json(opened[key]) == pio.to_json(shown[key])
    assert opened["bt-status.children"].startswith(f"Opened run #{run_id} (its stored trades")
    assert opened["bt-status.children"].endswith("the form now holds its settings.")
    assert len(opened["bt-runs.rowData"]) == 1, "opening stores nothing"


class _PlotlyEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if hasattr(o, "to_plotly_json"):
            return o.to_plotly_json()
        return super().default(o)


def test_a_bad_form_or_a_failed_run_only_changes_the_status_line(services):
    ended = {f"{i}.{p}" for i, p in page.RESULT_OUTPUTS if i.startswith("bt-outcome")}
    changed = {"bt-status.children", *ended}
    outputs = run(services, "bt-run", values(params={"fast": 40, "slow": 30}, cash="-5"))
    assert outputs["bt-status.children"].children == (
        "Not run: 2 problems: sma_crossover: fast=40 is not below slow; allowed: fast < slow "
        "(slow=30); Cash: -5 is invalid: expected a number > 0"
    )
    assert all(v is no_update for k, v in outputs.items() if k not in changed)
    assert outputs["bt-outcome-bar.label"] == "not run"
    assert outputs["bt-outcome-step.children"] == "not run: the form has 2 problems"
    steps: list[Any] = []
    outputs = run(
        services, "bt-run", values(start="2030-01-01", end="2030-02-01"), None, steps.append
    )
    text = outputs["bt-status.children"].children
    assert text.startswith("Run failed at loading data: no 1d candles of SP500 in this window")
    assert "stored as failed run #" in text
    assert all(v is no_update for k, v in outputs.items() if k not in changed)
    assert steps == [(20, "20%", "1/5 loading data")]
    assert (outputs["bt-outcome-bar.label"], outputs["bt-outcome-bar.color"]) == (
        "failed",
        "danger",
    )
    assert outputs["bt-outcome-bar.value"] == 100, "a full bar: the line says where"
    assert outputs["bt-outcome-step.children"] == "failed at 1/5 loading data"
    outputs = run(services, "bt-open", values(), selected=[])
    assert outputs["bt-status.children"] == "Select a saved run in the table, then press Open."
    assert outputs["bt-outcome-bar.label"] == "not run"
    with pytest.raises(PreventUpdate):
        run(services, None, values())


def test_compare_marks_the_best_run_per_metric_and_overlays_them(services):
    ids = []
    for fast, slow in ((5, 30), (10, 50), (20, 100)):
        outputs = run(services, "bt-run", values(params={"fast": fast, "slow": slow}))
        ids.append(outputs["bt-current.data"]["run_id"])
    cache = ResultCache()
    few = page.compare(ids[:1], services, cache, "dark")
    assert few["bt-runs-message.children"] == "Select two or more saved runs, then press Compare."
    assert all(v is no_update for k, v in few.items() if k != "bt-runs-message.children")

    panel = page.compare([ids[2], ids[0], ids[1], ids[0]], services, cache, "light")
    assert set(panel) == {f"{i}.{p}" for i, p in page.COMPARE_OUTPUTS}
    labels = [
        f"#{ids[0]} sma_crossover(5, 30, long)",
        f"#{ids[1]} sma_crossover(10, 50, long)",
        f"#{ids[2]} sma_crossover(20, 100, long)",
    ]
    table = panel["bt-compare-table.children"]
    header = [th.children for th in table.children[0].children.children]
    assert header == ["Metric", *labels]
    starred = [td for td in _walk(table) if getattr(td, "className", None) == "sl-best"]
    assert starred
    assert all(td.children.startswith("★ ") for td in starred)
    for key in (
        "bt-compare-equity.figure",
        "bt-compare-drawdown.figure",
        "bt-compare-scatter.figure",
    ):
        assert [trace.name for trace in panel[key].data] == labels
    assert list(panel["bt-compare-correlation.figure"].data[0].x) == labels
    assert panel["bt-compare-card.style"] == page.SHOW
    assert panel["bt-compared.data"] == ids
    assert panel["bt-runs-message.children"] == f"Comparing runs #{ids[0]}, #{ids[1]}, #{ids[2]}."


def test_a_theme_change_redraws_the_shown_run_the_comparison_and_the_tables(services):
    ids = [
        run(services, "bt-run", values(params=params))["bt-current.data"]["run_id"]
        for params in ({"fast": 5, "slow": 30}, {"fast": 10, "slow": 50})
    ]
    cache = ResultCache()
    nothing_shown = page.retheme("light", None, None, services, cache)
    assert set(nothing_shown) == {f"{i}.{p}" for i, p in page.THEMED_OUTPUTS}
    for grid in ("bt-trades", "bt-runs"):
        theme_function = nothing_shown[f"{grid}.dashGridOptions"]["theme"]["function"]
        assert f'"backgroundColor": "{LIGHT.background}"' in theme_function
    assert nothing_shown["bt-runs.dashGridOptions"]["rowSelection"]["mode"] == "multiRow"
    assert nothing_shown["bt-trades.dashGridOptions"]["paginationPageSize"] == 15
    assert nothing_shown["bt-performance.figure"] is no_update
    assert nothing_shown["bt-compare-equity.figure"] is no_update

    current = {"run_id": ids[1], "label": "whatever"}
    light = page.retheme("light", current, ids, services, cache)
    dark = page.retheme("dark", current, ids, services, cache)
    for outputs, look in ((light, LIGHT), (dark, DARK)):
        for key in (
            "bt-performance.figure",
            "bt-returns.figure",
            "bt-monthly.figure",
            "bt-compare-equity.figure",
            "bt-compare-scatter.figure",
        ):
            assert outputs[key].layout.paper_bgcolor == look.background, key
        assert outputs["bt-kpis.children"].children[0].children.style["backgroundColor"] == (
            look.background
        )
    shown = run(services, "bt-open", values(), selected=[ids[1]])
    assert pio.to_json(dark["bt-performance.figure"]) == pio.to_json(shown["bt-performance.figure"])


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_exports_hold_the_shown_run(services, fmt):
    outputs = run(services, "bt-run", values(params={"fast": 5, "slow": 30}))
    current = outputs["bt-current.data"]
    cache = ResultCache()
    result = cache.get(current["run_id"], context_from(services.sessions, services.integrator))
    for kind, rows in (
        ("trades", len(result.trades)),
        ("metrics", len(result.metrics)),
        ("equity", len(result.equity)),
    ):
        download = page.export(kind, fmt, current, services, cache)
        assert download["filename"].startswith(f"{current['run_id']}_sma_crossover_5_30_long_")
        assert download["filename"].endswith(f"_{kind}_{pd.Timestamp.now(tz='UTC'):%Y-%m-%d}.{fmt}")
        payload = io.BytesIO(base64.b64decode(download["content"]))
        if fmt == "csv":
            frame = pd.read_csv(payload)
        elif fmt == "json":
            frame = pd.DataFrame(json.loads(payload.getvalue()))
        else:
            frame = pd.read_excel(payload, engine="openpyxl")
        assert len(frame) == rows
    with pytest.raises(PreventUpdate):
        page.export("trades", "csv", None, services, cache)


@pytest.mark.parametrize("database_backend", ["sqlite"], indirect=True)
def test_the_page_shows_what_python_app_py_backtest_json_prints(
    services, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOAD_SAMPLE_DATA", "false")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    argv = [
        "backtest",
        "--symbol",
        "SP500",
        "--timeframe",
        "1d",
        "--strategy",
        "sma_crossover",
        "--set",
        "fast=5",
        "--json",
        "--no-store",
    ]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    outputs = run(services, "bt-run", values(params={"fast": 5, "slow": 30}))
    assert kpi_text(outputs, "# Trades") == format_metric("# Trades", printed["# Trades"])
    assert kpi_text(outputs, "Return [%]") == format_metric("Return [%]", printed["Return [%]"])


# -- the sweep -----------------------------------------------------------------------------


def test_a_sweep_runs_the_grid_like_the_command_line_and_stores_every_run(services, reference):
    progress: list[Any] = []
    outputs = page.run_sweep(
        values(commission=0.1),
        [("fast", "5:15:5"), ("slow", "30, 40")],
        services.settings.database_url,
        None,
        "dark",
        workers=0,
        set_progress=progress.append,
    )
    assert set(outputs) >= {f"{i}.{p}" for i, p in page.SWEEP_OUTPUTS}
    assert [step for _, _, step in progress] == [f"{n}/6 runs" for n in range(7)]
    assert progress[-1][:2] == (100, "100%")
    data = outputs["bt-sweep-data.data"]
    rows = data["rows"]
    assert data["params"] == ["fast", "slow"]
    assert [(r["fast"], r["slow"]) for r in rows] == [
        (5, 30), (5, 40), (10, 30), (10, 40), (15, 30), (15, 40)
    ]  # fmt: skip
    # each cell is what `python app.py sweep` (services.batch.run_job) computes for it
    args = type("Args", (), {"cash": 10_000.0, "commission": 0.001, "slippage_bps": 0.0})()
    window = parse_form(page.form_dict(values()))  # the form's period, as the sweep runs it
    for row in rows[::3]:
        params = {"fast": row["fast"], "slow": row["slow"]}
        job = BatchJob("sma_crossover", params, "SP500", "1d", window.start, window.end)
        settings = backtest_settings(args, compat=None, direction="long")
        expected = run_job(job, settings, reference, store=False)
        for key in page.SWEEP_METRICS:
            assert row[key] == pytest.approx(float(expected.metrics[key]), nan_ok=True)
    ids = [r["run_id"] for r in rows]
    stored = {run.id: run for run in list_runs(services.sessions)}
    assert set(ids) <= set(stored)
    assert [r["id"] for r in outputs["bt-runs.rowData"]][: len(ids)] == sorted(ids, reverse=True)
    assert outputs["bt-sweep-message.children"].startswith(
        f"Sweep: 6 runs stored (#{min(ids)}-#{max(ids)}) in "
    )
    assert outputs["bt-sweep-outcome-bar.label"] == "done"
    assert outputs["bt-sweep-result.style"] == page.SHOW
    heatmap = outputs["bt-sweep-graph.figure"].data[0]
    assert heatmap.type == "heatmap"
    assert (list(heatmap.x), list(heatmap.y)) == (["5", "10", "15"], ["30", "40"])
    assert heatmap.z[1][2] == pytest.approx(rows[5]["Sharpe Ratio"])
    columns = [c["field"] for c in outputs["bt-sweep-grid.columnDefs"]]
    assert columns == ["fast", "slow", "run_id", *page.SWEEP_METRICS, "error"]
    # a cell clicked: that combination, with the sweep's other settings, loads into the form
    form, message = page.sweep_pick(data, point={"x": "10", "y": "40"})
    assert parse_form(form) == parse_form(
        page.form_dict(values(commission=0.1, params={"fast": 10, "slow": 40}))
    )
    assert message == f"Loaded fast=10, slow=40 (run #{rows[3]['run_id']}) into the form: " + (
        "press Run to see it in full."
    )
    assert page.sweep_pick(data, row=rows[4])[0]["params"] == {"fast": 15, "slow": 30}
    with pytest.raises(LookupError):
        page.sweep_pick(data, point={"x": "11", "y": "40"})
    # another metric: the same cells
    drawdown = page.sweep_figure(data, "Max. Drawdown [%]", "light").data[0]
    assert drawdown.z[0][0] == pytest.approx(rows[0]["Max. Drawdown [%]"])


def test_a_sweep_of_one_parameter_draws_bars_and_skips_what_the_strategy_refuses(services):
    outputs = page.run_sweep(
        values(params={"fast": 10, "slow": 30}),
        [("fast", "20, 25, 30, 35"), (None, "")],
        services.settings.database_url,
        None,
        "dark",
        "Return [%]",
        workers=0,
    )
    rows = outputs["bt-sweep-data.data"]["rows"]
    assert [r["fast"] for r in rows] == [20, 25]
    assert (
        "2 combinations skipped: sma_crossover: fast=30 is not below slow"
        in (outputs["bt-sweep-message.children"])
    )
    bars = outputs["bt-sweep-graph.figure"].data[0]
    assert (bars.type, list(bars.x)) == ("bar", ["20", "25"])
    assert list(bars.y) == [pytest.approx(r["Return [%]"]) for r in rows]
    form, _ = page.sweep_pick(outputs["bt-sweep-data.data"], point={"x": "25"})
    assert form["params"] == {"fast": 25, "slow": 30}


@pytest.mark.parametrize(
    ("change", "axes", "words"),
    [
        ({"cash": "-5"}, [("fast", "5, 10")], "Not swept: Cash: -5 is invalid"),
        ({}, [("fast", "2:42:2"), ("slow", "50:100:2")], "546 combinations; at most 400 run"),
        ({}, [("fast", "40, 50"), (None, "")], "the strategy refuses every combination"),
    ],
)
def test_a_bad_sweep_runs_nothing_and_says_why(services, change, axes, words):
    outputs = page.run_sweep(
        values(**change), axes, services.settings.database_url, None, "dark", workers=0
    )
    assert words in str(outputs["bt-sweep-message.children"].children)
    assert outputs["bt-sweep-data.data"] is no_update
    assert outputs["bt-sweep-outcome-bar.label"] == "not run"
    assert list_runs(services.sessions) == []


def test_the_sweep_offers_the_number_parameters_and_flags_its_fields():
    options, x, second, y = page.sweep_choices("rsi_reversion")
    assert [o["value"] for o in options] == ["period", "oversold", "overbought", "trend_period"]
    assert (x, y) == ("period", "oversold")
    assert second[0]["value"] == ""  # one parameter only
    flags = page.sweep_feedback({"strategy": "sma_crossover"}, [("fast", "5, x"), ("slow", "")])
    assert flags["sweep_x"] == (True, "Sweep fast: 'x' is not a number")
    assert flags["sweep_y"][0] is True
    assert page.sweep_feedback({"strategy": "sma_crossover"}, [("fast", "5:9:2"), ("", "")]) == {
        "sweep_x": (False, ""),
        "sweep_y": (False, ""),
    }
