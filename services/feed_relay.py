"""The live feeds of one process followed by others, through Redis (the production shape).

>>> stop = publish_feeds(services.market, redis_url, feed_channel(services.sessions))  # runner
>>> stop = follow_feeds(services.market, redis_url, feed_channel(services.sessions))   # worker

``make serve`` runs one ``app.py runner`` and several web workers. Were every worker to run the
feeds too, each would replay or poll the exchange on its own: three copies of every request to
the exchange (its rate limits), three writers of every bar, and, worst, workers that disagree
about the last bar (a replay started a moment apart in each), so that a tab whose ticks reach
different workers sees its chart step back and forth. So only the runner runs the feeds
(``LIVE_FEEDS=run``, the default, as one process is); the workers follow them
(``LIVE_FEEDS=follow``, set by serve-prod): every state the runner's feeds make
(:class:`services.live.StreamState`: cursor, forming bar, the last closed bars, status) is
published on the database's feed channel, and each worker takes it as its own. A closed bar is
stored before its state is published (services.live), so a worker reads from the database
every bar its state shows.

Ordering and restarts: a state carries the runner's version, offset by the runner's start
time (``boot`` ms x 1,000): versions only grow, across runner restarts too, and are the same
in every worker for the same state (a tab's chart state, ``v``, means one thing whichever
worker answers). The runner also publishes every feed's state each ``HEARTBEAT_S`` seconds: a
worker started later, or reconnected after Redis came back, is current within that time even
for a feed that no longer moves (finished, static, in error). A state older than the one held
is ignored. While Redis cannot be reached the worker's charts stay at the last state, shown
delayed with the reason (the status line says DELAYED), and the follower reconnects with
backoff; the first state that arrives again is taken.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from market.candles import Candle
from market.timeframes import Timeframe
from services.live import LiveMarket, StreamState
from services.push import RedisPublisher, push_channel

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0  # every feed's state again, for followers that joined or reconnected
RETRY_S = (0.2, 5.0)  # a follower's reconnection backoff: first and longest wait
_VERSION_SPAN = 1_000  # versions of one runner start: version + boot ms x this


def feed_channel(sessions: sessionmaker[Session]) -> str:
    """The Redis channel of the feeds of the database behind ``sessions``."""
    return push_channel(sessions) + ":feeds"


@dataclass(frozen=True)
class _Wire:
    """One message (RedisPublisher publishes what has ``wire()``)."""

    payload: bytes

    def wire(self) -> bytes:
        return self.payload


def publish_feeds(
    market: LiveMarket, url: str, channel: str, *, heartbeat_s: float = HEARTBEAT_S
) -> Callable[[], None]:
    """Publish every state of ``market``'s feeds on ``channel`` as it is made, and every
    feed's state each ``heartbeat_s``; returns the function that stops it."""
    publisher = RedisPublisher(url, channel)
    boot = int(time.time() * 1000)
    lock = threading.Lock()  # one message at a time: a symbol's states leave in order

    def send(states: list[StreamState]) -> None:
        with lock:
            publisher.publish([_Wire(encode_state(s, boot)) for s in states])

    remove = market.add_listener(lambda state: send([state]))
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_s):
            send(market.all())

    thread = threading.Thread(target=beat, name="feed-relay-heartbeat", daemon=True)
    thread.start()
    send(market.all())

    def close() -> None:
        remove()
        stop.set()
        thread.join(5)
        publisher.close()

    return close


def follow_feeds(market: LiveMarket, url: str, channel: str) -> Callable[[], None]:
    """Take every state published on ``channel`` as ``market``'s (on a thread of its own,
    reconnecting with backoff); returns the function that stops it."""
    follower = _Follower(market, url, channel)
    follower.start()
    return follower.stop


class _Follower:
    def __init__(self, market: LiveMarket, url: str, channel: str) -> None:
        self._market = market
        self._url = url
        self._channel = channel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-follower", daemon=True)
        self._held: set[str] = set()  # symbols shown delayed by this follower (Redis lost)
        self.applied = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import redis

        wait = RETRY_S[0]
        failing = False
        while not self._stop.is_set():
            client = redis.Redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=5)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                if failing:
                    log.info("feed relay: following %s again", self._channel)
                failing, wait = False, RETRY_S[0]
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._take(message["data"])
                pubsub.close()
            except (redis.RedisError, OSError) as exc:
                if not failing:
                    log.warning("feed relay: Redis unreachable (%s); charts hold", exc)
                    self._hold(f"the live feed relay (Redis) is unreachable: {exc}")
                failing = True
                self._stop.wait(wait)
                wait = min(wait * 2, RETRY_S[1])
            finally:
                client.close()

    def _take(self, payload: bytes) -> None:
        try:
            state = decode_state(payload)
        except (ValueError, KeyError, TypeError) as exc:  # never stop following for one
            log.warning("feed relay: a message it cannot read was skipped (%s)", exc)
            return
        held = self._market.get(state.symbol)
        if held is not None and held.version >= state.version and state.symbol not in self._held:
            return  # an older state (a heartbeat behind an event), or the one held
        if self._market.replace(state):
            self._held.discard(state.symbol)
            self.applied += 1

    def _hold(self, why: str) -> None:
        """Show every followed feed delayed, naming why, until its next state arrives (which
        is taken whatever its version: the one held here is this follower's own)."""
        for state in self._market.all():
            if state.feed_kind == "none":
                continue  # a stored series without a feed: nothing to follow
            self._held.add(state.symbol)
            self._market.replace(
                replace(state, status="delayed", error=why, version=state.version + 1)
            )


# --- the wire format -----------------------------------------------------------------------


def encode_state(state: StreamState, boot: int) -> bytes:
    """``state`` as JSON, its version offset by the runner's start (see the module text)."""
    return json.dumps(
        {
            "symbol": state.symbol,
            "timeframe": state.timeframe.label,
            "feed_kind": state.feed_kind,
            "status": state.status,
            "cursor": _ms(state.cursor),
            "forming": _candle(state.forming),
            "closed_count": state.closed_count,
            "updated_at": _iso(state.updated_at),
            "error": state.error,
            "version": boot * _VERSION_SPAN + state.version,
            "recent": [_candle(c) for c in state.recent],
            "delayed_since": _iso(state.delayed_since),
            "backlog": state.backlog,
            "feed_status": state.feed_status,
            "feed_note": state.feed_note,
        },
        separators=(",", ":"),
    ).encode()


def decode_state(payload: bytes | str) -> StreamState:
    """The state a message holds (ValueError, KeyError or TypeError when it is not one)."""
    data: dict[str, Any] = json.loads(payload)
    forming = data["forming"]
    return replace(
        StreamState(
            symbol=str(data["symbol"]),
            timeframe=Timeframe.parse(data["timeframe"]),
            feed_kind=str(data["feed_kind"]),
            status=str(data["status"]),
            cursor=_ts(data["cursor"]),
            forming=None if forming is None else _from_candle(forming),
        ),
        closed_count=int(data["closed_count"]),
        updated_at=_datetime(data["updated_at"]),
        error=data["error"],
        version=int(data["version"]),
        recent=tuple(_from_candle(c) for c in data["recent"]),
        delayed_since=_datetime(data["delayed_since"]),
        backlog=int(data["backlog"]),
        feed_status=data["feed_status"],
        feed_note=data["feed_note"],
    )


def _ms(ts: pd.Timestamp | None) -> int | None:
    return None if ts is None else int(ts.value // 1_000_000)


def _ts(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.Timestamp(int(ms), unit="ms", tz="UTC")


def _candle(candle: Candle | None) -> list[Any] | None:
    if candle is None:
        return None
    return [_ms(candle.ts), candle.open, candle.high, candle.low, candle.close, candle.volume]


def _from_candle(values: list[Any]) -> Candle:
    ms, o, h, low, c, v = values
    return Candle(_ts(ms), float(o), float(h), float(low), float(c), float(v))  # type: ignore[arg-type]


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _datetime(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


__all__ = [
    "HEARTBEAT_S",
    "decode_state",
    "encode_state",
    "feed_channel",
    "follow_feeds",
    "publish_feeds",
]
