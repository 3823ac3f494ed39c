"""Prometheus metrics of a StratLens process (prometheus_client); api/metrics.py serves them.

Under ``make serve`` several processes (the gunicorn workers and ``app.py runner``) write their
values into one directory, PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, set
before prometheus_client is first imported), and /metrics, answered by any worker, sums them.
Without it (``app.py serve-api``) the one process's values are served.

    stratlens_http_request_duration_seconds{method, route, status}   histogram, route templates
    stratlens_trades_ingested_total{source}       trades stored through the TradeTracker
                                                  (POST /api/v1/trades: source "api"; imports)
    stratlens_runner_lag_seconds{symbol}          a closed candle's wait between its feed
                                                  publishing it and the trading runner done with it
    stratlens_runner_candles_total{symbol}        closed candles the trading runner handled
    stratlens_feed_state{symbol, state}           1 for each feed's state (starting, live, delayed,
                                                  finished, error, static, or an exchange's own)

A gauge is the highest among the live processes (``livemax``): a feed runs in every web
worker and in the runner; a dead process's values leave with it (``process_dead``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from services.live import LiveMarket
    from services.runtime import Services
    from tracking.tracker import Recorded, TradeTracker

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FEED_STATE_EVERY_S = 2.0  # how often a process writes its feeds' states

REQUEST_SECONDS = Histogram(
    "stratlens_http_request_duration_seconds",
    "HTTP request latency, from the request's arrival to its answer's last byte",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRADES_INGESTED = Counter(
    "stratlens_trades_ingested", "Trades stored through the TradeTracker", ["source"]
)
RUNNER_LAG = Gauge(
    "stratlens_runner_lag_seconds",
    "Seconds between a feed publishing a closed candle and the trading runner done with it"
    " (the last candle's)",
    ["symbol"],
    multiprocess_mode="livemax",
)
RUNNER_CANDLES = Counter(
    "stratlens_runner_candles", "Closed candles the trading runner handled", ["symbol"]
)
FEED_STATE = Gauge(
    "stratlens_feed_state",
    "1 for the state each live feed is in (per symbol), 0 for the states it left",
    ["symbol", "state"],
    multiprocess_mode="livemax",
)


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, or None (this process's values alone)."""
    return os.environ.get(MULTIPROC_ENV) or None


def count_ingested(tracker: TradeTracker) -> Callable[[], None]:
    """Count every batch ``tracker`` commits (by each trade's source); returns the stop."""

    def counted(outcome: Recorded) -> None:
        sources: dict[str, int] = {}
        for trade in outcome.stored:
            source = trade.source or "unknown"
            sources[source] = sources.get(source, 0) + 1
        for source, n in sources.items():
            TRADES_INGESTED.labels(source=source).inc(n)

    return tracker.add_listener(counted)


def observe_runner(market: LiveMarket, symbol: str, *, now: datetime | None = None) -> None:
    """The trading runner is done with ``symbol``'s last closed candle: its lag is the time
    since the market took the candle (StreamState.updated_at, the feed's publishing)."""
    state = market.get(symbol)
    RUNNER_CANDLES.labels(symbol=symbol).inc()
    if state is None or state.updated_at is None:
        return
    lag = ((now or datetime.now(UTC)) - state.updated_at).total_seconds()
    RUNNER_LAG.labels(symbol=symbol).set(max(0.0, lag))


def export_feed_states(
    market: LiveMarket, every_s: float = FEED_STATE_EVERY_S
) -> Callable[[], None]:
    """Write each feed's state every ``every_s`` seconds (a daemon thread); returns the stop."""
    stop = threading.Event()
    shown: dict[str, str] = {}

    def write() -> None:
        for state in market.all():
            before = shown.get(state.symbol)
            if before is not None and before != state.status:
                FEED_STATE.labels(symbol=state.symbol, state=before).set(0)
            FEED_STATE.labels(symbol=state.symbol, state=state.status).set(1)
            shown[state.symbol] = state.status

    def loop() -> None:
        while True:
            write()
            if stop.wait(every_s):
                return

    write()  # the first values are there before the first scrape
    threading.Thread(target=loop, name="metrics-feeds", daemon=True).start()
    return stop.set


def time_trading(services: Services) -> None:
    """Observe the lag of ``services``' trading runner on each closed candle."""
    services.trading.after_closed = lambda event: observe_runner(services.market, event.symbol)


def export_runner(services: Services) -> Callable[[], None]:
    """``app.py runner``'s metrics: the trading runner's lag per closed candle, the feeds'
    states; returns the stop."""
    time_trading(services)
    return export_feed_states(services.market)


def process_dead(pid: int) -> None:
    """Drop a dead process's live gauges from the multiprocess directory (gunicorn's
    child_exit, the supervisor's runner)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def latest() -> tuple[bytes, str]:
    """The exposition of every process's metrics (or this one's): body and content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry
    from prometheus_client import generate_latest as render

    registry: Any = REGISTRY
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return render(registry), CONTENT_TYPE_LATEST


__all__ = [
    "FEED_STATE",
    "MULTIPROC_ENV",
    "REQUEST_SECONDS",
    "RUNNER_LAG",
    "TRADES_INGESTED",
    "count_ingested",
    "export_feed_states",
    "export_runner",
    "latest",
    "multiprocess_dir",
    "observe_runner",
    "process_dead",
    "time_trading",
]
