"""``app.py runner``: the feeds and the trading runner in a process of their own, until
stopped (SIGTERM, SIGINT); with Redis configured its alerts, trades and feeds are pushed to
the web processes. Moved out of services/trading_runner.py (which re-exports it)."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("stratlens.runner")


def run_forever(settings) -> int:
    """``app.py runner``: the feeds and the trading runner in this process, until stopped."""
    from services.runtime import build_services
    from services.trading_runner import RunnerBusyError

    services = build_services(settings)
    if settings.redis_url:  # the web processes push this runner's alerts and trades
        from services.feed_relay import feed_channel, publish_feeds
        from services.push import publish_alerts_to_redis, publish_to_redis, push_channel

        channel = push_channel(services.sessions)
        stops = [
            publish_alerts_to_redis(services.alert_center, settings.redis_url, channel),
            publish_to_redis(services.tracking, settings.redis_url, channel),
            # make serve's web workers follow this process's feeds (LIVE_FEEDS=follow)
            publish_feeds(services.market, settings.redis_url, feed_channel(services.sessions)),
        ]
        stop_push = lambda: [stop() for stop in stops]  # noqa: E731
    else:
        stop_push = lambda: None  # noqa: E731
    stop_metrics = lambda: None  # noqa: E731
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # make serve: /metrics shows this process's
        from services.metrics import export_runner

        stop_metrics = export_runner(services)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        services.trading.start()
    except RunnerBusyError as exc:
        log.error("runner: %s", exc)
        stop_metrics()
        stop_push()
        services.close()
        return 2
    services.runner.start()
    log.info("runner: %d deployments running", services.trading.status().deployments)
    try:
        stop.wait()
    finally:
        stop_metrics()
        stop_push()
        services.close()
    return 0


__all__ = ["run_forever"]
