"""The ccxt exchange feed against a local Binance stand-in (tests/market/fake_binance.py):
closed vs forming, backfill after a restart, retries, give-up and clear errors. Time is a
FakeClock shared by the feed and the server, so "now" is exact and no test sleeps."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from market.exchange_feed import ExchangeFeed, ExchangeFeedError, ExchangeRetry
from market.feeds import FeedEvent
from tests.market.fake_binance import (
    BAD_GATEWAY,
    INTERNAL_ERROR,
    INVALID_SYMBOL,
    MINUTE_MS,
    RATE_LIMITED,
    T0_MS,
    FakeBinance,
    FakeClock,
    at,
    bar,
    bar_open,
    market_at_bar_9,
    serve_bars,
)

SYMBOL = "BTC/USDT"


@pytest.fixture
def clock() -> FakeClock:
    return market_at_bar_9()


@pytest.fixture
def binance(clock: FakeClock) -> Iterator[FakeBinance]:
    yield from serve_bars(clock)


def make_feed(binance: FakeBinance, cursor: int | None, **options: object) -> ExchangeFeed:
    start = None if cursor is None else bar_open(cursor)
    return ExchangeFeed(SYMBOL, "1m", "binance", start, **(binance.feed_options() | options))


def until(events: Iterator[FeedEvent], done: Callable[[FeedEvent], bool]) -> list[FeedEvent]:
    """Events up to and including the first for which ``done`` holds."""
    taken = []
    for event in events:
        taken.append(event)
        if done(event):
            return taken
    raise AssertionError(f"the feed ended before the awaited event; got {taken}")


def closed_index(events: list[FeedEvent]) -> list[int]:
    return [
        int((e.candle.ts - bar_open(0)) / pd.Timedelta(minutes=1))
        for e in events
        if e.kind == "closed" and e.candle is not None
    ]


def statuses(events: list[FeedEvent]) -> list[str | None]:
    return [e.status for e in events if e.kind == "status"]


def test_backfills_the_closed_bars_then_shows_the_forming_one(binance: FakeBinance) -> None:
    events = until(make_feed(binance, cursor=2).events(), lambda e: e.kind == "forming")

    assert closed_index(events) == [3, 4, 5, 6, 7, 8]  # after the cursor, up to the forming bar
    forming = events[-1].candle
    assert forming is not None
    assert forming.ts == bar_open(9)
    assert [forming.open, forming.high, forming.low, forming.close, forming.volume] == bar(9)
    assert statuses(events) == ["connecting", "backfilling", "live"]
    backfill = next(e for e in events if e.status == "backfilling")
    assert backfill.note == "backfilling 6 bars from binance"
    assert binance.requests[0]["startTime"] == str(T0_MS + 3 * MINUTE_MS)


def test_each_bar_closes_once_in_order_and_forming_repeats_only_when_changed(
    binance: FakeBinance, clock: FakeClock
) -> None:
    events = make_feed(binance, cursor=8, poll_interval_s=5.0).events()
    until(events, lambda e: e.kind == "forming")  # bar 9, at 9m30s
    binance.bars[T0_MS + 9 * MINUTE_MS] = [109.0, 112.0, 108.0, 111.5, 30.0]  # a trade
    changed = next(events)
    assert changed.kind == "forming"
    assert changed.candle is not None
    assert changed.candle.close == 111.5
    assert changed.candle.ts == bar_open(9)

    later = until(events, lambda e: e.kind == "closed" and e.candle.ts == bar_open(12))  # type: ignore[union-attr]

    assert closed_index(later) == [9, 10, 11, 12]
    assert later[0].candle is not None
    assert later[0].candle.close == 111.5  # the final bar
    # unchanged polls yield nothing: between two closes, one forming event for the new bar
    assert [e.kind for e in later] == ["closed", "forming"] * 3 + ["closed"]
    # it polls every 5 s and wakes when a bar is due to close (1 s settle), never later
    assert max(clock.sleeps) <= 5.0


def test_forming_bar_is_closed_only_after_the_settle_time(
    binance: FakeBinance, clock: FakeClock
) -> None:
    clock.now_s = at(10, 0.5)  # bar 9 ended half a second ago: the exchange may still update it
    events = until(make_feed(binance, cursor=8).events(), lambda e: e.kind == "forming")
    assert closed_index(events) == []
    assert events[-1].candle is not None
    assert events[-1].candle.ts == bar_open(9)


def test_restart_backfills_the_missed_bars_with_no_gap_and_no_duplicate(
    binance: FakeBinance, clock: FakeClock
) -> None:
    first = make_feed(binance, cursor=None, lookback_bars=5).events()
    seen = until(first, lambda e: e.kind == "forming")
    first.close()  # the process stops
    assert closed_index(seen) == [4, 5, 6, 7, 8]  # the lookback: 5 bars before the forming one

    clock.now_s = at(57, 10)  # 48 minutes later
    binance.requests.clear()
    again = make_feed(binance, cursor=closed_index(seen)[-1], page_limit=7).events()
    caught_up = until(again, lambda e: e.kind == "forming")

    closed = closed_index(seen) + closed_index(caught_up)
    assert closed == list(range(4, 57))  # consecutive: no gap, no duplicate
    assert caught_up[-1].candle is not None
    assert caught_up[-1].candle.ts == bar_open(57)
    starts = [int(q["startTime"]) for q in binance.requests]
    assert starts == [T0_MS + i * MINUTE_MS for i in range(9, 58, 7)]  # page after page
    assert all(q["limit"] == "7" for q in binance.requests)
    notes = [e.note for e in caught_up if e.status == "backfilling"]
    assert notes[0] == "backfilling 48 bars from binance"
    assert notes[-1] == "backfilling 6 bars from binance"


def test_rate_limit_and_server_errors_are_retried_with_backoff(
    binance: FakeBinance, clock: FakeClock
) -> None:
    binance.faults.extend([RATE_LIMITED, INTERNAL_ERROR])
    retry = ExchangeRetry(first_wait_s=1.0, max_wait_s=60.0)
    events = until(
        make_feed(binance, cursor=7, retry=retry).events(), lambda e: e.kind == "forming"
    )

    retrying = [e for e in events if e.status == "retrying"]
    assert len(retrying) == 2
    assert retrying[0].note is not None
    assert retrying[1].note is not None
    assert retrying[0].note.startswith("fetching candles: attempt 1 failed, next in 30.0 s:")
    assert "DDoSProtection" in retrying[0].note
    assert "429" in retrying[0].note
    assert "attempt 2 failed" in retrying[1].note
    assert "OperationFailed" in retrying[1].note
    assert clock.sleeps[0] == 30.0  # Retry-After: 30 is honoured over the 0.5-1 s backoff
    assert 1.0 <= clock.sleeps[1] <= 2.0  # the second backoff step, with jitter
    assert statuses(events)[-1] == "live"
    # the bars that closed while it waited are backfilled too, once each
    assert closed_index(events) == [8, 9]
    assert len(binance.requests) == 3


def test_a_persistent_failure_gives_up_with_an_error_naming_the_feed(
    binance: FakeBinance, clock: FakeClock
) -> None:
    binance.always_fail = BAD_GATEWAY
    retry = ExchangeRetry(first_wait_s=1.0, max_wait_s=8.0, give_up_after_s=60.0)
    events = make_feed(binance, cursor=7, retry=retry).events()
    seen: list[FeedEvent] = []
    with pytest.raises(ExchangeFeedError) as caught:
        seen.extend(events)
    message = str(caught.value)
    assert message.startswith("binance BTC/USDT 1m: fetching candles failed ")
    assert "giving up: ExchangeNotAvailable" in message
    assert "502" in message
    assert statuses(seen)[-1] == "retrying"
    assert 60.0 <= sum(clock.sleeps) < 60.0 + 8.0  # waited the give-up time, then stopped
    assert max(clock.sleeps) <= 8.0


@pytest.mark.parametrize(
    ("symbol", "exchange", "expected"),
    [
        ("ETH/USDT", "binance", "binance ETH/USDT 1m: binance has no market 'ETH/USDT'"),
        ("BTC/USDX", "binance", "(closest: BTC/USDT)"),
        ("BTC/USDT", "binanse", "ccxt has no exchange 'binanse' (closest: binance"),
    ],
)
def test_unknown_symbol_or_exchange_stops_with_a_clear_error(
    binance: FakeBinance, symbol: str, exchange: str, expected: str
) -> None:
    feed = ExchangeFeed(symbol, "1m", exchange, None, **binance.feed_options())
    with pytest.raises(ExchangeFeedError, match=re.escape(expected)):
        list(feed.events())
    assert binance.requests == []  # no candle was asked for


def test_an_exchange_bad_symbol_answer_is_not_retried(binance: FakeBinance) -> None:
    binance.faults.append(INVALID_SYMBOL)  # listed, but the klines endpoint refuses it
    with pytest.raises(ExchangeFeedError) as caught:
        list(make_feed(binance, cursor=7).events())
    assert str(caught.value).startswith("binance BTC/USDT 1m: fetching candles failed: BadSymbol:")
    assert "Invalid symbol" in str(caught.value)
    assert len(binance.requests) == 1


def test_a_malformed_candle_is_an_error_naming_exchange_symbol_and_time(
    binance: FakeBinance,
) -> None:
    binance.bars[T0_MS + 6 * MINUTE_MS] = [106.0, 105.0, 107.0, 106.5, 1.0]  # high < low
    events = make_feed(binance, cursor=3).events()
    with pytest.raises(ExchangeFeedError) as caught:
        list(events)
    message = str(caught.value)
    assert message.startswith("binance BTC/USDT 1m: bad candle at 2024-03-01 00:06 UTC: high:")
    assert "below max(open, close)" in message


def test_close_ends_the_stream_during_a_wait(binance: FakeBinance) -> None:
    feeds: list[ExchangeFeed] = []
    feed = make_feed(binance, cursor=8, sleep=lambda _s: feeds[0].close())  # stopped while waiting
    feeds.append(feed)
    events = list(feed.events())
    assert [e.kind for e in events][-1] == "forming"  # then the generator returned


def test_constructor_refuses_a_malformed_exchange_id() -> None:
    with pytest.raises(ValueError, match="exchange id 'Bin ance' is not a ccxt exchange id"):
        ExchangeFeed(SYMBOL, "1m", "Bin ance", None)


def test_ccxt_is_imported_only_when_an_exchange_feed_starts() -> None:
    probe = (
        "import sys; import services.runtime, market.exchange_feed; print('ccxt' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
