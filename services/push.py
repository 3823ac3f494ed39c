"""Live push: each recorded trade, the account's live summary after it and each alert, to
every subscriber of the account: in this process, and in every other one when Redis is set.

>>> hub = PushHub(channel=push_channel(sessions), redis_url=settings.redis_url)
>>> await hub.start()                         # on the server's event loop
>>> stop = hub.follow(tracking)               # the tracker's commits -> trades and metrics
>>> stop_alerts = hub.follow_alerts(center)   # the alert center's stored alerts -> alerts
>>> subscription = hub.subscribe("acc1", "trades")
>>> message = await subscription.get()        # JSON bytes; None once dropped (too slow)

Events come from listeners (TradeTracker.add_listener, AlertCenter.add_listener), called on
the recording thread after the commit: they build each message once (JSON, decoded to text
once per event, the same text queued for every client) and hand it to the hub's loop with
``loop.call_soon_threadsafe``. Each client has a bounded queue and a sender of its own (the
sends are concurrent); a client whose queue is full is dropped (its ``get`` answers None and
``dropped`` says why), so a slow client never holds up the others nor the recording.

A batch's trades are pushed first; an account's live view (the metrics channel) is computed
after them and only by a process with a metrics client of the account: the recording
process for its own clients, every other one when the batch's trades reach it through Redis
(computed on a thread of the hub, in the order the batches came; the view's ``at`` is the
commit's). Nobody listening for metrics, no view is computed.

With ``redis_url`` every event is also published to one Redis pub/sub channel per database
(``stratlens:push:<database identity>``: processes of another database on the same Redis hear
nothing); each hub subscribes to it and delivers what other processes published (its own
events it delivered already, without the round trip). A process that records but serves no
client (``app.py trades import``) only publishes: :func:`publish_to_redis`. Redis down: each
process still pushes its own events; the others' are lost until it is back (logged, counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from database.models import DatabaseIdentity
from database.records import TradeRecord
from database.repositories.alerts import AlertRecord
from tracking.tracker import Recorded

log = logging.getLogger("stratlens.push")

Channel = Literal["trades", "metrics", "alerts"]
CHANNELS: tuple[Channel, ...] = ("trades", "metrics", "alerts")
DEFAULT_QUEUE = 256  # messages a client may lag behind before it is dropped
CHANNEL_PREFIX = "stratlens:push:"
REDIS_TIMEOUT_S = 0.5  # a publish never holds the recording thread longer
REDIS_RETRY_S = 5.0  # after a failed publish, skip Redis this long (logged once)
TRADE_FIELDS = (
    "trade_id", "account_id", "strategy_id", "symbol", "side", "price", "volume", "commission",
    "execution_time", "pnl", "cumulative_pnl", "labels", "market_context", "source", "order_id",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One message for the subscribers of (``account_id``, ``channel``); ``account_id`` None:
    every account's (an alert of no account: a feed down). ``origin``: the publishing
    process's id."""

    channel: Channel
    account_id: str | None
    message: bytes
    origin: str
    at: float = 0.0  # the event's time (a batch's: right after its commit)

    def wire(self) -> bytes:
        """The Redis message: a JSON header line, then the client's message as is."""
        header = [self.origin, self.channel, self.account_id, self.at]
        return orjson.dumps(header) + b"\n" + self.message

    @classmethod
    def from_wire(cls, data: bytes) -> PushEvent:
        header, _, message = data.partition(b"\n")
        origin, channel, account, *at = orjson.loads(header)
        return cls(channel, account, message, origin, at[0] if at else 0.0)


def _dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def trade_message(account: str, trades: Sequence[TradeRecord], at: float) -> bytes:
    """The trades channel's message: the account's new trades as stored (labels, pnl)."""
    rows = [{name: getattr(t, name) for name in TRADE_FIELDS} for t in trades]
    return _dumps({"channel": "trades", "account_id": account, "at": at, "trades": rows})


def metrics_message(account: str, view: dict[str, Any], at: float, *, initial: bool) -> bytes:
    """The metrics channel's message: the account's live view (TrackingService.live: fills,
    trade summary, labels, attribution by label); ``initial``: sent on connecting."""
    return _dumps({"channel": "metrics", "account_id": account, "at": at, "initial": initial,
                   "summary": view})  # fmt: skip


def alert_message(alert: AlertRecord, at: float) -> bytes:
    fields = ("id", "kind", "severity", "message", "created_at", "account", "deployment",
              "symbol", "metric", "value", "payload")  # fmt: skip
    document = {name: getattr(alert, name) for name in fields}
    return _dumps({"channel": "alerts", "account_id": alert.account, "at": at,
                   "alert": document})  # fmt: skip


class LiveView(Protocol):
    """What the metrics need of services.tracking.TrackingService."""

    def live(self, account: str) -> dict[str, Any]: ...


class Recorder(LiveView, Protocol):
    tracker: Any  # a TradeTracker: add_listener(fn) -> remove


def trade_events(
    outcome: Recorded,
    origin: str,
    wanted: Callable[[str, Channel], bool] = lambda _account, _channel: True,
) -> list[PushEvent]:
    """A committed batch's trades as events, one per account (only those ``wanted``)."""
    at = time.time()
    return [
        PushEvent("trades", account, trade_message(account, trades, at), origin, at)
        for account, trades in _by_account(outcome).items()
        if wanted(account, "trades")
    ]


def view_event(tracking: LiveView, account: str, at: float, origin: str) -> PushEvent | None:
    """The account's live view as a metrics event (``at``: its batch's); None when it cannot
    be computed (logged: a view that fails never stops the trades' push)."""
    try:
        view = tracking.live(account)
    except Exception:
        log.exception("the live view of %r could not be computed", account)
        return None
    return PushEvent("metrics", account, metrics_message(account, view, at, initial=False),
                     origin, at)  # fmt: skip


def _by_account(outcome: Recorded) -> dict[str, list[TradeRecord]]:
    by_account: dict[str, list[TradeRecord]] = defaultdict(list)
    for trade in outcome.stored:
        by_account[trade.account_id].append(trade)
    return by_account


def alert_events(alerts: Iterable[AlertRecord], origin: str) -> list[PushEvent]:
    at = time.time()
    return [PushEvent("alerts", a.account, alert_message(a, at), origin) for a in alerts]


def push_channel(sessions: sessionmaker[Session]) -> str:
    """The Redis channel of the database behind ``sessions`` (its identity token)."""
    with sessions() as session:
        token = session.execute(select(DatabaseIdentity.token)).scalar()
    return CHANNEL_PREFIX + (token or "default")


class RedisPublisher:
    """Publishes events to the channel from any thread (redis-py's client is thread-safe).
    A failure is logged once per outage and Redis is skipped for ``REDIS_RETRY_S``: the
    recording thread never waits on a Redis that is down."""

    def __init__(self, url: str, channel: str) -> None:
        import redis

        self.channel = channel
        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._error = redis.RedisError
        self._down_until = 0.0
        self._failing = False
        self.published = 0
        self.lost = 0

    def publish(self, events: Sequence[PushEvent]) -> None:
        if not events:
            return
        if time.monotonic() < self._down_until:
            self.lost += len(events)
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for event in events:
                pipe.publish(self.channel, event.wire())
            pipe.execute()
        except (self._error, OSError) as exc:
            self.lost += len(events)
            self._down_until = time.monotonic() + REDIS_RETRY_S
            if not self._failing:
                log.warning("push: Redis publish failed (%s); other processes miss events", exc)
            self._failing = True
            return
        if self._failing:
            log.info("push: Redis publishes again")
        self._failing = False
        self.published += len(events)

    def close(self) -> None:
        self._client.close()


def publish_to_redis(tracking: Recorder, url: str, channel: str) -> Callable[[], None]:
    """Publish ``tracking``'s commits to Redis (a process serving no client); returns the
    function that stops it."""
    publisher = RedisPublisher(url, channel)
    origin = uuid.uuid4().hex
    # the trades only: each serving process computes the live view for its metrics clients
    remove = tracking.tracker.add_listener(
        lambda outcome: publisher.publish(trade_events(outcome, origin))
    )

    def stop() -> None:
        remove()
        publisher.close()

    return stop


def publish_alerts_to_redis(center: Any, url: str, channel: str) -> Callable[[], None]:
    """Publish the alerts ``center`` (trading.alerts.AlertCenter) stores to Redis (the
    external runner, `app.py runner`); returns the function that stops it."""
    publisher = RedisPublisher(url, channel)
    origin = uuid.uuid4().hex
    remove = center.add_listener(lambda alerts: publisher.publish(alert_events(alerts, origin)))

    def stop() -> None:
        remove()
        publisher.close()

    return stop


@dataclass(eq=False)
class Subscription:
    """One client's stream: a bounded queue of messages (JSON text)."""

    account_id: str
    channel: Channel
    size: int
    dropped: str | None = None
    _queue: asyncio.Queue[str | None] = field(init=False)
    _gone: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(self.size)
        self._gone = asyncio.Event()

    async def wait_dropped(self) -> str:
        await self._gone.wait()
        return self.dropped or ""

    async def get(self) -> str | None:
        """The next message; None once dropped."""
        return await self._queue.get()

    def offer(self, message: str) -> bool:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    def drop(self, reason: str) -> None:
        """What is queued is discarded; ``get`` answers None."""
        self.dropped = reason
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        self._gone.set()


@dataclass
class PushStats:
    clients: int = 0
    published: int = 0  # events this process published
    delivered: int = 0  # messages queued to clients
    dropped_clients: int = 0
    from_redis: int = 0  # events of other processes received
    redis: str = "off"  # off, connecting, subscribed, down: <why>


class PushHub:
    """The subscribers of this process and the events' fan-out to them (see the module doc).
    ``subscribe``, ``unsubscribe`` and delivery run on the hub's loop; ``publish`` and the
    listeners on any thread."""

    def __init__(
        self,
        channel: str = CHANNEL_PREFIX + "default",
        *,
        redis_url: str | None = None,
        queue_size: int = DEFAULT_QUEUE,
    ) -> None:
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.queue_size = queue_size
        self._redis_url = redis_url
        self._subscribers: dict[tuple[str, str], set[Subscription]] = defaultdict(set)
        self._broadcast: dict[str, set[Subscription]] = defaultdict(set)  # per channel
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publisher: RedisPublisher | None = None
        self._listener: asyncio.Task | None = None
        self._subscribed = threading.Event()
        self._stats = PushStats(redis="connecting" if redis_url else "off")
        self._tracking: LiveView | None = None  # follow(): the views of other processes' trades
        self._views: ThreadPoolExecutor | None = None  # one thread: views in the batches' order

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the hub to the running loop; with Redis, subscribe to the channel."""
        self._loop = asyncio.get_running_loop()
        if self._redis_url:
            self._publisher = RedisPublisher(self._redis_url, self.channel)
            self._listener = asyncio.create_task(self._listen(self._redis_url))

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        while listener is not None and not listener.done():
            # again until it ends: redis-py's connect can swallow a cancellation
            listener.cancel()
            await asyncio.wait({listener}, timeout=0.5)
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        if self._views is not None:
            self._views.shutdown(wait=False, cancel_futures=True)
            self._views = None
        for subscription in [s for group in self._all_groups() for s in group]:
            subscription.drop("the server is stopping")
        self._loop = None

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the hub listens to Redis (any thread; tests and start-up checks)."""
        return self._subscribed.wait(timeout)

    # --- clients --------------------------------------------------------------------------

    def subscribe(self, account_id: str, channel: Channel) -> Subscription:
        subscription = Subscription(account_id, channel, self.queue_size)
        self._subscribers[(account_id, channel)].add(subscription)
        self._broadcast[channel].add(subscription)
        self._stats.clients += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        group = self._subscribers.get((subscription.account_id, subscription.channel))
        if group is not None and subscription in group:
            group.discard(subscription)
            self._broadcast[subscription.channel].discard(subscription)
            self._stats.clients -= 1
            if not group:
                del self._subscribers[(subscription.account_id, subscription.channel)]

    def wants(self, account_id: str, channel: Channel) -> bool:
        """Whether an event of (account, channel) goes anywhere: a client here, or Redis."""
        return self._publisher is not None or (account_id, channel) in self._subscribers

    # --- events ---------------------------------------------------------------------------

    def publish(self, events: Sequence[PushEvent]) -> None:
        """Deliver ``events`` to this process's clients and publish them to Redis."""
        if not events:
            return
        self._stats.published += len(events)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, events)
        if self._publisher is not None:
            self._publisher.publish(events)

    def follow(self, tracking: Recorder) -> Callable[[], None]:
        """Push ``tracking``'s committed trades, then the live view after them to this
        process's metrics clients (other processes compute their own, see the module doc)."""
        self._tracking = tracking

        def committed(outcome: Recorded) -> None:
            events = trade_events(outcome, self.origin, self.wants)
            self.publish(events)  # the trades first, here and through Redis
            at = events[0].at if events else time.time()
            views = [
                view_event(tracking, account, at, self.origin)
                for account in _by_account(outcome)
                if (account, "metrics") in self._subscribers
            ]
            self._deliver_here([v for v in views if v is not None])

        return tracking.tracker.add_listener(committed)

    def _deliver_here(self, events: Sequence[PushEvent]) -> None:
        """Deliver ``events`` to this process's clients only (any thread)."""
        loop = self._loop
        if events and loop is not None and not loop.is_closed():
            self._stats.published += len(events)
            loop.call_soon_threadsafe(self._deliver, events)

    def _view_of_foreign_trades(self, event: PushEvent) -> None:
        """Another process's trades of an account with a metrics client here: its live view
        computed on the hub's view thread (the catch-up reads the rows), then delivered."""
        tracking, account = self._tracking, event.account_id
        if tracking is None or account is None or (account, "metrics") not in self._subscribers:
            return
        if self._views is None:
            self._views = ThreadPoolExecutor(1, thread_name_prefix="push-views")

        def compute() -> None:
            view = view_event(tracking, account, event.at or time.time(), self.origin)
            if view is not None:
                self._deliver_here([view])

        self._views.submit(compute)

    def follow_alerts(self, center: Any) -> Callable[[], None]:
        """Push the alerts ``center`` (trading.alerts.AlertCenter) stores."""
        return center.add_listener(lambda alerts: self.publish(alert_events(alerts, self.origin)))

    def _deliver(self, events: Sequence[PushEvent]) -> None:
        for event in events:
            if event.account_id is None:
                targets = list(self._broadcast.get(event.channel, ()))
            else:
                targets = list(self._subscribers.get((event.account_id, event.channel), ()))
            text = event.message.decode() if targets else ""  # once, for every client
            for subscription in targets:
                if subscription.offer(text):
                    self._stats.delivered += 1
                else:
                    self.unsubscribe(subscription)
                    subscription.drop(f"too slow: {self.queue_size} messages behind")
                    self._stats.dropped_clients += 1

    async def _listen(self, url: str) -> None:
        """Deliver what other processes publish; reconnects with backoff (0.1 s to 5 s)."""
        import redis.asyncio as aioredis

        delay = 0.1
        while True:
            client = aioredis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._stats.redis = "subscribed"
                self._subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    event = PushEvent.from_wire(message["data"])
                    if event.origin != self.origin:
                        self._stats.from_redis += 1
                        self._deliver([event])
                        if event.channel == "trades":
                            self._view_of_foreign_trades(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stats.redis == "subscribed":
                    log.warning("push: Redis subscription lost (%s); retrying", exc)
                self._stats.redis = f"down: {str(exc).splitlines()[0][:200]}"
                self._subscribed.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def stats(self) -> dict[str, Any]:
        out = dict(self._stats.__dict__)
        if self._publisher is not None:
            out["redis_published"] = self._publisher.published
            out["redis_lost"] = self._publisher.lost
        return out

    def _all_groups(self) -> list[set[Subscription]]:
        return list(self._subscribers.values())


__all__ = [
    "CHANNELS",
    "DEFAULT_QUEUE",
    "PushEvent",
    "PushHub",
    "RedisPublisher",
    "Subscription",
    "alert_events",
    "publish_alerts_to_redis",
    "publish_to_redis",
    "push_channel",
    "trade_events",
    "view_event",
]
