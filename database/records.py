"""Frozen records the repositories take in and hand out (no ORM object leaves database/).

Times are timezone-aware ``datetime`` values normalized to UTC; a naive time is refused, since
nothing could tell whether it meant UTC or the machine's local time.

>>> from datetime import UTC, datetime
>>> SignalRecord(strategy_name="sma_cross", symbol="SP500", timeframe="1d",
...              timestamp=datetime(2024, 1, 2, tzinfo=UTC), signal_type="entry_long",
...              price=4742.8).confidence
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

RunMode = Literal["backtest", "live", "paper"]
RunStatus = Literal["running", "finished", "failed"]
SignalType = Literal["entry_long", "exit_long", "entry_short", "exit_short"]
TradeSide = Literal["buy", "sell"]

RUN_MODES: tuple[str, ...] = get_args(RunMode)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
SIGNAL_TYPES: tuple[str, ...] = get_args(SignalType)
TRADE_SIDES: tuple[str, ...] = get_args(TradeSide)


def utc_datetime(value: object, name: str = "time") -> datetime:
    """``value`` as a plain UTC ``datetime``; naive or non-datetime values raise.

    A ``pd.Timestamp`` is accepted and becomes a ``datetime`` (microsecond precision).
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name}={value!r} is naive: pass a timezone-aware datetime "
            "(e.g. datetime(..., tzinfo=UTC)), stored values are UTC"
        )
    value = value.astimezone(UTC)
    # rebuild as a plain datetime: drivers and equality checks then see one type only
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, tzinfo=UTC,
    )  # fmt: skip


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """ValueError naming ``name`` and the ``allowed`` values unless ``value`` is one."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is invalid: expected one of {', '.join(allowed)}")


def check_non_empty(name: str, value: object) -> None:
    """ValueError naming ``name`` unless ``value`` is a string with a non-blank character."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}={value!r} is invalid: expected a non-empty string")


def check_number(
    name: str, value: object, *, low: float | None = None, strict: bool = False
) -> float:
    """``value`` as a finite float (>= ``low``, > when ``strict``); ValueError naming ``name``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is invalid: expected a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}={value!r} is invalid: expected a finite number")
    if low is not None and (number <= low if strict else number < low):
        sign = ">" if strict else ">="
        raise ValueError(f"{name}={value!r} is invalid: expected a number {sign} {low:g}")
    return number


def _set(record: object, name: str, value: object) -> None:
    object.__setattr__(record, name, value)  # normalizing inside a frozen dataclass


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One stored candle series: how many bars and the first and last bar's open time."""

    symbol: str
    timeframe: str
    bars: int
    first: pd.Timestamp
    last: pd.Timestamp


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyRunRecord:
    """One run of a strategy (a backtest, a live or a paper session)."""

    id: int
    strategy_name: str
    config: Mapping[str, Any] = field(hash=False)
    symbol: str
    timeframe: str
    mode: RunMode
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, RUN_MODES)
        check_choice("status", self.status, RUN_STATUSES)
        _set(self, "started_at", utc_datetime(self.started_at, "started_at"))
        if self.finished_at is not None:
            _set(self, "finished_at", utc_datetime(self.finished_at, "finished_at"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRecord:
    """A strategy's signal on one bar; ``id`` is None until stored."""

    strategy_name: str
    symbol: str
    timeframe: str
    timestamp: datetime
    signal_type: SignalType
    price: float
    confidence: float = 1.0
    strategy_config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    run_id: int | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        for name in ("strategy_name", "symbol", "timeframe"):
            check_non_empty(name, getattr(self, name))
        check_choice("signal_type", self.signal_type, SIGNAL_TYPES)
        _set(self, "timestamp", utc_datetime(self.timestamp, "timestamp"))
        _set(self, "price", check_number("price", self.price, low=0, strict=True))
        confidence = check_number("confidence", self.confidence, low=0)
        if confidence > 1:
            raise ValueError(f"confidence={self.confidence!r} is invalid: expected 0 to 1")
        _set(self, "confidence", confidence)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRecord:
    """One executed trade (a fill); immutable once stored, identified by ``trade_id`` within
    its account."""

    trade_id: str
    account_id: str
    strategy_id: str
    symbol: str
    side: TradeSide
    price: float
    volume: float
    execution_time: datetime
    commission: float = 0.0
    market_context: Mapping[str, Any] = field(default_factory=dict, hash=False)
    labels: tuple[str, ...] = ()
    pnl: float | None = None
    cumulative_pnl: float | None = None
    run_id: int | None = None
    source: str | None = None  # paper, freqtrade, hummingbot, csv, api
    order_id: str | None = None  # the order this fill belongs to

    def __post_init__(self) -> None:
        for name in ("trade_id", "account_id", "strategy_id", "symbol"):
            check_non_empty(name, getattr(self, name))
        check_choice("side", self.side, TRADE_SIDES)
        _set(self, "execution_time", utc_datetime(self.execution_time, "execution_time"))
        _set(self, "price", check_number("price", self.price, low=0, strict=True))
        _set(self, "volume", check_number("volume", self.volume, low=0, strict=True))
        # negative commission is a maker rebate
        _set(self, "commission", check_number("commission", self.commission))
        for name in ("pnl", "cumulative_pnl"):
            if getattr(self, name) is not None:
                _set(self, name, check_number(name, getattr(self, name)))
        labels = self.labels
        if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"labels={self.labels!r} is invalid: expected a sequence of strings")
        _set(self, "labels", tuple(self.labels))


def unchecked_trade(
    *,
    trade_id: str,
    account_id: str,
    strategy_id: str,
    symbol: str,
    side: TradeSide,
    price: float,
    volume: float,
    execution_time: datetime,
    commission: float,
    market_context: Mapping[str, Any],
    labels: tuple[str, ...],
    pnl: float | None,
    cumulative_pnl: float | None,
    run_id: int | None,
    source: str | None,
    order_id: str | None,
) -> TradeRecord:
    """A TradeRecord of values its maker has already checked as ``__post_init__`` would (an
    importer that checked whole columns, the tracker adding its own results to a checked
    record), without running those checks again (~15 us a trade). Every field is given; each
    is set through its slot's descriptor (a third of object.__setattr__ by name in a loop)."""
    record = _new(TradeRecord)
    put = _PUT
    put[0](record, trade_id)
    put[1](record, account_id)
    put[2](record, strategy_id)
    put[3](record, symbol)
    put[4](record, side)
    put[5](record, price)
    put[6](record, volume)
    put[7](record, execution_time)
    put[8](record, commission)
    put[9](record, market_context)
    put[10](record, labels)
    put[11](record, pnl)
    put[12](record, cumulative_pnl)
    put[13](record, run_id)
    put[14](record, source)
    put[15](record, order_id)
    return record


_TRADE_FIELDS = tuple(f.name for f in fields(TradeRecord))
_new = object.__new__
if _TRADE_FIELDS != ("trade_id", "account_id", "strategy_id", "symbol", "side", "price", "volume",
                     "execution_time", "commission", "market_context", "labels", "pnl",
                     "cumulative_pnl", "run_id", "source", "order_id"):  # fmt: skip
    raise TypeError(f"unchecked_trade sets TradeRecord's fields in another order: {_TRADE_FIELDS}")
# each field's slot setter, in the order unchecked_trade sets them (its fields' order)
_PUT = tuple(TradeRecord.__dict__[name].__set__ for name in _TRADE_FIELDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long analysis results are kept; live and paper records are always kept.

    Analysis means a finished or failed ``backtest`` run, whose age is its ``started_at`` (when
    the analysis was made, not the bars it is about: a backtest of 2015 made today is new).
    Signals without a run are kept unless ``include_unattached_signals``: nothing proves they
    are analysis, and a deleted live signal cannot come back. Their age is their bar time.

    >>> RetentionPolicy(keep_analysis_days=30).keep_analysis_days
    30
    """

    keep_analysis_days: int
    include_unattached_signals: bool = False

    def __post_init__(self) -> None:
        days = self.keep_analysis_days
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ValueError(f"keep_analysis_days={days!r} is invalid: expected an integer >= 0")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one retention pass deleted, and the cutoff it used."""

    deleted_signals: int
    deleted_runs: int
    cutoff: datetime


@dataclass(frozen=True, eq=False, kw_only=True)
class SignalBlock:
    """One run's signals as columns: what ``StrategyRepository.save_run`` stores without a
    Python object per signal (``StrategyResult.to_block`` makes it; the same rows as its
    ``to_records``, read back as the same :class:`SignalRecord` values).

    ``timestamp``: timezone-aware times (any array-like pandas reads; microsecond precision is
    stored); ``signal_type``: strings of ``SIGNAL_TYPES``; ``price`` (finite, > 0) and
    ``confidence`` (0 to 1): numbers; ``metadata``: one column (array) per key, every key in
    every signal; ``strategy_config``: the config every signal carries (None or empty: its
    run's). Checked column-wise on creation: ValueError naming the first bad row.
    """

    strategy_name: str
    symbol: str
    timeframe: str
    timestamp: Any
    signal_type: Any
    price: Any
    confidence: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)
    strategy_config: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("strategy_name", "symbol", "timeframe"):
            check_non_empty(name, getattr(self, name))
        stamps = pd.DatetimeIndex(self.timestamp)
        if stamps.tz is None and len(stamps):
            raise ValueError("SignalBlock.timestamp is naive: pass timezone-aware times (UTC)")
        stamps = stamps.tz_convert("UTC") if stamps.tz is not None else stamps
        n = len(stamps)
        if stamps.hasnans:
            raise ValueError(f"SignalBlock.timestamp of signal {_first(stamps.isna())} is NaT")
        types = np.asarray(self.signal_type, dtype=object)
        price = np.asarray(self.price, dtype=np.float64)
        confidence = np.asarray(self.confidence, dtype=np.float64)
        metadata = {key: np.asarray(values) for key, values in dict(self.metadata).items()}
        lengths = {"signal_type": len(types), "price": len(price), "confidence": len(confidence)}
        lengths.update((f"metadata[{key!r}]", len(v)) for key, v in metadata.items())
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"SignalBlock.{name} has {length} values for {n} timestamps")
        bad = ~np.isin(types, SIGNAL_TYPES)
        if bad.any():
            row = _first(bad)
            check_choice(f"signal_type of signal {row}", types[row], SIGNAL_TYPES)
        with np.errstate(invalid="ignore"):
            bad_price = ~(np.isfinite(price) & (price > 0))
            bad_confidence = ~((confidence >= 0) & (confidence <= 1))
        if bad_price.any():
            row = _first(bad_price)
            raise ValueError(
                f"price={float(price[row])!r} of signal {row} is invalid: expected a finite "
                "number > 0"
            )
        if bad_confidence.any():
            row = _first(bad_confidence)
            raise ValueError(
                f"confidence={float(confidence[row])!r} of signal {row} is invalid: expected 0 to 1"
            )
        _set(self, "timestamp", stamps)
        _set(self, "signal_type", types)
        _set(self, "price", price)
        _set(self, "confidence", confidence)
        _set(self, "metadata", metadata)

    def __len__(self) -> int:
        return len(self.timestamp)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True, eq=False, kw_only=True)
class RunResultRecord:
    """What a finished backtest run showed, stored once with it (table strategy_run_results):
    its trade list (a frame of any columns; dtypes, NaN/NaT and time zones come back as they
    were), its equity curve (a float Series on a DatetimeIndex), the bars before the strategy
    could trade (``warmup_bars``) and the bar a drawdown halt stopped it on (or None)."""

    trades: pd.DataFrame
    equity: pd.Series
    warmup_bars: int
    drawdown_halt: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.trades, pd.DataFrame):
            raise TypeError(f"trades must be a DataFrame, got {type(self.trades).__name__}")
        if not isinstance(self.equity, pd.Series) or not isinstance(
            self.equity.index, pd.DatetimeIndex
        ):
            raise TypeError("equity must be a Series on a DatetimeIndex")
        warmup = self.warmup_bars
        if isinstance(warmup, bool) or not isinstance(warmup, int | np.integer) or warmup < 0:
            raise ValueError(f"warmup_bars={warmup!r} is invalid: expected an integer >= 0")
        _set(self, "warmup_bars", int(warmup))
        if self.drawdown_halt is not None:
            _set(self, "drawdown_halt", utc_datetime(self.drawdown_halt, "drawdown_halt"))
