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
from dash import no_update
from dash.exceptions import PreventUpdate

from app import Services, build_services
from config.settings import Settings
from dashboard.live import build_chart, live_tick, timeframe_choices
from database.repositories import CandleRepository
from market.candles import CANDLE_COLUMNS

BARS = 6000  # more than any bundled daily series holds: both figures show everything


def apply_delta(figure: dict, state: dict, delta: dict) -> tuple[dict, dict]:
    """The documented client rule (candle_delta's docstring; assets/chart_view.js applies it
    in the browser, which the browser tests check against the database)."""
    assert delta["k"] == figure["layout"]["uirevision"] == state["k"]
    data = figure["data"]
    last_x = data[0]["x"][-1] if data[0]["x"] else None
    rows = [row for row in delta["c"] if last_x is None or row[0] > last_x]
    for x, o, h, low, c, v in rows:
        for key, value in zip(("x", "open", "high", "low", "close"), (x, o, h, low, c)):  # noqa: B905
            data[0][key].append(value)
        volume = data[2] if c >= o else data[3]
        volume["x"].append(x)
        volume["y"].append(v)
    f = delta["f"]
    for key, i in (("x", 0), ("open", 1), ("high", 2), ("low", 3), ("close", 4)):
        data[1][key] = [f[i]] if f else []
    data[4]["x"], data[4]["y"] = ([f[0]], [f[5]]) if f else ([], [])
    state = {
        **state,
        "v": delta["v"],
        "st": delta["st"],
        "fk": delta["fk"],
        "last": delta["last"] if rows else state["last"],
        "n": state["n"] + len(rows),
    }
    return figure, state


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


class Tab:
    """One browser tab, simulated: the figure it holds and its chart state."""

    def __init__(self, services: Services, symbol: str, timeframe: str) -> None:
        self.market = services.market_data
        self.symbol, self.timeframe = symbol, timeframe
        figure, self.state = build_chart(self.market, symbol, timeframe, BARS)
        self.figure = as_json(figure)
        self.rebuilds = 0

    def request(self) -> tuple:
        return live_tick(self.market, self.state, self.symbol, self.timeframe, BARS)

    def receive(self, answer: tuple) -> None:
        figure, delta, state = answer
        if figure is not no_update:
            self.figure, self.state = as_json(figure), state
            self.rebuilds += 1
        else:
            assert state is no_update, "the browser records what it applied"
            self.figure, self.state = apply_delta(self.figure, self.state, delta)

    def tick(self) -> None:
        self.receive(self.request())

    def matches_a_rebuild(self) -> bool:
        rebuilt, state = build_chart(self.market, self.symbol, self.timeframe, BARS)
        rebuilt = as_json(rebuilt)
        return (
            trace_data(self.figure, tail_of=rebuilt) == trace_data(rebuilt)
            and self.state["last"] == state["last"]
        )


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
    tab = Tab(services, symbol, timeframe)
    held = len(tab.figure["data"][0]["x"])
    for _ in range(52):  # 17 closed candles, then a forming one: a 15m bar closes too
        services.runner.step()
        tab.tick()
        assert tab.matches_a_rebuild()
    assert tab.rebuilds == 0, "a plain tick must not rebuild the figure"
    assert len(tab.figure["data"][0]["x"]) > held
    assert len(tab.figure["data"][1]["x"]) == 1, "the forming bar is shown"


def test_a_lost_delta_is_made_good_by_the_next_and_a_repeated_one_is_harmless(services):
    tab = Tab(services, "SP500", "1d")
    for _ in range(4):
        services.runner.step()
    lost = tab.request()  # never applied: the browser missed it
    for _ in range(4):
        services.runner.step()
    late = tab.request()
    tab.receive(late)
    tab.receive(late)  # applied twice
    assert lost[1]["c"], "the lost delta held a closed bar"
    assert tab.matches_a_rebuild()
    for _ in range(3):
        services.runner.step()
    tab.receive(lost)  # a stale answer arriving last changes nothing already held
    tab.tick()
    assert tab.matches_a_rebuild()


def test_a_tick_sends_only_the_new_bars_and_the_forming_bar(services):
    tab = Tab(services, "SP500", "1d")
    for _ in range(4):  # forming, forming, closed, forming of the next bar
        services.runner.step()
    figure, delta, _ = tab.request()
    assert figure is no_update
    live = services.market_data.state("SP500")
    with services.sessions() as session:
        closed = CandleRepository(session).frame("SP500", "1d", start=live.cursor, end=live.cursor)
    # S&P 500 values have at most 10 significant digits: the delta carries them exactly
    assert delta["k"] == "SP500|1d"
    assert delta["c"] == [
        [live.cursor.strftime("%Y-%m-%d"), *(float(closed.iloc[0][c]) for c in CANDLE_COLUMNS)]
    ]
    assert delta["last"] == live.cursor.value // 1_000_000
    forming = live.forming
    assert forming.ts > live.cursor
    assert delta["f"][0] == forming.ts.strftime("%Y-%m-%d")
    # forming values are interpolated: 10 significant digits travel
    assert delta["f"][1:] == pytest.approx([getattr(forming, c) for c in CANDLE_COLUMNS], rel=1e-9)
    assert (delta["v"], delta["st"], delta["fk"]) == (live.version, "live", "replay")


def test_a_tick_with_nothing_new_sends_nothing(services):
    tab = Tab(services, "SP500", "1d")
    services.runner.step()
    tab.tick()
    with pytest.raises(PreventUpdate):
        tab.request()


def test_a_tick_for_a_chart_that_is_not_the_selected_one_rebuilds_the_selected(services):
    tab = Tab(services, "SP500", "1d")
    services.runner.step()
    figure, delta, state = live_tick(services.market_data, tab.state, "DEMO", "1m", BARS)
    assert figure.data[0].name == "DEMO"
    assert delta is no_update
    assert state["k"] == "DEMO|1m"


def test_a_replay_that_starts_over_rebuilds_the_chart(tmp_path):
    services = make_services(tmp_path, "SP500:replay", replay_bars=2)
    try:
        tab = Tab(services, "SP500", "1d")
        start_bars = len(tab.figure["data"][0]["x"])
        for _ in range(6):  # two bars replayed, each with two forming updates
            services.runner.step()
            tab.tick()
        assert (tab.rebuilds, tab.state["n"]) == (0, start_bars + 2)
        services.runner.step()  # the rewind
        tab.tick()
        assert tab.rebuilds == 1
        assert len(tab.figure["data"][0]["x"]) == start_bars
        assert tab.matches_a_rebuild()
    finally:
        services.close()


def test_timeframes_offered_are_the_stored_one_and_those_resampled_from_it(services):
    options, value = timeframe_choices(services.market_data, "SP500", "4h")
    assert [o["value"] for o in options] == ["1d", "1w"]
    assert value == "1d"
    options, value = timeframe_choices(services.market_data, "DEMO", "4h")
    assert [o["value"] for o in options] == ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]
    assert value == "4h"


def test_chart_state_carries_what_the_status_line_shows(services):
    tab = Tab(services, "SP500", "1d")
    assert (tab.state["st"], tab.state["fk"]) == ("starting", "replay")
    services.runner.step()
    tab.tick()
    assert (tab.state["s"], tab.state["tf"], tab.state["st"]) == ("SP500", "1d", "live")
    assert "err" not in tab.state
