"""The server's guards (issue 12, item 7): a request size limit answered 413 without reading the
body, writing callbacks refused from other machines, /debug/stats off unless enabled and free of
SQL. Through the real app and Flask's test client (the Dash callback endpoint a browser calls)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from config.settings import Settings
from dashboard.pages.backtest import WRITE_OUTPUT
from dashboard.server import create_app

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def app_with(tmp_path):
    made = []

    def build(**env: str):
        base = {"STRATLENS_DATA_DIR": str(tmp_path), "FEEDS": "SP500:replay", "MAX_REQUEST_MB": "1"}
        dash_app = create_app(Settings.from_env({**base, **env}), start_feeds=False)
        made.append(dash_app)
        return dash_app

    yield build
    for dash_app in made:
        dash_app.server.extensions["stratlens"].close()


@pytest.fixture
def client(app_with) -> Iterator:
    return app_with().server.test_client()


def _run_request() -> dict:
    """The first request of the backtest page's Run callback, as the browser sends it (its
    ``output`` lists every output; the guard needs one of them)."""
    return {
        "output": f"..{WRITE_OUTPUT}...bt-kpis.children..",
        "outputs": [],
        "inputs": [{"id": "bt-run", "property": "n_clicks", "value": 1}],
        "changedPropIds": ["bt-run.n_clicks"],
        "state": [],
    }


def test_a_request_over_the_limit_is_refused_with_413_and_one_log_line(client, caplog):
    body = b'{"output": "' + b"x" * (2 << 20) + b'"}'  # 2 MB against MAX_REQUEST_MB=1
    with caplog.at_level(logging.WARNING, logger="stratlens.server"):
        answer = client.post(
            "/_dash-update-component", data=body, content_type="application/json",
            environ_base=LOCAL,
        )  # fmt: skip
    assert answer.status_code == 413
    assert "over the limit of 1,048,576 bytes" in answer.get_json()["detail"]
    assert all(len(record.getMessage()) < 400 for record in caplog.records)
    assert any("refused a 2,097,1" in record.getMessage() for record in caplog.records)


def test_a_writing_callback_from_another_machine_is_refused(client):
    answer = client.post("/_dash-update-component", json=_run_request(), environ_base=REMOTE)
    assert answer.status_code == 403
    assert "only allowed from this machine" in answer.get_json()["detail"]


def test_reading_callbacks_from_another_machine_still_work(app_with):
    # the live page's symbol -> timeframe options: reads only
    dash_app = app_with()
    output = next(key for key in dash_app.callback_map if key.startswith("..timeframe.options"))
    request = {
        "output": output,
        "outputs": [
            {"id": "timeframe", "property": "options"},
            {"id": "timeframe", "property": output.rsplit("...", 1)[1].split(".")[1].rstrip(".")},
        ],
        "inputs": [{"id": "symbol", "property": "value", "value": "SP500"}],
        "changedPropIds": ["symbol.value"],
        "state": [{"id": "timeframe", "property": "value", "value": "1d"}],
    }
    client = dash_app.server.test_client()
    answer = client.post("/_dash-update-component", json=request, environ_base=REMOTE)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert "1d" in answer.get_data(as_text=True)


def test_the_writing_callback_is_not_refused_from_this_machine(client):
    answer = client.post("/_dash-update-component", json=_run_request(), environ_base=LOCAL)
    assert answer.status_code != 403


def test_the_guard_names_an_output_the_run_callback_really_has(app_with):
    dash_app = app_with()
    keys = [key for key in dash_app.callback_map if WRITE_OUTPUT in key.strip(".").split("...")]
    assert len(keys) == 1  # exactly the Run/Open callback, no other


def test_debug_stats_is_off_unless_enabled(app_with):
    assert app_with().server.test_client().get("/debug/stats").status_code == 404
    enabled = app_with(DEBUG_STATS="1").server.test_client().get("/debug/stats")
    assert enabled.status_code == 200


def test_debug_stats_shows_a_feed_error_without_sql_or_values(app_with):
    dash_app = app_with(DEBUG_STATS="1")
    services = dash_app.server.extensions["stratlens"]
    error = (
        "OperationalError: (sqlite3.OperationalError) database is locked\n"
        "[SQL: INSERT INTO candles (symbol, ...) VALUES (?, ?)]\n[parameters: ('SP500', 1.0)]"
    )
    services.market.set_status("SP500", "error", error)
    feeds = dash_app.server.test_client().get("/debug/stats").get_json()["feeds"]
    shown = next(feed for feed in feeds if feed["symbol"] == "SP500")["error"]
    assert shown == "OperationalError: (sqlite3.OperationalError) database is locked"
    assert "SQL" not in json.dumps(feeds)
