"""StrategyDataIntegrator on real data stored in SQLite and PostgreSQL (and a real Redis):
each indicator computed once, cached per data version, extended exactly, aligned across
timeframes without look-ahead, chunked batches equal to one pass, failures isolated."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sqlalchemy.orm import Session, sessionmaker

from caching import SharedCache
from database.repositories import CandleRepository
from indicators import request
from indicators.registry import get
from market.resample import resample
from market.sample_data import generate_random_walk, load_sample
from market.timeframes import Timeframe
from strategies.data_integration import StrategyDataIntegrator, collect_requests
from strategies.indicator_series import DataVersion, align_to_base

D1, M1 = Timeframe.parse("1d"), Timeframe.parse("1m")
SP500_BARS = 1500  # the last ~6 years: enough for every family, quick to store on PostgreSQL
DEMO_BARS = 3000  # 1m bars: 50 hours


@dataclasses.dataclass(frozen=True)
class Declares:
    """A stand-in strategy: it only declares what it reads."""

    needs: tuple[Any, ...]

    def required_indicators(self) -> Iterable[Any]:
        return self.needs


@dataclasses.dataclass(frozen=True)
class RawRequest:
    """A request the registry does not know (the real one validates its name)."""

    name: str
    timeframe: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}@{self.timeframe or '-'}"


def store(factory: sessionmaker[Session], symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
    with factory.begin() as session:
        CandleRepository(session).upsert(symbol, timeframe, frame)


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    return load_sample("SP500").iloc[-SP500_BARS:]


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    start = pd.Timestamp("2024-01-01 00:00", tz="UTC")
    return generate_random_walk("DEMO", "1m", start, DEMO_BARS, seed=7)


def integrator(factory: sessionmaker[Session], cache: SharedCache | None = None, **kw: Any):
    return StrategyDataIntegrator(factory, cache or SharedCache.from_url(None), **kw)


def expected(frame: pd.DataFrame, req: Any) -> dict[str, np.ndarray]:
    return get(req.name).compute(frame, dict(req.params))


def test_each_distinct_indicator_is_computed_once_for_overlapping_strategies(
    session_factory, sp500
):
    store(session_factory, "SP500", "1d", sp500)
    ema, rsi, macd = request("ema", timeperiod=20), request("rsi"), request("macd")
    trend, swing = Declares((ema, rsi)), Declares((rsi, macd))
    chart = [request("ema", timeframe="1d", timeperiod=20)]  # the chart's own timeframe, spelled
    sdi = integrator(session_factory)

    data = sdi.frame("SP500", "1d", requests=chart, strategies=[trend, swing])

    assert sdi.stats().computations == 3
    assert set(data.values) == {ema.key, rsi.key, macd.key, chart[0].key}
    assert not data.failures
    assert data.version == DataVersion(sp500.index[-1], len(sp500))
    pd.testing.assert_frame_equal(data.candles, sp500, check_freq=False)
    for req in (ema, rsi, macd):
        for output, column in expected(sp500, req).items():
            assert_array_equal(data.values[req.key][output].to_numpy(), column)
    pd.testing.assert_frame_equal(data.values[chart[0].key], data.values[ema.key])


@pytest.mark.parametrize("from_bar", [None, 200])
def test_a_cold_frame_reads_the_bars_once(session_factory, sp500, monkeypatch, from_bar):
    """The window read is the span the indicators are computed on: no second read (a
    1,000,000-bar backtest read its bars twice)."""
    store(session_factory, "SP500", "1d", sp500)
    start = None if from_bar is None else sp500.index[from_bar]
    span = sp500 if from_bar is None else sp500.iloc[from_bar:]
    reads = []
    real = CandleRepository.frame

    def counted(self, *args, **kwargs):  # the real read, counted
        reads.append((args, kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CandleRepository, "frame", counted)
    ema, macd = request("ema", timeperiod=20), request("macd")
    data = integrator(session_factory).frame("SP500", "1d", requests=[ema, macd], start=start)

    assert len(reads) == 1
    assert data.version == DataVersion(sp500.index[-1], len(span))
    pd.testing.assert_frame_equal(data.candles, span, check_freq=False)
    for req in (ema, macd):
        for output, column in expected(span, req).items():
            assert_array_equal(data.values[req.key][output].to_numpy(), column)


def test_collect_requests_keeps_each_key_once_in_order():
    ema, rsi = request("ema", timeperiod=20), request("rsi")
    keys = [r.key for r in collect_requests([Declares((rsi, ema))], [ema])]
    assert keys == [ema.key, rsi.key]


def test_a_repeat_is_a_cache_hit_and_a_shorter_window_is_the_tail(session_factory, sp500):
    store(session_factory, "SP500", "1d", sp500)
    reqs = [request("ema", timeperiod=20), request("macd")]
    sdi = integrator(session_factory)
    full = sdi.frame("SP500", "1d", requests=reqs)

    again = sdi.frame("SP500", "1d", requests=reqs)
    window = sdi.frame("SP500", "1d", requests=reqs, last=100)

    stats = sdi.stats()
    assert (stats.computations, stats.hits, stats.misses) == (2, 4, 2)
    for req in reqs:
        pd.testing.assert_frame_equal(again.values[req.key], full.values[req.key])
        pd.testing.assert_frame_equal(window.values[req.key], full.values[req.key].iloc[-100:])


def test_an_evicted_entry_is_served_by_the_live_state_and_states_are_bounded(
    session_factory, sp500
):
    store(session_factory, "SP500", "1d", sp500)
    cache = SharedCache.from_url(None)
    ema, rsi = request("ema", timeperiod=20), request("rsi")
    sdi = integrator(session_factory, cache, max_live_states=1)
    first = sdi.frame("SP500", "1d", requests=[ema])

    cache.clear()
    again = sdi.frame("SP500", "1d", requests=[ema])
    sdi.frame("SP500", "1d", requests=[rsi])  # evicts the EMA state
    cache.clear()
    sdi.frame("SP500", "1d", requests=[ema])

    stats = sdi.stats()
    assert (stats.reused, stats.computations, stats.live_states) == (1, 3, 1)
    pd.testing.assert_frame_equal(again.values[ema.key], first.values[ema.key])
    table = again.table()
    assert list(table.columns) == [*sp500.columns, ema.column("ema")]
    assert_array_equal(table[ema.column("ema")], first.values[ema.key]["ema"])


def test_a_parameter_change_is_another_entry(session_factory, sp500):
    store(session_factory, "SP500", "1d", sp500)
    sdi = integrator(session_factory)
    twenty = sdi.frame("SP500", "1d", requests=[request("ema", timeperiod=20)])
    key21 = request("ema", timeperiod=21).key

    other = sdi.frame("SP500", "1d", requests=[request("ema", timeperiod=21)])

    assert (sdi.stats().computations, sdi.stats().hits) == (2, 0)
    assert_array_equal(
        other.values[key21]["ema"], expected(sp500, request("ema", timeperiod=21))["ema"]
    )
    assert not np.array_equal(
        other.values[key21]["ema"],
        twenty.values[request("ema", timeperiod=20).key]["ema"],
        equal_nan=True,
    )


FAMILIES = [
    request("sma", timeperiod=30),  # windowed
    request("ema", timeperiod=20),  # recursive
    request("rsi", timeperiod=14),  # recursive (Wilder)
    request("macd"),  # recursive, three outputs
    request("bbands"),  # windowed, three outputs
    request("stoch"),  # windowed over high/low/close
]


def test_new_candles_extend_the_series_exactly(session_factory, sp500):
    held = 6
    store(session_factory, "SP500", "1d", sp500.iloc[:-held])
    sdi = integrator(session_factory)
    sdi.frame("SP500", "1d", requests=FAMILIES, last=250)

    for i in range(held, 0, -1):  # one new candle at a time, as the live feed stores them
        store(session_factory, "SP500", "1d", sp500.iloc[-i:][:1])
        data = sdi.frame("SP500", "1d", requests=FAMILIES, last=250)
        assert data.version.last_ts == sp500.index[-i]

    stats = sdi.stats()
    assert stats.computations == len(FAMILIES)
    assert (stats.extensions, stats.extended_bars) == (held * len(FAMILIES),) * 2
    fresh = integrator(session_factory).frame("SP500", "1d", requests=FAMILIES, last=250)
    for req in FAMILIES:
        for output, column in expected(sp500, req).items():
            assert_array_equal(data.values[req.key][output].to_numpy(), column[-250:])
            assert_array_equal(fresh.values[req.key][output].to_numpy(), column[-250:])


def test_a_backfilled_bar_changes_the_version_and_is_recomputed(session_factory, sp500):
    store(session_factory, "SP500", "1d", sp500.iloc[1:])
    sdi = integrator(session_factory)
    sdi.frame("SP500", "1d", requests=[request("ema", timeperiod=20)])

    store(session_factory, "SP500", "1d", sp500.iloc[:1])  # older than everything stored
    data = sdi.frame("SP500", "1d", requests=[request("ema", timeperiod=20)])

    assert (sdi.stats().computations, sdi.stats().extensions) == (2, 0)
    assert data.version == DataVersion(sp500.index[-1], len(sp500))
    key = request("ema", timeperiod=20).key
    assert_array_equal(
        data.values[key]["ema"], expected(sp500, request("ema", timeperiod=20))["ema"]
    )


def test_align_to_base_shows_a_higher_bar_only_once_it_has_closed():
    hours = np.array([0, 3_600_000], dtype=np.int64)
    minutes = np.array([0, 3_540_000, 3_600_000, 7_140_000], dtype=np.int64)
    values = {"v": np.array([1.0, 2.0])}
    aligned = align_to_base(hours, Timeframe.parse("1h"), values, minutes, M1)["v"]
    assert_array_equal(aligned, [np.nan, 1.0, 1.0, 2.0])


def test_higher_timeframes_are_aligned_without_look_ahead(session_factory, demo):
    store(session_factory, "DEMO", "1m", demo)
    reqs = [request("sma", timeframe="1h", timeperiod=3), request("rsi", timeframe="15m")]
    sdi = integrator(session_factory)
    full = sdi.frame("DEMO", "1m", requests=reqs)
    assert not full.failures

    hourly = resample(demo, "1m", "1h")
    sma = get("sma").compute(hourly, {"timeperiod": 3})["sma"]
    by_hour = pd.Series(sma, index=hourly.index)
    column = full.values[reqs[0].key]["sma"]
    # 10:30 is inside the 10:00 hour, still forming: it sees the 09:00 hour
    t = pd.Timestamp("2024-01-01 10:30", tz="UTC")
    assert column[t] == by_hour[pd.Timestamp("2024-01-01 09:00", tz="UTC")]
    # 10:59 closes at 11:00, when the 10:00 hour has closed
    t = pd.Timestamp("2024-01-01 10:59", tz="UTC")
    assert column[t] == by_hour[pd.Timestamp("2024-01-01 10:00", tz="UTC")]

    # truncation invariance: cut the data at t (end=, or as_of=), the values up to t stay
    for minutes in (611, 659, 660, 1337, 2999):
        t = demo.index[0] + pd.Timedelta(minutes=minutes)
        cut = sdi.frame("DEMO", "1m", requests=reqs, end=t)
        at = sdi.frame("DEMO", "1m", requests=reqs, as_of=t + M1.delta)
        for req in reqs:
            head = full.values[req.key].loc[:t]
            pd.testing.assert_frame_equal(cut.values[req.key], head)
            pd.testing.assert_frame_equal(at.values[req.key], head)


def test_higher_timeframe_series_extend_exactly_across_bucket_ends(session_factory, demo):
    reqs = [
        request("ema", timeframe="1h", timeperiod=5),
        request("macd", timeframe="15m"),
        request("atr", timeframe="15m"),  # high and low: a bucket must be whole
    ]
    cut = 2900
    store(session_factory, "DEMO", "1m", demo.iloc[:cut])
    sdi = integrator(session_factory)
    sdi.frame("DEMO", "1m", requests=reqs, last=500)
    for stop in (2905, 2940, 2941, 3000):  # several bars at once, across 15m and 1h closes
        store(session_factory, "DEMO", "1m", demo.iloc[cut:stop])
        cut = stop
        data = sdi.frame("DEMO", "1m", requests=reqs, last=500)

    assert (sdi.stats().computations, sdi.stats().extensions) == (3, 12)
    fresh = integrator(session_factory).frame("DEMO", "1m", requests=reqs, last=500)
    for req in reqs:
        pd.testing.assert_frame_equal(data.values[req.key], fresh.values[req.key])


def test_a_chunked_batch_equals_one_pass_for_every_family(session_factory, sp500):
    store(session_factory, "SP500", "1d", sp500)
    weekly = [
        request("ema", timeframe="1w", timeperiod=10),
        request("rsi", timeframe="1w"),
        request("atr", timeframe="1w"),  # high and low: a week split by a chunk must be whole
    ]
    reqs = [*FAMILIES, request("atr"), *weekly]
    sdi = integrator(session_factory)
    one_pass = sdi.frame("SP500", "1d", requests=reqs)

    for chunk_bars in (97, 500):
        batch = sdi.batch("SP500", "1d", reqs, chunk_bars=chunk_bars)
        assert not batch.failures
        assert len(batch.candles) == len(sp500)
        for req in reqs:
            pd.testing.assert_frame_equal(batch.values[req.key], one_pass.values[req.key])
    for req in (*FAMILIES, request("atr")):
        for output, column in expected(sp500, req).items():
            assert_array_equal(one_pass.values[req.key][output].to_numpy(), column)


def test_a_failing_indicator_is_reported_and_the_others_are_computed(session_factory, sp500):
    store(session_factory, "SP500", "1d", sp500)

    def specs(name: str) -> Any:
        if name != "boom":
            return get(name)

        def explode(arrays: Any, params: Any) -> Any:
            raise RuntimeError("the feed sent garbage")

        return dataclasses.replace(get("sma"), name="boom", open_fn=explode, compute_fn=explode)

    ema = request("ema", timeperiod=20)
    too_long = request("sma", timeperiod=200)
    wrong_tf = request("sma", timeframe="1h")
    boom = RawRequest("boom")
    unknown = RawRequest("nosuch")
    start = sp500.index[-150]
    sdi = integrator(session_factory, specs=specs)

    data = sdi.frame("SP500", "1d", requests=[boom, ema, too_long, wrong_tf, unknown], start=start)
    batch = sdi.batch("SP500", "1d", [boom, ema, too_long, wrong_tf, unknown], start=start)

    for result in (data, batch):
        assert set(result.values) == {ema.key}
        assert result.failures[boom.key] == "RuntimeError: the feed sent garbage"
        assert "needs at least 200 complete 1d bars" in result.failures[too_long.key]
        assert "got 150" in result.failures[too_long.key]
        assert "cannot resample 1d bars to 1h" in result.failures[wrong_tf.key]
        assert "nosuch" in result.failures[unknown.key]
        assert_array_equal(result.values[ema.key]["ema"], expected(sp500.iloc[-150:], ema)["ema"])
    assert sdi.stats().failures == 8


def test_an_empty_window_reports_every_request(session_factory):
    data = integrator(session_factory).frame("NONE", "1d", requests=[request("rsi")])
    assert data.candles.empty
    assert "no 1d candles of NONE" in data.failures[request("rsi").key]


@pytest.mark.redis
def test_the_redis_cache_is_shared_between_two_processes(
    session_factory, sp500, redis_url, cache_prefix
):
    store(session_factory, "SP500", "1d", sp500.iloc[:-1])
    reqs = [request("ema", timeperiod=20), request("rsi", timeframe="1w")]
    caches = [SharedCache.from_url(redis_url, key_prefix=cache_prefix) for _ in range(2)]
    one, two = (integrator(session_factory, cache) for cache in caches)
    try:
        first = one.frame("SP500", "1d", requests=reqs, last=300)
        shared = two.frame("SP500", "1d", requests=reqs, last=300)
        assert (two.stats().hits, two.stats().computations) == (2, 0)
        for req in reqs:
            pd.testing.assert_frame_equal(shared.values[req.key], first.values[req.key])

        store(session_factory, "SP500", "1d", sp500.iloc[-1:])
        # the second process has no live state: it recomputes; the first one finds its result
        newer = two.frame("SP500", "1d", requests=reqs, last=300)
        again = one.frame("SP500", "1d", requests=reqs, last=300)
        assert (two.stats().computations, one.stats().hits, one.stats().extensions) == (2, 2, 0)
        fresh = integrator(session_factory).frame("SP500", "1d", requests=reqs, last=300)
        for req in reqs:
            pd.testing.assert_frame_equal(newer.values[req.key], fresh.values[req.key])
            pd.testing.assert_frame_equal(again.values[req.key], fresh.values[req.key])
        assert one.stats().cache_backend == "redis"
    finally:
        caches[0].clear()
        for cache in caches:
            cache.close()
