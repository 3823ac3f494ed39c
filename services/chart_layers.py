"""What the chart's layers show, kept up to date one closed candle at a time.

>>> tracks = ChartTracks(market_data)
>>> track = tracks.sync("SP500", "1d")                  # history up to the feed's cursor
>>> view = track.view([request("ema", timeperiod=20)], [create("ema_crossover")], last=500)
>>> view.candles, view.indicators["ema(timeperiod=20)"], view.results["ema_crossover(...)"]

One :class:`SeriesTrack` per (symbol, timeframe) holds the whole closed history of the
chart's timeframe (resampled when it is not the stored one) in growing arrays, and for every
indicator and strategy any tab has shown, its values over that history plus its live state.
A new closed candle updates each state once (O(1): ``IncrementalIndicator.update``,
``LiveStrategy.on_candle``), whichever and however many tabs show it; a tab asks for the rows
after the last bar it holds. Nothing per tab lives here. Values equal a computation from
scratch on the same history (indicator states are TA-Lib's stream functions; the live
strategy path equals the vectorized one: tests/strategies).

Everything is in-process (TA-Lib states cannot be shared): another process builds its own.
A replay that starts over (the cursor goes back) rebuilds the track.

What every tab of a track asks for in the same moment is computed once too: ``shared(key,
compute)`` memoises a value (a tick's delta for the rows after a given bar, a panel at a given
history length) under the track's lock, so concurrent tabs wait for the first and reuse its
answer; keys carry the history length or feed version they depend on. ``panel_epoch`` is the
history length the panels below the chart show: it moves at most every ``PANEL_EVERY_S``
seconds while the feed is live, the same for every tab, so their panels are one computation.
:class:`TrackStats` counts the work (GET /debug/stats shows it).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analytics.backtest import BacktestResult, BacktestSettings, run_backtest
from database.repositories.trading import TradingRepository
from indicators.base import IncrementalIndicator
from indicators.registry import IndicatorRequest
from market.candles import CANDLE_COLUMNS, Candle, iter_candles, record_columns
from market.timeframes import Timeframe, from_epoch_ms, timestamp_ms
from services.live import StreamState
from services.market_data import MarketDataService
from strategies.base import BaseStrategy, LiveStrategy
from strategies.signals import SIGNAL_COLUMNS, StrategyResult, StrategySignal

ALL_BARS = 10**9  # "the whole history" for MarketDataService.window
PANEL_EVERY_S = 5.0  # a live track's panel epoch moves at most this often
SHARED_ENTRIES = 256  # memoised values kept per track (least recently used dropped)
T = TypeVar("T")


@dataclass
class TrackStats:
    """Work counters of every track of a ChartTracks (shared; increments under a lock)."""

    indicator_updates: int = 0  # an indicator state took a closed candle
    strategy_updates: int = 0  # a live strategy took a closed candle
    shared_computed: int = 0  # a shared value (tick delta, panel) was computed
    shared_reused: int = 0  # ... or answered from the memo
    backtests: int = 0  # a strategy traded over a track's history

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, k in counts.items():
                setattr(self, name, getattr(self, name) + k)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return asdict(self)


def strategy_key(strategy: BaseStrategy) -> str:
    """``ema_crossover(direction=both,fast=12,slow=26)``: name and every parameter, sorted."""
    args = ",".join(f"{k}={_text(v)}" for k, v in sorted(strategy.config.items()))
    return f"{strategy.name}({args})"


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Columns:
    """Named numpy columns that grow by appending (capacity doubles: amortised O(1)).

    Rows once written never change (appends write past ``n``; a full buffer is copied to a
    new one), so frames and results built on slices of them need no copy.
    """

    def __init__(self, dtypes: dict[str, np.dtype | type]) -> None:
        self._data = {name: np.empty(0, dtype=dtype) for name, dtype in dtypes.items()}
        self.n = 0

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        k = len(next(iter(columns.values())))
        if not k:
            return
        for name, values in columns.items():
            data = self._data[name]
            if self.n + k > data.size:
                grown = np.empty(max(2 * data.size, self.n + k, 64), dtype=data.dtype)
                grown[: self.n] = data[: self.n]
                self._data[name] = data = grown
            data[self.n : self.n + k] = values
        self.n += k

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name][: self.n]

    def names(self) -> list[str]:
        return list(self._data)


@dataclass
class _IndicatorTrack:
    request: IndicatorRequest
    state: IncrementalIndicator
    values: _Columns


@dataclass
class _StrategyTrack:
    strategy: BaseStrategy
    live: LiveStrategy
    columns: _Columns  # the four signal columns, confidence, close, metadata columns


@dataclass(frozen=True)
class TrackView:
    """A slice of a track: candles (closed), indicator frames and strategy results on them."""

    symbol: str
    timeframe: Timeframe
    candles: pd.DataFrame
    forming: Candle | None
    indicators: dict[str, pd.DataFrame]
    results: dict[str, StrategyResult]
    state: StreamState
    failures: dict[str, str]


class SeriesTrack:
    """The closed history of one (symbol, timeframe) and the indicators and strategies on it."""

    def __init__(self, symbol: str, timeframe: Timeframe, stats: TrackStats | None = None) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.lock = threading.RLock()
        self.version = -1  # the feed version the history was last synced to
        self.candles = _Columns({"ts": np.int64, **dict.fromkeys(CANDLE_COLUMNS, np.float64)})
        self.forming: Candle | None = None
        self.state: StreamState | None = None
        self._indicators: dict[str, _IndicatorTrack] = {}
        self._strategies: dict[str, _StrategyTrack] = {}
        self._backtests: dict[tuple[str, int, BacktestSettings], BacktestResult] = {}
        self._trades: dict[str, tuple[int, pd.DataFrame]] = {}  # key -> (history length, trades)
        self.stats = stats or TrackStats()
        self._shared: OrderedDict[Any, Any] = OrderedDict()
        self._shared_lock = threading.Lock()
        self._pending: dict[Any, threading.Lock] = {}
        self._epoch: tuple[int, float] = (-1, -math.inf)  # (history length, published at)

    # -- history -----------------------------------------------------------------------------
    @property
    def last_ts(self) -> pd.Timestamp | None:
        n = self.candles.n
        return pd.Timestamp(int(self.candles["ts"][n - 1]), unit="ms", tz="UTC") if n else None

    def reset(self, closed: pd.DataFrame) -> None:
        self.candles = _Columns({"ts": np.int64, **dict.fromkeys(CANDLE_COLUMNS, np.float64)})
        self._indicators.clear()
        self._strategies.clear()
        self._backtests.clear()
        self._trades.clear()
        with self._shared_lock:
            self._shared.clear()
        self._epoch = (-1, -math.inf)
        self.candles.extend(_frame_columns(closed))

    def append(self, closed: pd.DataFrame) -> None:
        """New closed candles: every tracked indicator and strategy takes them, in order."""
        if closed.empty:
            return
        self.candles.extend(_frame_columns(closed))
        self._take(list(iter_candles(closed)))

    def append_records(self, closed: Sequence[Candle]) -> None:
        """:meth:`append` of the feed's records (no frame in between: a live tick's bars)."""
        if not closed:
            return
        ts = np.array([timestamp_ms(r.ts) for r in closed], np.int64)
        self.candles.extend({"ts": ts, **record_columns(closed)})
        self._take(closed)

    def _take(self, closed: Sequence[Candle]) -> None:
        for candle in closed:
            values = {}
            for key, track in self._indicators.items():
                values[key] = out = track.state.update(candle)
                track.values.extend(
                    {o: np.array([v]) for o, v in zip(track.values.names(), out, strict=True)}
                )
            for track in self._strategies.values():
                _append_signals(track, candle, track.live.on_candle(candle, values))
        self.stats.add(
            indicator_updates=len(closed) * len(self._indicators),
            strategy_updates=len(closed) * len(self._strategies),
        )

    # -- shared answers ----------------------------------------------------------------------
    def shared(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()`` once per ``key`` for every caller: a concurrent caller with the same
        key waits for the first and gets its value (others are not held up). The value is
        shared: never mutate it. ``key`` must name everything the value depends on (history
        length, feed version, layer configuration); a rebuilt track forgets every value."""
        with self._shared_lock:
            if key in self._shared:
                self._shared.move_to_end(key)
                self.stats.add(shared_reused=1)
                return self._shared[key]
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:
            with self._shared_lock:
                if key in self._shared:  # computed by the caller this one waited for
                    self.stats.add(shared_reused=1)
                    return self._shared[key]
            try:
                value = compute()
            finally:
                with self._shared_lock:
                    self._pending.pop(key, None)
            with self._shared_lock:
                self._shared[key] = value
                while len(self._shared) > SHARED_ENTRIES:
                    self._shared.popitem(last=False)
            self.stats.add(shared_computed=1)
            return value

    def panel_epoch(self, now: float | None = None) -> int:
        """The history length the panels show: the current one, published again at most every
        PANEL_EVERY_S seconds while the feed is live (at once when it is not), the same for
        every tab."""
        now = time.monotonic() if now is None else now
        with self.lock:
            n, (held, at) = self.candles.n, self._epoch
            live = self.state is not None and self.state.status == "live"
            if n != held and (not live or n < held or now - at >= PANEL_EVERY_S):
                self._epoch = (n, now)
                return n
            return held

    def frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """Candles ``start:stop`` as a candle frame (UTC index ``ts``)."""
        stop = self.candles.n if stop is None else stop
        index = from_epoch_ms(self.candles["ts"][start:stop])
        return pd.DataFrame(
            {c: self.candles[c][start:stop] for c in CANDLE_COLUMNS}, index=index, copy=False
        )

    def position_after(self, since: pd.Timestamp | None) -> int:
        """Index of the first closed candle after ``since`` (0 when None)."""
        if since is None:
            return 0
        ms = int(since.value // 1_000_000)
        return int(np.searchsorted(self.candles["ts"], ms, side="right"))

    # -- what is tracked ---------------------------------------------------------------------
    def track_indicators(self, requests: Iterable[IndicatorRequest]) -> dict[str, str]:
        """Open a live state for every request not tracked yet; {key: why} for failures."""
        failures: dict[str, str] = {}
        history = None
        for req in requests:
            if req.key in self._indicators:
                continue
            if history is None:
                history = self.frame()
            try:
                state, values = req.spec.open(history, req.param_dict)
            except Exception as exc:  # one bad request must not hide the other layers
                failures[req.key] = f"{type(exc).__name__}: {exc}"
                continue
            columns = _Columns(dict.fromkeys(req.spec.outputs, np.float64))
            columns.extend({o: np.asarray(values[o], dtype=np.float64) for o in req.spec.outputs})
            self._indicators[req.key] = _IndicatorTrack(req, state, columns)
        return failures

    def track_strategies(self, strategies: Iterable[BaseStrategy]) -> dict[str, str]:
        failures: dict[str, str] = {}
        for strategy in strategies:
            key = strategy_key(strategy)
            if key in self._strategies:
                continue
            failures |= self.track_indicators(strategy.required_indicators())
            try:
                history = self.frame()
                result = strategy.generate(
                    history, symbol=self.symbol, timeframe=self.timeframe.label
                )
                live = strategy.live(history, symbol=self.symbol, timeframe=self.timeframe.label)
            except Exception as exc:
                failures[key] = f"{type(exc).__name__}: {exc}"
                continue
            meta = {f"m:{name}": np.float64 for name in result.metadata_columns}
            columns = _Columns(
                {**dict.fromkeys(SIGNAL_COLUMNS, np.bool_), "confidence": np.float64,
                 "close": np.float64, **meta}
            )  # fmt: skip
            frame = result.frame
            columns.extend(
                {c: frame[c].to_numpy() for c in SIGNAL_COLUMNS}
                | {"confidence": frame["confidence"].to_numpy(dtype=np.float64),
                   "close": np.asarray(result.prices, dtype=np.float64)}
                | {f"m:{k}": np.asarray(v, dtype=np.float64)
                   for k, v in result.metadata_columns.items()}
            )  # fmt: skip
            self._strategies[key] = _StrategyTrack(strategy, live, columns)
        return failures

    # -- reading -----------------------------------------------------------------------------
    def view(
        self,
        requests: Sequence[IndicatorRequest],
        strategies: Sequence[BaseStrategy],
        *,
        last: int | None = None,
        since: pd.Timestamp | None = None,
    ) -> TrackView:
        """The newest ``last`` candles, or those after ``since``, with their layers' data."""
        with self.lock:
            failures = self.track_indicators(requests) | self.track_strategies(strategies)
            n = self.candles.n
            start = max(0, n - last) if last is not None else self.position_after(since)
            candles = self.frame(start, n)
            indicators = {
                req.key: pd.DataFrame(
                    {o: track.values[o][start:n] for o in req.spec.outputs},
                    index=candles.index,
                    copy=False,
                )
                for req in requests
                if (track := self._indicators.get(req.key)) is not None
            }
            results = {}
            for strategy in strategies:
                key = strategy_key(strategy)
                track = self._strategies.get(key)
                if track is not None:
                    results[key] = _result(track, self, candles.index, start, n)
            return TrackView(
                self.symbol, self.timeframe, candles, self.forming, indicators, results,
                self.state, failures,  # type: ignore[arg-type]
            )  # fmt: skip

    def backtest(
        self,
        strategy: BaseStrategy,
        settings: BacktestSettings | None = None,
        *,
        stop: int | None = None,
    ) -> BacktestResult:
        """The strategy traded over the tracked history, or its first ``stop`` candles
        (cached per history length: the last few lengths are kept).

        By default an open position stays open (``close_at_end=False``): a live chart shows
        closed trades only, and the equity curve marks the open one to market.
        """
        settings = settings or BacktestSettings(direction=strategy.direction, close_at_end=False)
        with self.lock:
            self.track_strategies([strategy])
            n = self.candles.n if stop is None else max(0, min(stop, self.candles.n))
            key = (strategy_key(strategy), n, settings)
            cached = self._backtests.get(key)
            if cached is None:
                track = self._strategies[strategy_key(strategy)]
                candles = self.frame(0, n)
                signals = pd.DataFrame(
                    {c: track.columns[c][:n] for c in SIGNAL_COLUMNS},
                    index=candles.index,
                    copy=True,
                )
                cached = run_backtest(candles, signals, settings)
                self.stats.add(backtests=1)
                lengths = sorted({k[1] for k in self._backtests} | {n})[-4:]
                self._backtests = {k: v for k, v in self._backtests.items() if k[1] in lengths}
                self._backtests[key] = cached
            return cached

    def fired(self, strategy: BaseStrategy, start: int) -> bool:
        """Whether the (tracked) strategy signalled on a bar from ``start - 1`` on: the bars
        after a tab's last one can then hold a new signal or a fill that closed a trade."""
        with self.lock:
            track = self._strategies.get(strategy_key(strategy))
            if track is None:
                return True  # not tracked yet: the caller computes it
            lo = max(start - 1, 0)
            return any(track.columns[c][lo:].any() for c in SIGNAL_COLUMNS)

    def trades(self, strategy: BaseStrategy) -> pd.DataFrame:
        """The closed trades of :meth:`backtest` with default settings, without re-running it
        while no signal fired: fills happen on a signal's bar or the next one (no stops in the
        default settings), so the trade list only changes after a signal."""
        key = strategy_key(strategy)
        with self.lock:
            self.track_strategies([strategy])
            n = self.candles.n
            cached = self._trades.get(key)
            if cached is not None:
                since_n, trades = cached
                columns = self._strategies[key].columns
                start = max(since_n - 1, 0)
                if since_n <= n and not any(columns[c][start:n].any() for c in SIGNAL_COLUMNS):
                    return trades
            trades = self.backtest(strategy).trades
            self._trades[key] = (n, trades)
            return trades


def _frame_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    ms = frame.index.as_unit("ms").asi8 if len(frame) else np.empty(0, np.int64)
    return {"ts": ms, **{c: frame[c].to_numpy(dtype=np.float64) for c in CANDLE_COLUMNS}}


def _append_signals(track: _StrategyTrack, candle: Candle, fired: list[StrategySignal]) -> None:
    row: dict[str, np.ndarray] = {c: np.array([False]) for c in SIGNAL_COLUMNS}
    row["close"] = np.array([candle.close])
    confidence = math.nan
    metadata: dict[str, float] = {}
    for signal in fired:
        row[signal.signal_type] = np.array([True])
        metadata = dict(signal.metadata)
        if signal.is_entry:
            confidence = signal.confidence
        elif math.isnan(confidence):
            confidence = 1.0
    row["confidence"] = np.array([confidence])
    for name in track.columns.names():
        if name.startswith("m:"):
            row[name] = np.array([metadata.get(name[2:], math.nan)])
    track.columns.extend(row)


def _result(
    track: _StrategyTrack, series: SeriesTrack, index: pd.DatetimeIndex, start: int, stop: int
) -> StrategyResult:
    strategy, columns = track.strategy, track.columns
    frame = pd.DataFrame(
        {c: columns[c][start:stop] for c in (*SIGNAL_COLUMNS, "confidence")},
        index=index,
        copy=False,
    )
    return StrategyResult(
        strategy.name,
        dict(strategy.config),
        strategy.config_hash,
        series.symbol,
        series.timeframe.label,
        frame,
        columns["close"][start:stop],
        {n[2:]: columns[n][start:stop] for n in columns.names() if n.startswith("m:")},
    )


def execution_frame(
    sessions: sessionmaker[Session] | None,
    account: str,
    symbol: str,
    start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The fills of the paper ``account`` in ``symbol`` on bars from ``start`` on (None: all),
    oldest first: the executions layer's frame (bar, side, price, quantity, fee, purpose,
    order). A fill is on the bar it filled on (``bar_ts``; its ``time`` for fills stored
    without one). Empty for an unknown account or without a database."""
    rows: list = []
    if sessions is not None:
        with sessions() as session:
            repo = TradingRepository(session)
            found = repo.account(account)
            if found is not None:
                rows = repo.fills(found.id, symbol=symbol)
    bars = pd.DatetimeIndex(
        [
            pd.Timestamp(f.bar_ts, unit="ms", tz="UTC")
            if f.bar_ts is not None
            else pd.Timestamp(f.time).tz_convert("UTC")
            for f in rows
        ],
        dtype="datetime64[ms, UTC]",
    )
    frame = pd.DataFrame(
        {
            "bar": bars,
            "side": [f.side for f in rows],
            "price": np.array([f.price for f in rows], dtype=np.float64),
            "quantity": np.array([f.quantity for f in rows], dtype=np.float64),
            "fee": np.array([f.fee for f in rows], dtype=np.float64),
            "purpose": [f.purpose or "" for f in rows],
            "order": [f.client_order_id for f in rows],
        }
    )
    if start is not None:
        frame = frame[(frame["bar"] >= start).to_numpy()].reset_index(drop=True)
    return frame


class ChartTracks:
    """Every (symbol, timeframe) track of this process, synced to the live market on demand.

    At most ``max_tracks`` are kept (least recently used dropped); a dropped one is rebuilt.
    """

    def __init__(
        self,
        market_data: MarketDataService,
        *,
        max_tracks: int = 16,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self._market_data = market_data
        self._sessions = sessions  # the executions layer's fills (none without)
        self._max = max_tracks
        self._tracks: OrderedDict[tuple[str, str], SeriesTrack] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = TrackStats()

    def accounts(self) -> list[str]:
        """The paper accounts whose fills the executions layer can show."""
        if self._sessions is None:
            return []
        with self._sessions() as session:
            return [a.name for a in TradingRepository(session).accounts()]

    def executions(
        self, account: str, symbol: str, start: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """:func:`execution_frame` on this process's database (empty without one)."""
        if self._sessions is None:
            return execution_frame(None, account, symbol, start)
        return execution_frame(self._sessions, account, symbol, start)

    def clear(self) -> None:
        """Drop every track (each is rebuilt on its next use)."""
        with self._lock:
            self._tracks.clear()

    def sync(self, symbol: str, timeframe: str | Timeframe) -> SeriesTrack:
        """The track of (symbol, timeframe) with every bar closed up to the feed's cursor."""
        tf = Timeframe.parse(timeframe)
        with self._lock:
            track = self._tracks.get((symbol, tf.label))
            if track is None:
                track = self._tracks[(symbol, tf.label)] = SeriesTrack(symbol, tf, self.stats)
            self._tracks.move_to_end((symbol, tf.label))
            while len(self._tracks) > self._max:
                self._tracks.popitem(last=False)
        with track.lock:
            state = self._market_data.state(symbol)
            if state.version == track.version:
                return track
            since = track.last_ts
            delta = self._market_data.delta(symbol, tf, since) if since is not None else None
            if delta is None or delta.reset:
                window = self._market_data.window(symbol, tf, ALL_BARS)
                track.reset(window.closed)
                track.forming, track.state = window.forming, window.state
            else:
                if delta.records is not None:
                    track.append_records(delta.records)
                else:
                    track.append(delta.closed)
                track.forming, track.state = delta.forming, delta.state
            track.version = track.state.version
            return track
