"""GET /metrics in one process (FastAPI's TestClient, a real database): who may read it, the
request latency by route template, the trades ingested, the runner's lag over a real feed, and
the JSON log format. The multi-process shape is tests/api/test_production.py's."""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.metrics import PAGES
from config.log_format import JsonFormatter
from services.metrics import observe_runner
from tests.api.test_production import metric, wait_for


def sample(name: str, **labels: str) -> float | None:
    """A value of this process's registry (the tests run without PROMETHEUS_MULTIPROC_DIR)."""
    return REGISTRY.get_sample_value(name, labels)


def ingested(source: str) -> float:
    return sample("stratlens_trades_ingested_total", source=source) or 0.0


def test_metrics_need_an_admin_token_from_another_machine(api):
    # TestClient's peer is "testclient": not a loopback address
    assert api.client.get("/metrics").status_code == 401
    assert api.get("/metrics", who="write").status_code == 403
    answer = api.get("/metrics", who="admin")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "stratlens_http_request_duration_seconds" in answer.text


def test_metrics_answer_this_machine_without_a_token(api):
    from api import create_api

    app = create_api(api.sessions)
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/metrics").status_code == 200


def test_latency_by_route_template_and_trades_ingested(api):
    before = ingested("api")
    trades = [
        {"trade_id": f"m{k}", "symbol": "BTC", "side": ("buy", "sell")[k % 2], "price": 100.0,
         "volume": 1.0, "execution_time": f"2024-03-01T1{k}:00:00Z"}
        for k in range(3)
    ]  # fmt: skip
    assert api.post(trades).status_code == 201
    assert api.get("/api/v1/performance/acc1/summary").status_code in (200, 404)
    assert api.get("/api/v1/no/such/route").status_code == 404
    text = api.get("/metrics", who="admin").text
    assert ingested("api") - before == 3
    count = "stratlens_http_request_duration_seconds_count"
    assert metric(text, count, method="POST", route="/api/v1/trades", status="201") >= 1
    assert metric(text, count, method="GET", route="/api/v1/performance/{account_id}/summary")
    assert metric(text, count, method="GET", route="/api/{rest:path}", status="404") >= 1
    assert "/api/v1/no/such/route" not in text  # a path is never a label value


def test_the_pages_are_one_route_label(tmp_path):
    from cli.serve import asgi_app
    from config.settings import Settings

    settings = Settings.from_env(
        {"STRATLENS_DATA_DIR": str(tmp_path), "LOAD_SAMPLE_DATA": "false", "FEEDS": "none"}
    )
    app = asgi_app(settings)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        assert client.get("/").status_code == 200
        assert client.get("/_dash-layout").status_code == 200
        text = client.get("/metrics").text  # not Dash's catch-all page
    assert metric(text, "stratlens_http_request_duration_seconds_count", route=PAGES) >= 2
    assert "_dash-layout" not in text


def test_the_runner_lag_over_a_real_feed(tmp_path):
    """The runtime's services on a random-walk feed, stepped: each closed candle's lag is the
    time from the market taking it to the trading runner done with it."""
    from config.settings import Settings
    from services.metrics import time_trading
    from services.runtime import build_services

    settings = Settings.from_env(
        {"STRATLENS_DATA_DIR": str(tmp_path), "FEEDS": "DEMO:random_walk",
         "FEED_UPDATES_PER_CANDLE": "0"}
    )  # fmt: skip
    services = build_services(settings)
    try:
        time_trading(services)
        services.trading.start()
        before = sample("stratlens_runner_candles_total", symbol="DEMO") or 0.0
        for _ in range(50):
            services.runner.step()
        closed = services.market.get("DEMO").closed_count
        assert closed > 0
        assert sample("stratlens_runner_candles_total", symbol="DEMO") - before == closed
        assert 0 <= sample("stratlens_runner_lag_seconds", symbol="DEMO") < 60
        taken = services.market.get("DEMO").updated_at
        observe_runner(services.market, "DEMO", now=taken + timedelta(seconds=5))
        assert sample("stratlens_runner_lag_seconds", symbol="DEMO") == 5.0
    finally:
        services.close()


def test_feed_states_leave_the_old_state_at_zero():
    from services.metrics import export_feed_states

    class Market:
        def __init__(self):
            self.status = "starting"

        def all(self):
            from types import SimpleNamespace

            return [SimpleNamespace(symbol="FS1", status=self.status)]

    market = Market()
    stop = export_feed_states(market, every_s=0.01)
    try:
        wait_for("starting", lambda: sample("stratlens_feed_state", symbol="FS1", state="starting"))
        market.status = "live"
        wait_for("live", lambda: sample("stratlens_feed_state", symbol="FS1", state="live"))
        assert sample("stratlens_feed_state", symbol="FS1", state="starting") == 0
    finally:
        stop()


def test_json_log_records():
    formatter = JsonFormatter()
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.1:5000", "GET", "/ws/performance/a/trades?token=slt_0123456789ab_secret", "1.1",
         101),
        None,
    )  # fmt: skip
    record = json.loads(formatter.format(access))
    assert record["logger"] == "uvicorn.access"
    assert record["method"] == "GET"
    assert record["status"] == 101
    assert record["path"] == "/ws/performance/a/trades?token=[redacted]"
    assert "secret" not in json.dumps(record)
    try:
        raise ValueError("x" * 5000)
    except ValueError:
        failed = logging.LogRecord(
            "stratlens", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    line = formatter.format(failed)
    assert "\n" not in line  # one record, one line
    parsed = json.loads(line)
    assert parsed["level"] == "ERROR"
    assert "ValueError" in parsed["exception"]
    assert "characters cut" in parsed["exception"]


def test_log_format_and_web_concurrency_are_checked():
    from config.settings import Settings, SettingsError

    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"LOG_FORMAT": "JSON"}).log_format == "json"
    assert Settings.from_env({}).web_concurrency == 2
    for variable, value in (("LOG_FORMAT", "xml"), ("WEB_CONCURRENCY", "0")):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({variable: value})
