"""What the charts ask for: a window of bars, and what changed since the last bar they hold.

Higher timeframes are resampled on the fly from the stored base timeframe. Only bars whose
bucket has ended are "closed"; the rest of the current bucket, plus the feed's forming candle,
make the forming bar. Windows are cached under (symbol, timeframe, bars, cursor).

The catalogue of stored series (:meth:`MarketDataService.series`: bar counts and spans) is one
aggregate over every stored bar (0.5 s at two million bars): it is read again only when a
series changed since (the data versions of ``candle_series_versions``, a few rows, differ:
every write of bars through the repository replaces its series' token, a deleted series loses
its row) or when the last read is :data:`CATALOGUE_TTL_S` seconds old (a change made behind
the repository shows that much later at most). Live feeds write every second, so what every
page load asks never goes through it: ``symbols`` reads the tokens themselves and ``span``
two lookups in the candles' key.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from caching import SharedCache
from database.models import CandleSeriesVersion as SeriesVersion
from database.records import SeriesInfo
from database.repositories import CandleRepository
from market.candles import CANDLE_COLUMNS, Candle, candles_from_records, empty_candles
from market.resample import resample
from market.timeframes import SUPPORTED, Timeframe, timestamp_ms
from services.live import LiveMarket, StreamState

CATALOGUE_TTL_S = 30.0  # the catalogue is read again at least this often


class UnknownSeriesError(LookupError):
    """Asked for a symbol or timeframe that is not stored or cannot be derived."""


@dataclass(frozen=True)
class ChartData:
    """A full chart window: closed bars (oldest first) and the forming bar, if any."""

    symbol: str
    timeframe: Timeframe
    closed: pd.DataFrame
    forming: Candle | None
    state: StreamState


@dataclass(frozen=True)
class ChartDelta:
    """The bars closed after the client's last one, the forming bar, or a reset order.
    ``records``: the same closed bars as the feed's records, when they came from memory (a
    live track takes them without a frame in between); None when they were read or
    resampled."""

    frame: pd.DataFrame | None  # None: made from ``records`` when first asked for
    forming: Candle | None
    state: StreamState
    reset: bool  # the series went back in time (a replay restarted): rebuild the chart
    records: tuple[Candle, ...] | None = None

    @property
    def closed(self) -> pd.DataFrame:
        """The closed bars as a candle frame."""
        if self.frame is None:
            object.__setattr__(self, "frame", candles_from_records(self.records or ()))
        return self.frame  # type: ignore[return-value]


class MarketDataService:
    def __init__(
        self, session_factory: sessionmaker[Session], market: LiveMarket, cache: SharedCache
    ) -> None:
        self._sessions = session_factory
        self._market = market
        self._cache = cache
        self._catalogue: tuple[float, tuple, list[SeriesInfo]] | None = None
        self._catalogue_lock = threading.Lock()

    # -- catalogue -----------------------------------------------------------------------
    def series(self) -> list[SeriesInfo]:
        """Every stored series (:meth:`CandleRepository.series`): the last read while no bar
        was added since and it is younger than :data:`CATALOGUE_TTL_S` (see the module
        docstring); one read for concurrent askers."""
        with self._catalogue_lock, self._sessions() as session:
            # every write of a series' bars replaces its token: the tokens of all series, a
            # few rows, say whether anything was added since the last read
            version = tuple(
                session.execute(
                    select(
                        SeriesVersion.symbol, SeriesVersion.timeframe, SeriesVersion.version
                    ).order_by(SeriesVersion.symbol, SeriesVersion.timeframe)
                ).all()
            )
            if self._catalogue is not None:
                read_at, read_version, series = self._catalogue
                if read_version == version and time.monotonic() - read_at < CATALOGUE_TTL_S:
                    return list(series)
            series = CandleRepository(session).series()
            self._catalogue = (time.monotonic(), version, series)
            return list(series)

    def symbols(self) -> list[str]:
        """The symbols with stored bars, from the series tokens (one row per stored series,
        written with its bars and deleted with them): the pages ask on every load, and the
        catalogue's bar counts take a scan of every bar (~0.3-0.8 s at 2,000,000 bars on
        SQLite) that the live feeds make stale every second."""
        with self._sessions() as session:
            return sorted(set(session.scalars(select(SeriesVersion.symbol)).all()))

    def span(self, symbol: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last bar of the symbol's finest stored series (None: nothing stored)."""
        with self._sessions() as session:
            stored = session.scalars(
                select(SeriesVersion.timeframe).where(SeriesVersion.symbol == symbol)
            ).all()
            if not stored:
                return None
            finest = min(stored, key=lambda tf: Timeframe.parse(tf).seconds)
            return CandleRepository(session).span(symbol, finest)

    def timeframes(self, symbol: str) -> list[str]:
        """The stored base timeframe of `symbol` and every timeframe resampled from it."""
        base = self._state(symbol).timeframe
        return [
            tf for tf in SUPPORTED if tf == base.label or base.can_resample_to(Timeframe.parse(tf))
        ]

    def state(self, symbol: str) -> StreamState:
        return self._state(symbol)

    # -- chart data ----------------------------------------------------------------------
    def window(self, symbol: str, timeframe: str | Timeframe, bars: int) -> ChartData:
        """The last `bars` closed bars of `timeframe` up to the cursor, and the forming bar."""
        state = self._state(symbol)
        tf = self._check_timeframe(state, timeframe)
        key = f"window:{symbol}:{tf.label}:{bars}:{_ms(state.cursor)}"
        cached = self._cache.get(key)
        if cached is None:
            cached = self._closed_window(state, tf, bars)
            self._cache.set(key, cached)
        closed, forming = _with_live_candle(*cached, state.forming, tf)
        return ChartData(symbol, tf, closed.iloc[-bars:], forming, state)

    def delta(
        self, symbol: str, timeframe: str | Timeframe, since: pd.Timestamp | None
    ) -> ChartDelta:
        """Bars closed after `since` (the client's last closed bar) and the forming bar."""
        state = self._state(symbol)
        tf = self._check_timeframe(state, timeframe)
        if since is None or state.cursor is None or state.cursor < since:
            return ChartDelta(empty_candles(), None, state, reset=True)
        if state.timeframe == tf and state.cursor < since + tf.delta:
            # nothing stored after the client's last bar: only the forming bar moved
            closed, forming = _with_live_candle(empty_candles(), None, state.forming, tf)
            return ChartDelta(closed, forming, state, reset=False)
        if state.timeframe == tf and state.recent and state.recent[0].ts <= since:
            # every bar closed after `since` came through the feed since the oldest one held
            # in memory (each was stored before it got there): no query needed
            newer = tuple(c for c in state.recent if c.ts > since)
            live = state.forming
            forming = None if live is None else _in_bucket(live, _bucket_of(live.ts, tf))
            return ChartDelta(None, forming, state, reset=False, records=newer)
        with self._sessions() as session:
            # the first bucket the client does not hold as closed
            rows = CandleRepository(session).frame(
                symbol, state.timeframe.label, start=since + tf.delta, end=state.cursor
            )
        closed, forming = _with_live_candle(*_split(rows, state.timeframe, tf), state.forming, tf)
        return ChartDelta(closed, forming, state, reset=False)

    # -- internals -----------------------------------------------------------------------
    def _state(self, symbol: str) -> StreamState:
        state = self._market.get(symbol)
        if state is None:
            known = ", ".join(s.symbol for s in self._market.all()) or "none"
            raise UnknownSeriesError(f"unknown symbol {symbol!r}: known symbols are {known}")
        return state

    def _check_timeframe(self, state: StreamState, timeframe: str | Timeframe) -> Timeframe:
        tf = Timeframe.parse(timeframe)
        if tf != state.timeframe and not state.timeframe.can_resample_to(tf):
            raise UnknownSeriesError(
                f"{state.symbol} is stored in {state.timeframe.label} and cannot be shown in "
                f"{tf.label}: choose one of {', '.join(self.timeframes(state.symbol))}"
            )
        return tf

    def _closed_window(
        self, state: StreamState, tf: Timeframe, bars: int
    ) -> tuple[pd.DataFrame, Candle | None]:
        if state.cursor is None:
            return empty_candles(), None
        base = state.timeframe
        limit = (bars + 1) * (tf.seconds // base.seconds)
        with self._sessions() as session:
            rows = CandleRepository(session).frame(
                state.symbol, base.label, end=state.cursor, last=limit
            )
        closed, partial = _split(rows, base, tf)
        if tf != base and len(rows) == limit and len(closed):
            closed = closed.iloc[1:]  # the oldest bucket may have been cut by the row limit
        return closed, partial


def _split(
    rows: pd.DataFrame, base: Timeframe, tf: Timeframe
) -> tuple[pd.DataFrame, Candle | None]:
    """Closed `tf` bars from base rows, and the partial last bucket (time has not reached its end).

    Completeness is judged on the data alone (as of the close of the last base row), so the
    result can be cached under the cursor; `_with_live_candle` then applies the live feed.
    """
    if tf == base or rows.empty:
        return rows, None
    bars = resample(rows, base, tf, include_forming=True, as_of=rows.index[-1] + base.delta)
    if bars.index[-1] + tf.delta <= rows.index[-1] + base.delta:
        return bars, None
    return bars.iloc[:-1], _candle(bars, -1)


def _with_live_candle(
    closed: pd.DataFrame, partial: Candle | None, live: Candle | None, tf: Timeframe
) -> tuple[pd.DataFrame, Candle | None]:
    """Merge the feed's forming candle into the partial bucket; a live candle in a later
    bucket proves the partial bucket's time is over, so it becomes a closed bar."""
    if live is None:
        return closed, partial
    bucket = _bucket_of(live.ts, tf)
    if partial is not None and partial.ts != bucket:
        closed = (
            pd.concat([closed, candles_from_records([partial])])
            if len(closed)
            else (candles_from_records([partial]))
        )
        partial = None
    if partial is None:
        return closed, _in_bucket(live, bucket)
    return closed, Candle(
        bucket,
        partial.open,
        max(partial.high, live.high),
        min(partial.low, live.low),
        live.close,
        partial.volume + live.volume,
    )


def _in_bucket(live: Candle, bucket: pd.Timestamp) -> Candle:
    """The feed's forming candle as the forming bar of the bucket starting at ``bucket``."""
    return Candle(bucket, live.open, live.high, live.low, live.close, live.volume)


def _bucket_of(ts: pd.Timestamp, tf: Timeframe) -> pd.Timestamp:
    start_ms = int(tf.bucket_start_ms(timestamp_ms(ts)))
    return pd.Timestamp(start_ms, unit="ms", tz="UTC")


def _candle(frame: pd.DataFrame, i: int) -> Candle:
    row = frame.iloc[i]
    return Candle(frame.index[i], *(float(row[c]) for c in CANDLE_COLUMNS))


def _ms(ts: pd.Timestamp | None) -> int:
    return -1 if ts is None else timestamp_ms(ts)
