"""The live chart's callbacks as plain functions, on a real SQLite database and real feeds.

The key property: a figure built once and then patched tick after tick holds exactly what a
figure rebuilt from scratch at that moment holds: candles, and with layers shown, every
indicator line, signal marker and trade segment.
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

from config.settings import Settings
from dashboard.pages.live.chart import LiveContext, build_chart, live_tick
from dashboard.pages.live.controls import timeframe_choices
from dashboard.pages.live.view_state import ViewState, build_strategy, indicator_request
from database.repositories import CandleRepository
from market.candles import CANDLE_COLUMNS
from services.chart_layers import strategy_key
from services.runtime import Services, build_services
from strategies.registry import create

BARS = 6000  # more than any bundled daily series holds: both figures show everything


def new_rows(trace: dict, columns: dict) -> list[bool]:
    """Which appended points a trace does not hold yet (assets/chart_view.js, newRows): points
    after the last x held; for segment traces ([entry, exit, None] groups), groups whose exit
    is after the last exit held."""
    xs = columns.get("x")
    held = [x for x in trace.get("x") or [] if x is not None]
    if not xs or not held:
        return [True] * len(next(iter(columns.values())))
    last = held[-1]
    if None not in xs:
        return [x > last for x in xs]
    mask, start = [False] * len(xs), 0
    for i in range(len(xs) + 1):
        if i == len(xs) or xs[i] is None:
            if i > start and xs[i - 1] > last:
                for j in range(start, min(i + 1, len(xs))):
                    mask[j] = True
            start = i + 1
    return mask


def resolve(trace: dict, path: str) -> tuple[dict, str]:
    *parents, key = path.split(".")
    for name in parents:
        trace = trace.setdefault(name, {})
    return trace, key


def trim_oldest(data: list[dict], window: int, rows: list) -> int:
    """The browser's bound (assets/chart_view.js, trimOldest, for a chart following the
    newest bar): past ``window`` plus a tenth, every trace loses its points before the
    candle that leaves ``window`` candles (a segment crossing it stays whole); returns the
    candles dropped."""
    held = data[0]["x"]
    total = len(held) + len(rows)
    if not window or total <= window + window // 10 or not held:
        return 0
    cut = min(total - window, len(held))
    cutoff = held[cut] if cut < len(held) else rows[cut - len(held)][0]
    for index, trace in enumerate(data):
        xs = trace.get("x")
        if index in (1, 4) or not isinstance(xs, list) or not xs:
            continue
        k = 0
        while k < len(xs) and (xs[k] is None or xs[k] < cutoff):
            k += 1
        if k < len(xs) and None in xs:
            while k > 0 and xs[k - 1] is not None:
                k -= 1
        if k == 0:
            continue
        n = len(xs)
        for key, value in list(trace.items()):
            if isinstance(value, list) and len(value) == n:
                trace[key] = value[k:]
            elif isinstance(value, dict):
                for inner, nested in list(value.items()):
                    if isinstance(nested, list) and len(nested) == n:
                        value[inner] = nested[k:]
    return cut


def apply_delta(figure: dict, state: dict, delta: dict) -> tuple[dict, dict]:
    """The documented client rule (candle_delta's and compose_delta's docstrings;
    assets/chart_view.js applies it in the browser, which the browser tests check against
    the database)."""
    assert delta["k"] == figure["layout"]["uirevision"] == state["k"]
    data = figure["data"]
    last_x = data[0]["x"][-1] if data[0]["x"] else None
    rows = [row for row in delta["c"] if last_x is None or row[0] > last_x]
    dropped = trim_oldest(data, state.get("w", 0), rows)
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
    for index, columns in delta.get("e", []):
        keep = new_rows(data[index], columns)
        for path, values in columns.items():
            parent, key = resolve(data[index], path)
            kept = [v for v, k in zip(values, keep, strict=True) if k]
            parent[key] = [*(parent.get(key) or ()), *kept]
    for index, columns in delta.get("r", []):
        for path, values in columns.items():
            parent, key = resolve(data[index], path)
            parent[key] = list(values)
    state = {
        **state,
        "v": delta["v"],
        "st": delta["st"],
        "fk": delta["fk"],
        "last": delta["last"] if rows else state["last"],
        "n": state["n"] + len(rows) - dropped,
    }
    for key in ("err", "ds", "bl"):  # the feed's error or delay: present only while it lasts
        if delta.get(key) is not None:
            state[key] = delta[key]
        else:
            state.pop(key, None)
    return figure, state


def as_json(figure: go.Figure) -> dict:
    return json.loads(pio.to_json(figure))


LAYER_KEYS = ("x", "open", "high", "low", "close", "y", "customdata", "marker")


def trace_data(figure: dict, tail_of: dict | None = None) -> list[dict]:
    """Each trace's arrays; with `tail_of`, only as many of the last values as that figure has
    (a window of the newest N bars moves on, while a patched chart keeps its older bars)."""
    traces = []
    for i, trace in enumerate(figure["data"]):
        n = len(tail_of["data"][i].get("x") or []) if tail_of else None
        item = {}
        for k in LAYER_KEYS:
            if k not in trace:
                continue
            value = trace[k]
            if k == "marker":  # per-point colours (MACD histogram) only
                value = value.get("color") if isinstance(value.get("color"), list) else None
            if isinstance(value, list) and n is not None:
                value = value[-n:] if n else []
            item[k] = value
        traces.append(item)
    return traces


class Tab:
    """One browser tab, simulated: the figure it holds and its chart state."""

    def __init__(self, services: Services, symbol: str, timeframe: str, **view) -> None:
        self.live = LiveContext(services.market_data, services.tracks, BARS)
        self.view = ViewState(symbol=symbol, timeframe=timeframe, **view)
        figure, self.state = build_chart(self.live, self.view)
        self.figure = as_json(figure)
        self.rebuilds = 0

    def request(self) -> tuple:
        return live_tick(self.live, self.state, self.view)

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
        rebuilt, state = build_chart(self.live, self.view)
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
    other = LiveContext(services.market_data, services.tracks, BARS)
    figure, delta, state = live_tick(other, tab.state, ViewState(symbol="DEMO", timeframe="1m"))
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
    assert value == "1d"  # 4h cannot be shown: the stored one is chosen
    options, value = timeframe_choices(services.market_data, "DEMO", "4h")
    assert [o["value"] for o in options] == ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"]
    assert value is no_update  # a valid choice (perhaps just set from the URL) is kept


def test_chart_state_carries_what_the_status_line_shows(services):
    tab = Tab(services, "SP500", "1d")
    assert (tab.state["st"], tab.state["fk"]) == ("starting", "replay")
    services.runner.step()
    tab.tick()
    assert (tab.state["s"], tab.state["tf"], tab.state["st"]) == ("SP500", "1d", "live")
    assert "err" not in tab.state


LAYERS = {
    "indicators": tuple(
        indicator_request(text).key for text in ("ema(timeperiod=20)", "bbands", "rsi", "macd")
    ),
    "strategies": (
        strategy_key(create("ema_crossover", fast=5, slow=12, direction="both")),
        strategy_key(create("rsi_reversion", period=5, direction="both")),
        strategy_key(create("macd_cross", fast=3, slow=8, signal=3, direction="both")),
    ),
}


@pytest.mark.parametrize(("symbol", "timeframe"), [("SP500", "1d"), ("DEMO", "1m")])
def test_layered_figure_patched_tick_after_tick_equals_a_rebuilt_one(services, symbol, timeframe):
    tab = Tab(services, symbol, timeframe, **LAYERS)
    names = [trace.get("name") for trace in tab.figure["data"]]
    assert len(names) > 5  # candles + indicator lines, signal markers and trade segments
    markers_before = markers(tab.figure)
    for step in range(90):
        services.runner.step()
        tab.tick()
        if step % 9 == 8:  # a rebuild with every layer takes ~0.5 s: compare every 9 events
            assert tab.matches_a_rebuild()
    assert tab.rebuilds == 0, "a plain tick must not rebuild the figure"
    assert markers(tab.figure) > markers_before, "new signals arrived through ticks"


def markers(figure: dict) -> int:
    return sum(
        len(trace.get("x") or [])
        for trace in figure["data"]
        if trace.get("mode") == "markers" and trace.get("type") == "scatter"
    )


def test_a_filtered_view_shows_only_the_chosen_signals(services):
    tab = Tab(services, "SP500", "1d", **LAYERS, signal_types=("entry_long",), min_confidence=0.5)
    track = services.tracks.sync("SP500", "1d")
    strategies = [build_strategy(spec) for spec in LAYERS["strategies"]]
    view = track.view([], strategies, last=BARS)
    expected = sum(
        1
        for result in view.results.values()
        for s in result.signals
        if s.signal_type == "entry_long" and s.confidence >= 0.5
    )
    assert expected > 0
    assert markers(tab.figure) == expected


def test_a_chart_at_its_bound_is_trimmed_by_the_browser_never_rebuilt(services):
    """Past its window plus a tenth the browser drops the oldest bars of every trace itself
    (the window is ``w`` in the chart state): the server never sends a whole figure again for
    the chart's size, its deltas go on from the tab's last bar, and the chart the tab holds is
    the newest ``w`` to ``w`` + a tenth bars of the database, layers cut at the same bar."""
    live = LiveContext(services.market_data, services.tracks, 50)
    view = ViewState(symbol="DEMO", timeframe="1m", indicators=("sma(timeperiod=5)",))
    figure, state = build_chart(live, view)  # a random walk: no replay starting over
    assert state["w"] == 50
    tab_figure, tab_state, trimmed = as_json(figure), state, 0
    for _ in range(300):
        services.runner.step()
        rebuilt, delta, _state = live_tick(live, tab_state, view)
        assert rebuilt is no_update, "a whole figure was sent again"
        if delta is not no_update:
            before = tab_state["n"]
            tab_figure, tab_state = apply_delta(tab_figure, tab_state, delta)
            trimmed += tab_state["n"] < before + len(delta["c"])
    assert trimmed >= 2
    candles = tab_figure["data"][0]
    assert 50 <= len(candles["x"]) == tab_state["n"] <= 55
    with services.sessions() as session:
        stored = CandleRepository(session).frame("DEMO", "1m", last=len(candles["x"]) + 10)
    shown = stored.iloc[-len(candles["x"]) :]
    assert candles["close"] == pytest.approx(shown["close"].tolist(), rel=1e-9)
    sma = next(t for t in tab_figure["data"] if t.get("name", "").upper().startswith("SMA"))
    assert sma["x"][0] == candles["x"][0]  # cut at the same bar
    expected = stored["close"].rolling(5).mean().iloc[-len(sma["y"]) :]
    assert sma["y"] == pytest.approx(expected.tolist(), rel=1e-9)
