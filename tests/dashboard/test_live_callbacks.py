"""The live chart's callbacks as plain functions, on a real SQLite database and real feeds.

The key property: a figure built once and then patched tick after tick holds exactly what a
figure rebuilt from scratch at that moment holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from dash import Patch
from dash.exceptions import PreventUpdate

from app import Services, build_services
from config.settings import Settings
from dashboard.live import build_chart, live_tick, status_text, timeframe_choices

BARS = 6000  # more than any bundled daily series holds: both figures show everything


def apply_patch(figure: dict, patch: Patch) -> dict:
    """What dash-renderer does with a Patch on the client, for the operations we send."""
    for op in patch.to_plotly_json()["operations"]:
        *path, last = op["location"]
        target = figure
        for key in path:
            target = target[key]
        value = op["params"].get("value")
        if op["operation"] == "Extend":
            target[last].extend(value)
        elif op["operation"] == "Merge":
            target[last].update(value)
        elif op["operation"] == "Assign":
            target[last] = value
        else:
            raise AssertionError(f"unexpected patch operation {op['operation']}")
    return figure


def as_json(figure: go.Figure) -> dict:
    return json.loads(pio.to_json(figure))


def trace_data(figure: dict, tail_of: dict | None = None) -> list[dict]:
    """Each trace's arrays; with `tail_of`, only as many of the last values as that figure has
    (a window of the newest N bars moves on, while a patched chart keeps its older bars)."""
    keys = ("x", "open", "high", "low", "close", "y")
    traces = []
    for i, trace in enumerate(figure["data"]):
        n = len(tail_of["data"][i]["x"]) if tail_of else None
        traces.append({k: trace[k][-n:] if n else trace[k] for k in keys if k in trace})
    return traces


def make_services(tmp_path: Path, feeds: str, replay_bars: int = 40) -> Services:
    settings = Settings.from_env(
        {
            "STRATLENS_DATA_DIR": str(tmp_path),
            "FEEDS": feeds,
            "REPLAY_BARS": str(replay_bars),
            "FEED_UPDATES_PER_CANDLE": "2",
        }
    )
    return build_services(settings)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = make_services(tmp_path, "SP500:replay,DEMO:random_walk")
    yield services
    services.close()


@pytest.mark.parametrize(
    ("symbol", "timeframe"), [("SP500", "1d"), ("SP500", "1w"), ("DEMO", "1m"), ("DEMO", "15m")]
)
def test_patched_figure_equals_a_rebuilt_one_tick_after_tick(services, symbol, timeframe):
    market = services.market_data
    figure, state = build_chart(market, symbol, timeframe, BARS)
    client = as_json(figure)
    closed_seen = 0
    for _ in range(40):  # 40 feed events: 13 closed candles and their forming updates
        services.runner.step()
        update, state = live_tick(market, state, symbol, timeframe, BARS)
        assert isinstance(update, Patch), "a plain tick must not rebuild the figure"
        client = apply_patch(client, update)
        rebuilt, rebuilt_state = build_chart(market, symbol, timeframe, BARS)
        rebuilt = as_json(rebuilt)
        assert trace_data(client, tail_of=rebuilt) == trace_data(rebuilt)
        assert state["last"] == rebuilt_state["last"]
        closed_seen = len(client["data"][0]["x"])
    assert closed_seen > 0
    assert len(client["data"][1]["x"]) == 1, "the forming bar is shown"


def test_a_tick_sends_only_the_new_bars_and_the_forming_bar(services):
    market = services.market_data
    _, state = build_chart(market, "SP500", "1d", BARS)
    for _ in range(3):  # forming, forming, closed
        services.runner.step()
    patch, new_state = live_tick(market, state, "SP500", "1d", BARS)
    ops = patch.to_plotly_json()["operations"]
    extended = [op for op in ops if op["operation"] == "Extend"]
    assert {tuple(op["location"]) for op in extended} >= {("data", 0, "x"), ("data", 0, "close")}
    assert all(len(op["params"]["value"]) == 1 for op in extended)
    assert new_state["n"] == state["n"] + 1
    assert new_state["last"] > state["last"]


def test_a_tick_with_nothing_new_sends_nothing(services):
    market = services.market_data
    _, state = build_chart(market, "SP500", "1d", BARS)
    services.runner.step()
    _, state = live_tick(market, state, "SP500", "1d", BARS)
    with pytest.raises(PreventUpdate):
        live_tick(market, state, "SP500", "1d", BARS)


def test_a_tick_for_a_selection_being_rebuilt_is_dropped(services):
    _, state = build_chart(services.market_data, "SP500", "1d", BARS)
    services.runner.step()
    with pytest.raises(PreventUpdate):
        live_tick(services.market_data, state, "DEMO", "1m", BARS)


def test_a_replay_that_starts_over_rebuilds_the_chart(tmp_path):
    services = make_services(tmp_path, "SP500:replay", replay_bars=2)
    try:
        market = services.market_data
        figure, state = build_chart(market, "SP500", "1d", BARS)
        start_bars = len(figure.data[0].x)
        for _ in range(6):  # two bars replayed, each with two forming updates
            services.runner.step()
            update, state = live_tick(market, state, "SP500", "1d", BARS)
            assert isinstance(update, Patch)
        assert state["n"] == start_bars + 2
        services.runner.step()  # the rewind
        update, state = live_tick(market, state, "SP500", "1d", BARS)
        assert isinstance(update, go.Figure)
        assert len(update.data[0].x) == start_bars
    finally:
        services.close()


def test_timeframes_offered_are_the_stored_one_and_those_resampled_from_it(services):
    options, value = timeframe_choices(services.market_data, "SP500", "4h")
    assert [o["value"] for o in options] == ["1d", "1w"]
    assert value == "1d"
    options, value = timeframe_choices(services.market_data, "DEMO", "4h")
    assert [o["value"] for o in options] == ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]
    assert value == "4h"


def test_status_line_names_symbol_feed_and_last_close(services):
    services.runner.step()
    text = status_text(services.market_data.state("SP500"), "1d")
    assert text.startswith("SP500 1d · replay feed · last close ")
