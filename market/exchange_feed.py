"""A live feed from any exchange ccxt supports: polled OHLCV, backfilled, rate-limited, retried.

Example (``FEEDS=BTC/USDT:ccxt:binance:1m``)::

    feed = ExchangeFeed("BTC/USDT", "1m", "binance", start_cursor=repo.last_ts("BTC/USDT", "1m"))
    for event in feed.events():  # blocks on the exchange (self_paced)
        store(event)

Closed or forming: a bar is closed once the clock (``clock()``, the exchange's "now") has
passed its open + timeframe + ``settle_s`` (the exchange may still fold the last trades into
a bar that just ended); the newest bar before that is the forming one, yielded again only
when it changed. Closed bars are yielded exactly once and in order: the feed keeps a cursor
(the open time of the last closed bar it yielded, starting at ``start_cursor``: the last
stored bar) and asks the exchange only for bars after it, page after page until it reaches
the forming bar. So the start, and every outage (network down, retries), ends in a backfill
of exactly the bars missed: no gap, no duplicate. With nothing stored the feed starts
``lookback_bars`` before now.

Rate limits: ccxt's own limiter (``enableRateLimit``) spaces the requests by the exchange's
``rateLimit``; between polls the feed waits ``poll_interval_s`` (a twelfth of the timeframe,
at most 10 s, never below the exchange's rateLimit), or less when a bar is due to close.

Failures: what ccxt files under OperationFailed, its family of errors a retry may cure
(NetworkError and its RequestTimeout, DDoSProtection, RateLimitExceeded, ExchangeNotAvailable,
OnMaintenance; an exchange's "internal error, try again"; empty or garbled answers), is
retried with exponential backoff and jitter (:class:`ExchangeRetry`), waiting at least what
the exchange's Retry-After header asks; after ``give_up_after_s`` of failures in a row the
feed stops with an :class:`ExchangeFeedError`. Anything else (an unknown exchange or symbol,
a timeframe the exchange does not have, AuthenticationError, BadSymbol, a malformed candle)
stops it at once. Each error names the exchange, the symbol and what failed; the feed runner
shows it and stops this feed only.

State: the feed yields "status" events (connecting, backfilling N bars, retrying with the
attempt, the wait and the reason, live) that the live status line shows.

ccxt is imported when the feed starts (its first event), never at import: the command line
and an app without an exchange feed do not load it.
"""

from __future__ import annotations

import difflib
import importlib
import math
import random
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pandas as pd

from config.choices import EXCHANGE_ID_PATTERN
from market.candles import Candle, candles_from_records
from market.feeds import FeedEvent
from market.timeframes import Timeframe, from_epoch_ms, timestamp_ms
from market.validation import check_candles

DEFAULT_LOOKBACK_BARS = 1000  # bars fetched at the first start, when nothing is stored
DEFAULT_PAGE_LIMIT = 1000  # bars per request (ccxt caps it per exchange: binance 1000)
MAX_POLL_S = 10.0
EXCHANGE_ID = re.compile(EXCHANGE_ID_PATTERN)


class ExchangeFeedError(RuntimeError):
    """The exchange feed cannot go on; the message names the exchange, the symbol and why."""


@dataclass(frozen=True)
class ExchangeRetry:
    """How an exchange feed rides out an unreachable or throttling exchange.

    Retry ``k`` waits ``first_wait_s * 2**(k-1)`` capped at ``max_wait_s``, drawn in [w/2, w]
    (feeds that failed together do not retry together), and at least the Retry-After the
    exchange sent. Failing for ``give_up_after_s`` in a row stops the feed.
    """

    first_wait_s: float = 1.0
    max_wait_s: float = 60.0
    give_up_after_s: float = 900.0
    max_retry_after_s: float = 3600.0  # a Retry-After beyond this is taken as this

    def wait(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds before retry ``attempt`` (1 = the first)."""
        full = min(self.max_wait_s, self.first_wait_s * 2 ** min(max(attempt, 1) - 1, 30))
        wait = full / 2 + rng.uniform(0, full / 2)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_retry_after_s))
        return wait


class ExchangeFeed:
    """Closed and forming candles of one symbol on one ccxt exchange (see the module docstring).

    ``clock`` (epoch seconds) and ``sleep`` are injectable so tests control time; by default
    the feed sleeps on an event that :meth:`close` sets, so stopping it is immediate.
    ``exchange_config`` is passed to the ccxt exchange's constructor (options, timeout, keys)
    and ``api_urls`` replaces entries of its ``urls["api"]`` (a test server, a mirror).
    """

    self_paced = True

    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        exchange_id: str,
        start_cursor: pd.Timestamp | None,
        *,
        lookback_bars: int = DEFAULT_LOOKBACK_BARS,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        poll_interval_s: float | None = None,
        settle_s: float = 1.0,
        retry: ExchangeRetry | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        exchange_config: Mapping[str, Any] | None = None,
        api_urls: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not EXCHANGE_ID.match(exchange_id):
            raise ValueError(
                f"{symbol}: exchange id {exchange_id!r} is not a ccxt exchange id"
                " (lowercase letters and digits, like binance or kraken)"
            )
        if lookback_bars < 1 or page_limit < 1:
            raise ValueError(f"{symbol}: lookback_bars and page_limit must be at least 1")
        if poll_interval_s is not None and not poll_interval_s > 0:
            raise ValueError(f"{symbol}: poll_interval_s must be positive, got {poll_interval_s}")
        self.symbol = symbol
        self.timeframe = Timeframe.parse(timeframe)
        self.exchange_id = exchange_id
        self.lookback_bars = lookback_bars
        self.page_limit = page_limit
        self.poll_interval_s = poll_interval_s
        self.settle_s = settle_s
        self.retry = retry or ExchangeRetry()
        self._start_cursor = start_cursor
        self._clock = clock
        self._closed = threading.Event()
        self._sleep = sleep if sleep is not None else self._closed.wait
        self._config = dict(exchange_config or {})
        self._api_urls = dict(api_urls or {})
        self._rng = rng or random.Random()
        self._announced: tuple[str, str | None] | None = None

    @property
    def where(self) -> str:
        """How errors name this feed: exchange, symbol and timeframe."""
        return f"{self.exchange_id} {self.symbol} {self.timeframe.label}"

    def start_cursor(self) -> pd.Timestamp | None:
        return self._start_cursor

    def close(self) -> None:
        """Stop: a wait in progress ends at once and :meth:`events` returns."""
        self._closed.set()

    def events(self) -> Iterator[FeedEvent]:
        self._announced = None
        yield from self._announce("connecting", f"connecting to {self.exchange_id}")
        ccxt = _import_ccxt(self.where)
        exchange = self._exchange(ccxt)
        try:
            yield from self._stream(ccxt, exchange)
        finally:  # its HTTP session holds sockets: close them with the feed
            session = getattr(exchange, "session", None)
            if session is not None:
                session.close()

    def _stream(self, ccxt: ModuleType, exchange: Any) -> Iterator[FeedEvent]:
        loaded = yield from self._call(ccxt, exchange, exchange.load_markets, "loading markets")
        if loaded is None:
            return
        if self.symbol not in exchange.markets:
            close = difflib.get_close_matches(self.symbol, list(exchange.markets), n=3)
            raise ExchangeFeedError(
                f"{self.where}: {self.exchange_id} has no market {self.symbol!r}"
                + (f" (closest: {', '.join(close)})" if close else "")
            )
        poll_s = self._poll_interval(exchange)
        tf_ms = self.timeframe.millis
        cursor = None if self._start_cursor is None else timestamp_ms(self._start_cursor)
        forming: Candle | None = None
        while not self._closed.is_set():
            now_ms = int(self._clock() * 1000)
            first_open = self._first_open(cursor, now_ms)
            behind = max(0, (self._closed_end(now_ms) - first_open) // tf_ms)
            if behind > 1:
                yield from self._announce(
                    "backfilling", f"backfilling {behind} bars from {self.exchange_id}"
                )
            rows = yield from self._call(
                ccxt,
                exchange,
                lambda since=first_open: exchange.fetch_ohlcv(
                    self.symbol, self.timeframe.label, since=since, limit=self.page_limit
                ),
                "fetching candles",
            )
            if rows is None:
                return
            now_ms = int(self._clock() * 1000)
            candles = [
                c for c in self._validated(rows) if cursor is None or timestamp_ms(c.ts) > cursor
            ]
            closed_end = self._closed_end(now_ms)
            newest: Candle | None = None
            for candle in candles:
                open_ms = timestamp_ms(candle.ts)
                if open_ms < closed_end and newest is None:
                    cursor = open_ms
                    yield FeedEvent("closed", self.symbol, self.timeframe, candle)
                elif newest is None:
                    newest = candle  # the forming bar; any bar after it is ahead of our clock
            if newest is None and candles and timestamp_ms(candles[-1].ts) < closed_end - tf_ms:
                continue  # a page of old bars only: the next page follows at once
            if self._announced != ("live", None):
                yield from self._announce("live", None)
            if newest is not None and newest != forming:
                forming = newest
                yield FeedEvent("forming", self.symbol, self.timeframe, newest)
            due_ms = closed_end + tf_ms + int(self.settle_s * 1000)  # the forming bar closes
            self._sleep(max(min(poll_s, (due_ms - now_ms) / 1000), self._rate_limit_s(exchange)))

    # -- steps ------------------------------------------------------------------------------

    def _announce(self, status: str, note: str | None) -> Iterator[FeedEvent]:
        if self._announced != (status, note):
            self._announced = (status, note)
            yield FeedEvent("status", self.symbol, self.timeframe, None, status=status, note=note)

    def _exchange(self, ccxt: ModuleType) -> Any:
        known = list(getattr(ccxt, "exchanges", []))
        factory = getattr(ccxt, self.exchange_id, None) if self.exchange_id in known else None
        if factory is None:
            close = difflib.get_close_matches(self.exchange_id, known, n=3)
            raise ExchangeFeedError(
                f"{self.where}: ccxt has no exchange {self.exchange_id!r}"
                + (f" (closest: {', '.join(close)})" if close else "")
            )
        exchange = factory({"enableRateLimit": True, **self._config})
        if self._api_urls:
            api = exchange.urls.get("api")
            if not isinstance(api, dict):
                raise ValueError(f"{self.where}: urls['api'] is not a mapping; give a ccxt config")
            api.update(self._api_urls)
        if not exchange.has.get("fetchOHLCV"):
            raise ExchangeFeedError(f"{self.where}: {self.exchange_id} serves no OHLCV candles")
        timeframes = exchange.timeframes or {}
        if self.timeframe.label not in timeframes:
            raise ExchangeFeedError(
                f"{self.where}: {self.exchange_id} has no {self.timeframe.label} candles"
                f" (it has {', '.join(timeframes) or 'none'})"
            )
        return exchange

    def _call(
        self, ccxt: ModuleType, exchange: Any, request: Callable[[], Any], what: str
    ) -> Generator[FeedEvent, None, Any]:
        """``request()``, retried on transient failures (yielding a "retrying" status before
        each wait); None when the feed was closed while waiting."""
        attempt = 0
        failing_since: float | None = None
        while True:
            exchange.last_response_headers = None  # after a failure: set only if it answered
            try:
                return request()
            except ccxt.OperationFailed as exc:  # timeouts, 429/418, 5xx, maintenance, resets
                now = self._clock()
                failing_since = now if failing_since is None else failing_since
                attempt += 1
                reason = _reason(exc)
                if now - failing_since >= self.retry.give_up_after_s:
                    raise ExchangeFeedError(
                        f"{self.where}: {what} failed {attempt} times in"
                        f" {now - failing_since:.0f} s, giving up: {reason}"
                    ) from exc
                wait = self.retry.wait(attempt, self._rng, _retry_after_s(exchange))
                yield from self._announce(
                    "retrying", f"{what}: attempt {attempt} failed, next in {wait:.1f} s: {reason}"
                )
                self._sleep(wait)
                if self._closed.is_set():
                    return None
            except ccxt.BaseError as exc:  # AuthenticationError, BadSymbol, other exchange errors
                raise ExchangeFeedError(f"{self.where}: {what} failed: {_reason(exc)}") from exc

    def _validated(self, rows: list[list[Any]]) -> list[Candle]:
        """The rows as candles, refused (ExchangeFeedError naming the bar) if any is malformed."""
        if not rows:
            return []
        try:
            ts = from_epoch_ms([int(r[0]) for r in rows])
            values = [[_number(x) for x in r[1:6]] for r in rows]
        except (TypeError, ValueError, IndexError, OverflowError) as exc:
            raise ExchangeFeedError(f"{self.where}: malformed OHLCV rows: {exc}") from None
        frame = candles_from_records(
            Candle(t, *v) for t, v in zip(ts, values, strict=True) if len(v) == 5
        )
        if len(frame) != len(rows):
            raise ExchangeFeedError(f"{self.where}: an OHLCV row has fewer than 6 fields")
        checked = check_candles(frame, self.where, timeframe=self.timeframe)
        if checked.errors:
            first = checked.errors[0]
            row = first.row if first.row is not None else 1
            stamp = ts[row - 1].strftime("%Y-%m-%d %H:%M UTC")
            more = len(checked.errors) - 1
            raise ExchangeFeedError(
                f"{self.where}: bad candle at {stamp}: {first.column}: {first.message}"
                + (f" (and {more} more problem(s) in this page)" if more else "")
            )
        return [Candle(t, *v) for t, v in zip(ts, values, strict=True)]

    # -- time -------------------------------------------------------------------------------

    def _closed_end(self, now_ms: int) -> int:
        """Open time (ms) of the first bar that is not closed yet at ``now_ms``."""
        settled = now_ms - int(self.settle_s * 1000)
        return int(self.timeframe.bucket_start_ms(settled))

    def _first_open(self, cursor: int | None, now_ms: int) -> int:
        if cursor is not None:
            return cursor + self.timeframe.millis
        return self._closed_end(now_ms) - self.lookback_bars * self.timeframe.millis

    def _poll_interval(self, exchange: Any) -> float:
        if self.poll_interval_s is not None:
            return max(self.poll_interval_s, self._rate_limit_s(exchange))
        return max(min(self.timeframe.seconds / 12, MAX_POLL_S), self._rate_limit_s(exchange))

    @staticmethod
    def _rate_limit_s(exchange: Any) -> float:
        return float(getattr(exchange, "rateLimit", 0) or 0) / 1000


def _import_ccxt(where: str) -> ModuleType:
    try:
        return importlib.import_module("ccxt")
    except ImportError as exc:  # an optional dependency: only exchange feeds need it
        raise ExchangeFeedError(
            f"{where}: the ccxt package is not installed (pip install -r requirements.txt)"
        ) from exc


def _retry_after_s(exchange: Any) -> float | None:
    """Seconds the exchange asked us to wait (Retry-After), if it answered at all."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare for APIs, the backoff applies
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
