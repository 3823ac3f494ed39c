"""StrategyDataIntegrator: the candles and indicator values a chart or a set of strategies needs.

>>> integrator = StrategyDataIntegrator(session_factory, SharedCache.from_url(None))
>>> data = integrator.frame("SP500", "1d", strategies=[trend, mean_reversion], last=500)
>>> data.values[request("ema", timeperiod=20).key]["ema"]       # aligned to data.candles
>>> data.failures                                               # {request key: why}
>>> integrator.stats()                                          # hits, misses, computations ...

What a value means: the indicator in one pass over the stored bars from ``start`` (the series'
first bar when None). A bar's value depends only on the bars from ``start`` up to it, never on
``end``, ``last`` or later bars, so a chart's window slides without changing the past, and
``batch`` (chunked) gives the same numbers. The window (``start``, ``end``, ``last``) is always
the tail of that span; a miss therefore reads the whole span (from the series' first bar when
``start`` is None), a hit or an extension reads only the window and the new bars.

Not covered by the version: a stored bar rewritten in place (same time, other prices) keeps
the key; the feeds only append, and ``forget()`` plus a cache clear handles a correction.

Every distinct (indicator, parameters, timeframe) is computed once per data version
(:class:`DataVersion`: the span's last bar and bar count) and cached under a key holding the
symbol, timeframe, span start, canonical request key and version; a new or backfilled candle or
another parameter is another key. On a miss, a live incremental state kept in this process
(TA-Lib stream handles cannot be pickled, so states never go to Redis) extends the previous
series bar by bar; without one (another process, a backfill) the span is recomputed.

Higher timeframes are resampled from the base bars (complete buckets only) and aligned without
look-ahead: a base bar closing at T sees the last higher bar whose end is <= T.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from caching import SharedCache
from database.repositories import CandleRepository
from indicators import registry
from market.resample import check_resample_pair
from market.timeframes import Timeframe, timestamp_ms, to_epoch_ms
from strategies.indicator_series import (
    DataVersion,
    IndicatorFailure,
    IndicatorRun,
    IndicatorSeries,
    long_enough,
    version_of,
)

CACHE_VERSION = "sdi1"  # bump when the cached layout changes: old entries are never read
DEFAULT_CHUNK_BARS = 5_000
_MS = pd.Timedelta(milliseconds=1)


class RequestLike(Protocol):
    """What the integrator reads of a request: ``indicators.request("rsi", timeframe="1h")``."""

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> Any: ...  # canonical: a mapping or (name, value) pairs

    @property
    def timeframe(self) -> str | None: ...

    @property
    def key(self) -> str: ...


class StrategyLike(Protocol):
    """Anything that declares the indicators it reads (strategies, in the next issue)."""

    def required_indicators(self) -> Iterable[RequestLike]: ...


@dataclass(frozen=True)
class IntegratedData:
    """Candles of the window and, per request key, a frame of its outputs on the same index.

    ``failures`` names each request that could not be computed and why; the others are there.
    """

    symbol: str
    timeframe: Timeframe
    candles: pd.DataFrame
    values: Mapping[str, pd.DataFrame]
    failures: Mapping[str, str]
    version: DataVersion

    def table(self) -> pd.DataFrame:
        """Candles plus one column per output, named ``f"{request key}:{output}"``.

        >>> data.table()["rsi(timeperiod=14):rsi"]
        """
        columns = [
            frame.rename(columns=lambda output, key=key: f"{key}:{output}")
            for key, frame in self.values.items()
        ]
        return pd.concat([self.candles, *columns], axis=1)


@dataclass(frozen=True)
class IntegratorStats:
    """Counters since the integrator was created (the debug view shows them)."""

    cache_backend: str
    hits: int  # served from the shared cache
    misses: int  # not in the shared cache
    computations: int  # full passes over a span
    extensions: int  # previous series extended by new bars
    extended_bars: int  # bars fed to live states by those extensions
    reused: int  # a live state already at the wanted version (cache entry evicted)
    failures: int
    live_states: int


def collect_requests(
    strategies: Iterable[StrategyLike] = (), requests: Iterable[RequestLike] = ()
) -> list[RequestLike]:
    """The union of explicit requests and those the strategies declare, once each, in order.

    >>> [r.key for r in collect_requests([Declares([request("rsi")])], [request("rsi")])]
    ['rsi(timeperiod=14)']
    """
    seen: dict[str, RequestLike] = {}
    for item in requests:
        seen.setdefault(item.key, item)
    for strategy in strategies:
        for item in strategy.required_indicators():
            seen.setdefault(item.key, item)
    return list(seen.values())


class StrategyDataIntegrator:
    """Loads candles, computes each needed indicator once, caches and extends the results.

    >>> integrator = StrategyDataIntegrator(session_factory, SharedCache.from_url(redis_url))
    >>> data = integrator.frame("DEMO", "1m", requests=[request("rsi", timeframe="1h")])

    ``specs`` looks an indicator name up (``indicators.registry.get`` by default); tests pass
    their own. At most ``max_live_states`` incremental states are kept (least recently used
    go first; their series are recomputed when asked again). Thread-safe: Dash serves requests
    on several threads.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        cache: SharedCache | None = None,
        *,
        specs: Callable[[str], Any] | None = None,
        max_live_states: int = 512,
    ) -> None:
        self._sessions = session_factory
        self._cache = cache if cache is not None else SharedCache.from_url(None)
        self._specs = specs
        self._max_live_states = max_live_states
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, ...], IndicatorRun] = {}
        self._slot_locks: dict[tuple[str, ...], threading.Lock] = {}
        self._counts = dict.fromkeys(
            ("hits", "misses", "computations", "extensions", "extended_bars", "reused", "failures"),
            0,
        )

    # -- public ----------------------------------------------------------------------------
    def frame(
        self,
        symbol: str,
        timeframe: str | Timeframe,
        *,
        requests: Iterable[RequestLike] = (),
        strategies: Iterable[StrategyLike] = (),
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        last: int | None = None,
        as_of: pd.Timestamp | None = None,
    ) -> IntegratedData:
        """The window's candles with every requested indicator aligned to them.

        ``start``/``end`` bound the bars by open time, ``last`` keeps the newest N, ``as_of``
        keeps only the bars closed by then (a point-in-time view). Values come from one pass
        from ``start`` (see the module docstring), so ``last`` never changes them.
        """
        base = Timeframe.parse(timeframe)
        wanted = collect_requests(strategies, requests)
        end = _closed_by(end, as_of, base)
        with self._sessions() as session:
            repo = CandleRepository(session)
            candles = repo.frame(symbol, base.label, start=start, end=end, last=last)
            if candles.empty:
                version = DataVersion(None, 0)
            elif last is None:  # the window is the whole span: its bars are the count
                version = DataVersion(candles.index[-1], len(candles))
            else:
                # bounded by the window's last bar: a candle stored meanwhile cannot skew it
                count = repo.count(symbol, base.label, start=start, end=candles.index[-1])
                version = DataVersion(candles.index[-1], count)

        values: dict[str, pd.DataFrame] = {}
        failures: dict[str, str] = {}
        done: dict[str, pd.DataFrame] = {}
        # the window read is the span when no `last` cut it: a miss computes on it, unread
        load = self._loader(
            symbol, base, version.last_ts, None if last is not None else (start, candles)
        )
        for item in wanted:
            slot = self._slot(symbol, base, start, item)
            if slot[-1] in done:  # the same computation under another key (timeframe=None/base)
                values[item.key] = done[slot[-1]]
                continue
            try:
                if candles.empty:
                    raise IndicatorFailure(f"no {base} candles of {symbol} in this window")
                series = self._series(item, base, start, slot, version, load)
            except Exception as exc:  # one failing indicator must not hide the others
                failures[item.key] = _describe(exc)
                self._count("failures")
                continue
            tail = len(candles)
            done[slot[-1]] = values[item.key] = pd.DataFrame(
                {o: column[-tail:] for o, column in series.values.items()}, index=candles.index
            )
        return IntegratedData(symbol, base, candles, values, failures, version)

    def batch(
        self,
        symbol: str,
        timeframe: str | Timeframe,
        requests: Iterable[RequestLike] = (),
        *,
        strategies: Iterable[StrategyLike] = (),
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        chunk_bars: int = DEFAULT_CHUNK_BARS,
    ) -> IntegratedData:
        """A long history in chunks of about ``chunk_bars`` bars (by time), equal to one pass.

        >>> integrator.batch("SP500", "1d", [request("ema", timeperiod=50)], chunk_bars=1000)

        Each request's incremental state is carried from chunk to chunk (recursive indicators
        such as EMA, RSI, ATR or MACD remember the whole history, so no fixed overlap would be
        exact). Base bars of a higher bucket still forming at a chunk's end are kept as overlap
        for the next chunk. Bypasses the cache and the live states.
        """
        if chunk_bars < 1:
            raise ValueError(f"chunk_bars={chunk_bars!r} is invalid: expected an integer >= 1")
        base = Timeframe.parse(timeframe)
        wanted = collect_requests(strategies, requests)
        runs: dict[str, IndicatorRun] = {}
        pending: dict[str, list[pd.DataFrame]] = {item.key: [] for item in wanted}
        failures: dict[str, str] = {}
        prepared: dict[str, tuple[Any, dict[str, Any], Timeframe | None]] = {}
        for item in wanted:
            try:
                prepared[item.key] = self._prepare(item, base)
            except Exception as exc:
                failures[item.key] = _describe(exc)
        chunks: list[pd.DataFrame] = []
        tails: dict[str, pd.DataFrame] = {}  # base bars of a higher bucket still forming
        for chunk in self._chunks(symbol, base, start, end, chunk_bars):
            chunks.append(chunk)
            for key, (spec, params, higher) in prepared.items():
                if key in failures:
                    continue
                try:
                    run = runs.get(key)
                    if run is None:
                        pending[key].append(chunk)
                        span = pd.concat(pending[key])
                        if not long_enough(spec, params, span, base, higher):
                            continue
                        run = runs[key] = IndicatorRun.open(spec, params, base, higher, span)
                        pending[key] = []
                        self._count("computations")
                    else:
                        frame = pd.concat([tails[key], chunk]) if key in tails else chunk
                        self._count("extended_bars", run.extend(frame))
                        self._count("extensions")
                        span = frame
                    if higher is not None:
                        tails[key] = span[span.index >= run.needs_from()]
                except Exception as exc:
                    failures[key] = _describe(exc)
        candles = pd.concat(chunks) if chunks else self._window(symbol, base, start, end)
        version = version_of(candles)
        values: dict[str, pd.DataFrame] = {}
        for item in wanted:
            if item.key in failures:
                continue
            run = runs.get(item.key)
            if run is None:
                spec, params, higher = prepared[item.key]
                try:
                    if candles.empty:
                        raise IndicatorFailure(f"no {base} candles of {symbol} in this window")
                    IndicatorRun.open(spec, params, base, higher, candles)
                except Exception as exc:  # the too-short message, with the real numbers
                    failures[item.key] = _describe(exc)
                continue
            values[item.key] = pd.DataFrame(run.series.values, index=candles.index)
        self._count("failures", len(failures))
        return IntegratedData(symbol, base, candles, values, failures, version)

    def stats(self) -> IntegratorStats:
        with self._lock:
            return IntegratorStats(
                cache_backend=self._cache.stats().backend,
                live_states=len(self._runs),
                **self._counts,
            )

    def forget(self, symbol: str | None = None) -> None:
        """Drop the live states (of one symbol): the next request recomputes them."""
        with self._lock:
            for slot in [s for s in self._runs if symbol is None or s[0] == symbol]:
                del self._runs[slot]

    # -- internals -------------------------------------------------------------------------
    def _series(
        self,
        item: RequestLike,
        base: Timeframe,
        start: pd.Timestamp | None,
        slot: tuple[str, ...],
        version: DataVersion,
        load: Callable[[pd.Timestamp | None], pd.DataFrame],
    ) -> IndicatorSeries:
        key = ":".join((CACHE_VERSION, *slot, version.token))
        cached = self._cache.get(key)
        if isinstance(cached, IndicatorSeries) and cached.version == version:
            self._count("hits")
            return cached
        self._count("misses")
        with self._slot_lock(slot):
            series = self._live_or_compute(item, base, start, slot, version, load)
        self._cache.set(key, series)
        return series

    def _live_or_compute(
        self,
        item: RequestLike,
        base: Timeframe,
        start: pd.Timestamp | None,
        slot: tuple[str, ...],
        version: DataVersion,
        load: Callable[[pd.Timestamp | None], pd.DataFrame],
    ) -> IndicatorSeries:
        with self._lock:
            run = self._runs.get(slot)
            if run is not None:  # most recently used last: the first one is evicted
                self._runs[slot] = self._runs.pop(slot)
        assert version.last_ts is not None
        if run is not None:
            have = run.series.version
            assert have.last_ts is not None
            if have == version:
                self._count("reused")
                return run.series
            if have.last_ts < version.last_ts:
                frame = load(run.needs_from())
                added = int((frame.index > have.last_ts).sum())
                # any other count means bars were inserted before the state's last bar
                if have.count + added == version.count:
                    try:
                        self._count("extended_bars", run.extend(frame))
                        self._count("extensions")
                        return run.series
                    except Exception:  # a half-fed state is lost: recompute below
                        with self._lock:
                            self._runs.pop(slot, None)
        spec, params, higher = self._prepare(item, base)
        run = IndicatorRun.open(spec, params, base, higher, load(start))
        self._count("computations")
        with self._lock:
            current = self._runs.get(slot)
            newest = current.series.version.last_ts if current is not None else None
            if newest is None or newest <= version.last_ts:
                self._runs.pop(slot, None)
                self._runs[slot] = run
                while len(self._runs) > self._max_live_states:
                    evicted = next(iter(self._runs))
                    del self._runs[evicted]
                    self._slot_locks.pop(evicted, None)
        return run.series

    def _loader(
        self,
        symbol: str,
        base: Timeframe,
        end: pd.Timestamp | None,
        seed: tuple[pd.Timestamp | None, pd.DataFrame] | None = None,
    ) -> Callable[[pd.Timestamp | None], pd.DataFrame]:
        """Bars from a start up to ``end``, read once per frame() call: a later start is a
        slice of a frame already read (every request shares the span and the new bars).
        ``seed``: (start, the bars from it up to ``end``) already read."""
        read: list[tuple[int | None, pd.DataFrame]] = []
        if seed is not None and not seed[1].empty:
            read.append((None if seed[0] is None else timestamp_ms(seed[0]), seed[1]))

        def load(start: pd.Timestamp | None) -> pd.DataFrame:
            wanted = None if start is None else timestamp_ms(start)
            for first, frame in read:
                if first is None or (wanted is not None and first <= wanted):
                    return frame if wanted is None else frame[to_epoch_ms(frame.index) >= wanted]
            frame = self._window(symbol, base, start, end)
            read.append((wanted, frame))
            return frame

        return load

    def _prepare(
        self, item: RequestLike, base: Timeframe
    ) -> tuple[Any, dict[str, Any], Timeframe | None]:
        spec = self._lookup(item.name)
        params = spec.validate(_params_dict(item.params))
        higher = _higher(item, base)
        return spec, params, higher

    def _lookup(self, name: str) -> Any:
        if self._specs is not None:
            return self._specs(name)
        return registry.get(name)

    def _slot(
        self, symbol: str, base: Timeframe, start: pd.Timestamp | None, item: RequestLike
    ) -> tuple[str, ...]:
        anchor = "-" if start is None else str(timestamp_ms(start))
        tf = base.label if item.timeframe in (None, base.label) else str(item.timeframe)
        params = ",".join(f"{k}={v!r}" for k, v in sorted(_params_dict(item.params).items()))
        return (symbol, base.label, anchor, f"{item.name}({params})@{tf}")

    def _slot_lock(self, slot: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            return self._slot_locks.setdefault(slot, threading.Lock())

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _window(
        self, symbol: str, base: Timeframe, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> pd.DataFrame:
        """The stored bars of one series from ``start`` to ``end`` (open times), in a session
        of their own."""
        with self._sessions() as session:
            return CandleRepository(session).frame(symbol, base.label, start=start, end=end)

    def _chunks(
        self,
        symbol: str,
        base: Timeframe,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        chunk_bars: int,
    ) -> Iterable[pd.DataFrame]:
        """Consecutive frames of at most ``chunk_bars`` bars' worth of time, oldest first."""
        with self._sessions() as session:
            repo = CandleRepository(session)
            info = next(
                (s for s in repo.series() if s.symbol == symbol and s.timeframe == base.label),
                None,
            )
        if info is None:
            return
        lower = info.first if start is None else max(pd.Timestamp(start), info.first)
        upper = info.last if end is None else min(pd.Timestamp(end), info.last)
        step = base.delta * chunk_bars
        while lower <= upper:
            bound = min(lower + step - _MS, upper)
            chunk = self._window(symbol, base, lower, bound)
            if not chunk.empty:
                yield chunk
            lower = bound + _MS


def _higher(item: RequestLike, base: Timeframe) -> Timeframe | None:
    if item.timeframe is None:
        return None
    target = Timeframe.parse(item.timeframe)
    if target == base:
        return None
    check_resample_pair(base, target)
    return target


def _closed_by(
    end: pd.Timestamp | None, as_of: pd.Timestamp | None, base: Timeframe
) -> pd.Timestamp | None:
    """The last open time a window may hold: bars must have closed by ``as_of``."""
    if as_of is None:
        return end
    latest = pd.Timestamp(as_of) - base.delta
    return latest if end is None else min(pd.Timestamp(end), latest)


def _params_dict(params: Any) -> dict[str, Any]:
    return dict(params.items() if isinstance(params, Mapping) else params)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "IntegratedData",
    "IntegratorStats",
    "RequestLike",
    "StrategyDataIntegrator",
    "StrategyLike",
    "collect_requests",
]
