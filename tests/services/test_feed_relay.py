"""The live feeds of one process followed by others through a real Redis (services/feed_relay).

The runner side is the app's own services stepping a replay of the bundled SP500 series; the
follower side is the dashboard app as a make-serve worker builds it (LIVE_FEEDS=follow,
TRADING_RUNNER=external), over the same SQLite database: its charts must show what the runner's
feeds made, without running a feed itself. Waits are on conditions, bounded; never sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from config.settings import Settings, SettingsError
from dashboard.server import create_app
from market.candles import Candle
from market.timeframes import Timeframe
from services.feed_relay import decode_state, encode_state, feed_channel, publish_feeds
from services.live import StreamState
from services.runtime import build_services

WAIT_S = 30.0  # the bound of each wait (the machine may be busy)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT_S:g} s: {what}")
        time.sleep(0.01)  # polling a condition, not waiting for a fixed time


def env(tmp_path: Path, redis_url: str, **more: str) -> dict[str, str]:
    return {
        "STRATLENS_DATA_DIR": str(tmp_path),
        "FEEDS": "SP500:replay",
        "REPLAY_BARS": "50",
        "FEED_UPDATES_PER_CANDLE": "2",
        "REDIS_URL": redis_url,
        **more,
    }


def same_but_version(a: StreamState, b: StreamState) -> bool:
    return replace(a, version=0) == replace(b, version=0)


def candle(minute: int, close: float) -> Candle:
    ts = pd.Timestamp("2024-01-02 10:00", tz="UTC") + pd.Timedelta(minutes=minute)
    return Candle(ts, close - 1, close + 2, close - 2, close, 1_000.0 + minute)


@pytest.mark.parametrize(
    "state",
    [
        StreamState("BTC", Timeframe.parse("1m"), "replay", "starting", None, None),
        StreamState(
            "BTC",
            Timeframe.parse("1m"),
            "ccxt binance",
            "delayed",
            pd.Timestamp("2024-01-02 10:04", tz="UTC"),
            candle(5, 101.5),
            closed_count=5,
            updated_at=datetime(2024, 1, 2, 10, 5, 30, tzinfo=UTC),
            error="database busy",
            version=17,
            recent=tuple(candle(k, 100.0 + k) for k in range(5)),
            delayed_since=datetime(2024, 1, 2, 10, 5, 1, tzinfo=UTC),
            backlog=3,
            feed_status="live",
            feed_note="backfilled 12 bars",
        ),
    ],
    ids=["starting", "every-field"],
)
def test_a_state_crosses_the_wire_whole(state: StreamState) -> None:
    boot = 1_765_000_000_000
    back = decode_state(encode_state(state, boot))
    assert back == replace(state, version=boot * 1_000 + state.version)
    later = decode_state(encode_state(replace(state, version=0), boot + 1))
    assert later.version > back.version  # a restarted runner's states are newer


def test_a_worker_follows_the_runners_feeds_and_runs_none(tmp_path, redis_url):
    runner = build_services(Settings.from_env(env(tmp_path, redis_url)))
    worker_settings = Settings.from_env(
        env(tmp_path, redis_url, LIVE_FEEDS="follow", TRADING_RUNNER="external")
    )
    app = create_app(worker_settings)
    worker = app.server.extensions["stratlens"]
    stop_publishing = publish_feeds(
        runner.market, redis_url, feed_channel(runner.sessions), heartbeat_s=0.2
    )
    try:
        assert not worker.runner.running  # the worker runs no feed
        while runner.market.get("SP500").closed_count < 3 or not runner.market.get("SP500").forming:
            assert runner.runner.step()  # three closed candles, then a forming update
        theirs = runner.market.get("SP500")
        until(
            lambda: same_but_version(worker.market.get("SP500"), runner.market.get("SP500")),
            "the worker's SP500 state is the runner's",
        )
        # what the worker's chart shows is stored: its bars come from the database
        window = worker.market_data.window("SP500", "1d", 10)
        assert window.closed.index[-1] == theirs.cursor
        assert window.forming == theirs.forming
        held = worker.market.get("SP500")
        for _ in range(3):
            assert runner.runner.step()
        until(
            lambda: (
                worker.market.get("SP500").version > held.version
                and same_but_version(worker.market.get("SP500"), runner.market.get("SP500"))
            ),
            "the worker moves with the runner",
        )
    finally:
        stop_publishing()
        worker.close()
        runner.close()


def test_a_worker_started_later_is_brought_up_by_the_heartbeat(tmp_path, redis_url):
    runner = build_services(Settings.from_env(env(tmp_path, redis_url)))
    stop_publishing = publish_feeds(
        runner.market, redis_url, feed_channel(runner.sessions), heartbeat_s=0.2
    )
    try:
        for _ in range(5):
            assert runner.runner.step()
        runner.market.set_status("SP500", "finished")  # a feed that will not move again
        settings = Settings.from_env(
            env(tmp_path, redis_url, LIVE_FEEDS="follow", TRADING_RUNNER="external")
        )
        worker = create_app(settings).server.extensions["stratlens"]
        try:
            assert worker.market.get("SP500").status == "starting"
            until(
                lambda: (
                    worker.market.get("SP500").status == "finished"
                    and same_but_version(worker.market.get("SP500"), runner.market.get("SP500"))
                ),
                "a late worker holds the finished feed's state",
            )
        finally:
            worker.close()
    finally:
        stop_publishing()
        runner.close()


def test_an_older_state_never_replaces_a_newer_one(tmp_path, redis_url):
    from services.feed_relay import _Follower

    services = build_services(Settings.from_env(env(tmp_path, redis_url)))
    try:
        follower = _Follower(services.market, redis_url, "unused")
        held = services.market.get("SP500")
        newer = replace(held, status="live", forming=candle(1, 10.0))
        follower._take(encode_state(newer, 2_000_000_000_000))
        assert services.market.get("SP500") == replace(newer, version=2_000_000_000_000_000)
        follower._take(encode_state(replace(newer, status="error"), 1_000_000_000_000))
        assert services.market.get("SP500").status == "live"  # from an older runner: ignored
        follower._take(b"not json")  # skipped, the follower goes on
        assert follower.applied == 1
    finally:
        services.close()


@pytest.mark.parametrize(
    ("more", "expected"),
    [
        ({"LIVE_FEEDS": "follow", "TRADING_RUNNER": "external"}, "REDIS_URL"),
        ({"LIVE_FEEDS": "follow", "REDIS_URL": "redis://127.0.0.1:6379/0"}, "TRADING_RUNNER"),
        ({"LIVE_FEEDS": "sometimes"}, "RUN, FOLLOW"),
    ],
)
def test_following_needs_redis_and_an_external_runner(more, expected):
    with pytest.raises(SettingsError, match="LIVE_FEEDS") as error:
        Settings.from_env(more)
    assert expected in str(error.value)


def test_without_redis_the_followed_feeds_show_delayed_until_a_state_comes(tmp_path, redis_url):
    from services.feed_relay import _Follower, follow_feeds

    services = build_services(Settings.from_env(env(tmp_path, redis_url)))
    try:
        stop = follow_feeds(services.market, "redis://127.0.0.1:9/0", "nobody-listens")
        try:
            until(lambda: services.market.get("SP500").status == "delayed", "SP500 delayed")
            assert "relay (Redis) is unreachable" in services.market.get("SP500").error
        finally:
            stop()
        follower = _Follower(services.market, redis_url, "unused")
        follower._hold("Redis went away")
        held = services.market.get("SP500")
        assert held.status == "delayed"
        assert held.error == "Redis went away"
        came = replace(held, status="live", error=None, version=0)  # the runner's own, as held
        follower._take(encode_state(came, 0))
        assert services.market.get("SP500") == came  # taken whatever its version
    finally:
        services.close()
