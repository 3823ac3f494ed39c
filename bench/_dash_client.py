"""Calling the real Dash app's callbacks the way a browser does (Flask test client ->
/_dash-update-component -> callback -> JSON): shared by the dashboard benchmarks."""

from __future__ import annotations

import json
import time
from typing import Any

from dashboard.pages.live.controls import VIEW_CONTROLS
from dashboard.pages.live.view_state import ViewState


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
    }
    return [{"id": c, "property": "value", "value": values[c]} for c in VIEW_CONTROLS]


def build_payload(app, view: ViewState) -> dict:
    key = callback_key(app, "price-chart.figure", duplicate=False)
    return {
        "output": key,
        "outputs": outputs(key),
        "inputs": [
            *control_values(view),
            {"id": "price-chart", "property": "relayoutData", "value": None},
        ],
        "changedPropIds": ["symbol.value"],
        "state": [],
    }


def tick_payload(app, view: ViewState, chart_state: dict) -> dict:
    key = callback_key(app, "chart-delta.data..", duplicate=True)
    return {
        "output": key,
        "outputs": outputs(key),
        "inputs": [{"id": "tick", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["tick.n_intervals"],
        "state": [
            {"id": "chart-state", "property": "data", "value": chart_state},
            *control_values(view),
        ],
    }


def applied_state(chart_state: dict, delta: dict) -> dict:
    """What the browser records after applying a delta (assets/chart_view.js)."""
    return {
        **chart_state,
        "v": delta["v"],
        "st": delta["st"],
        "last": delta["last"] if delta["c"] else chart_state["last"],
        "n": chart_state["n"] + len(delta["c"]),
    }
