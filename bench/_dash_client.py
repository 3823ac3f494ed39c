"""The real Dash app over a temporary SQLite database, and calling its callbacks the way a
browser does (Flask test client -> /_dash-update-component -> callback -> JSON): shared by the
dashboard benchmarks."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from config.settings import Settings
from dashboard.pages.live.controls import VIEW_CONTROLS
from dashboard.pages.live.view_state import ViewState
from dashboard.server import create_app
from database import migrate
from database.repositories import CandleRepository
from database.session import make_engine, make_session_factory
from market.sample_data import generate_random_walk


def app_over(
    symbol: str,
    bars: int,
    *,
    replay: int,
    chart_bars: int,
    updates: int = 4,
    start: str = "2020-01-01",
):
    """(app, test client) over a fresh SQLite database in a temporary folder holding ``bars``
    random-walk 1m candles of ``symbol`` from ``start`` (seed 7), its feed replaying the last
    ``replay`` of them (``updates`` forming updates per candle) and charts of ``chart_bars``."""
    folder = Path(tempfile.mkdtemp(prefix="stratlens-bench-"))
    settings = Settings.from_env(
        {
            "STRATLENS_DATA_DIR": str(folder),
            "LOAD_SAMPLE_DATA": "false",
            "FEEDS": f"{symbol}:replay",
            "REPLAY_BARS": str(replay),
            "CHART_BARS": str(chart_bars),
            "FEED_UPDATES_PER_CANDLE": str(updates),
        }
    )
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    candles = generate_random_walk(symbol, "1m", start=start, bars=bars, seed=7)
    with make_session_factory(engine).begin() as session:
        CandleRepository(session).upsert(symbol, "1m", candles)
    engine.dispose()
    app = create_app(settings, start_feeds=False)
    client = app.server.test_client()
    client.get("/")  # the first request initialises dash's routes
    return app, client


def callback_key(app, fragment: str, duplicate: bool) -> str:
    """The server callback whose outputs include `fragment` (duplicates carry an @hash)."""
    for key, callback in app.callback_map.items():
        if fragment in key and ("@" in key) == duplicate and "callback" in callback:
            return key
    raise LookupError(fragment)


def outputs(key: str) -> list[dict]:
    found = []
    for part in key.strip(".").split("..."):
        component, prop = part.rsplit(".", 1)
        found.append({"id": component.strip("."), "property": prop})
    return found


def post(client, payload: dict) -> tuple[float, int, dict]:
    """(server seconds, response bytes, decoded body); a 204 (no update) is 0 bytes."""
    start = time.perf_counter()
    response = client.post("/_dash-update-component", json=payload)
    elapsed = time.perf_counter() - start
    if response.status_code == 204:
        return elapsed, 0, {}
    assert response.status_code == 200, response.data[:500]
    return elapsed, len(response.data), json.loads(response.data)


def control_values(view: ViewState) -> list[dict[str, Any]]:
    """The live page's controls holding `view`, as callback inputs/states."""
    values = {
        "symbol": view.symbol,
        "timeframe": view.timeframe,
        "indicators": list(view.indicators),
        "strategies": list(view.strategies),
        "signal-types": list(view.signal_types),
        "min-confidence": view.min_confidence,
        "show-forming": view.show_forming,
        "theme-switch": view.theme == "light",
        "lod": view.lod,
        "executions": view.executions,
    }
    return [{"id": c, "property": "value", "value": values[c]} for c in VIEW_CONTROLS]


def build_payload(app, view: ViewState) -> dict:
    key = callback_key(app, "price-chart.figure", duplicate=False)
    return {
        "output": key,
        "outputs": outputs(key),
        "inputs": [
            *control_values(view),
            {"id": "lod-zoom", "property": "data", "value": None},
        ],
        "changedPropIds": ["symbol.value"],
        "state": [
            {"id": "url", "property": "pathname", "value": "/"},
            {"id": "url", "property": "search", "value": ""},
        ],
    }


def tick_payload(app, view: ViewState, chart_state: dict) -> dict:
    key = callback_key(app, "chart-delta.data..", duplicate=True)
    return {
        "output": key,
        "outputs": outputs(key),
        "inputs": [{"id": "tick-go", "property": "data", "value": 1}],
        "changedPropIds": ["tick-go.data"],
        "state": [
            {"id": "chart-state", "property": "data", "value": chart_state},
            {"id": "chart-loading", "property": "className", "value": "sl-loading"},
            *control_values(view),
        ],
    }


def applied_state(chart_state: dict, delta: dict) -> dict:
    """What the browser records after applying a delta (assets/chart_view.js)."""
    return {
        **chart_state,
        "v": delta["v"],
        "st": delta["st"],
        "pe": delta.get("pe"),
        "last": delta["last"] if delta["c"] else chart_state["last"],
        "n": chart_state["n"] + len(delta["c"]),
    }


def live_tick(
    client, app, view: ViewState, chart_state: dict, ticks: dict[str, tuple[list, list]]
) -> dict:
    """One interval callback (the live tick) of the chart at ``chart_state``: its server time
    and response bytes appended to ``ticks["close"]`` (a candle closed) or ``ticks["forming"]``;
    returns the chart state after the delta (unchanged after a 204, nothing recorded)."""
    elapsed, size, body = post(client, tick_payload(app, view, chart_state))
    if not body:
        return chart_state
    delta = body["response"]["chart-delta"]["data"]
    kind = "close" if delta["c"] else "forming"
    ticks[kind][0].append(elapsed)
    ticks[kind][1].append(size)
    return applied_state(chart_state, delta)
