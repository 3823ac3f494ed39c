"""Checks on a strategy's signals: warm-up, order, duplicates, alternation, look-ahead.

>>> result = strategy.generate(frame)
>>> validate_signals(result.signals, warmup_end=frame.index[strategy.warmup])
[]
>>> truncation_problems(strategy, frame, cuts=[500, 1200])        # look-ahead check
[]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from strategies.base import BaseStrategy
from strategies.signals import BAR_ORDER, StrategySignal


@dataclass(frozen=True)
class SignalProblem:
    """One problem found: ``kind`` is warmup, order, duplicate, alternation, value or lookahead."""

    kind: str
    timestamp: pd.Timestamp | None
    message: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.timestamp}: {self.message}"


def _stream(signal: StrategySignal) -> tuple[str, str, str, str]:
    return (signal.strategy_name, signal.config_hash, signal.symbol, signal.timeframe)


def _identity(signal: StrategySignal) -> tuple[object, ...]:
    return (*_stream(signal), signal.timestamp, signal.signal_type)


def drop_duplicates(signals: Iterable[StrategySignal]) -> tuple[StrategySignal, ...]:
    """Signals sorted by time (exits before entries on a bar), repeats of one signal dropped.

    A repeat is the same strategy config, symbol, timeframe, bar and signal type (e.g. a
    candle processed twice by the live runner).
    """
    seen: dict[tuple[object, ...], StrategySignal] = {}
    for signal in signals:
        seen.setdefault(_identity(signal), signal)
    return tuple(sorted(seen.values(), key=lambda s: (s.timestamp, BAR_ORDER.index(s.signal_type))))


def validate_signals(
    signals: Sequence[StrategySignal], warmup_end: pd.Timestamp | None = None
) -> list[SignalProblem]:
    """Problems of a signal sequence (empty when sound).

    >>> validate_signals([exit_long_signal])
    [SignalProblem(kind='alternation', ...)]

    Checks: none before ``warmup_end`` (the first bar allowed to signal); timestamps
    non-decreasing per stream (strategy config, symbol, timeframe); no duplicates; per
    direction entries and exits alternate, starting with an entry; confidence in [0, 1] and a
    positive finite price.
    """
    problems: list[SignalProblem] = []
    last: dict[tuple[str, ...], pd.Timestamp] = {}
    open_: dict[tuple[str, ...], bool] = {}
    seen: set[tuple[object, ...]] = set()
    for signal in signals:
        ts = signal.timestamp
        stream = _stream(signal)
        if warmup_end is not None and ts < warmup_end:
            problems.append(
                SignalProblem("warmup", ts, f"{signal.signal_type} before {warmup_end}")
            )
        if stream in last and ts < last[stream]:
            problems.append(SignalProblem("order", ts, f"after a signal at {last[stream]}"))
        last[stream] = max(ts, last.get(stream, ts))
        identity = _identity(signal)
        if identity in seen:
            problems.append(SignalProblem("duplicate", ts, f"{signal.signal_type} repeated"))
            continue
        seen.add(identity)
        side = (*stream, signal.direction)
        is_open = open_.get(side, False)
        if signal.is_entry == is_open:
            state = "open" if is_open else "flat"
            problems.append(SignalProblem("alternation", ts, f"{signal.signal_type} while {state}"))
        open_[side] = signal.is_entry
        if not (0.0 <= signal.confidence <= 1.0) or not (signal.price > 0):
            problems.append(
                SignalProblem(
                    "value", ts, f"confidence={signal.confidence!r}, price={signal.price!r}"
                )
            )
    return problems


def truncation_problems(
    strategy: BaseStrategy, frame: pd.DataFrame, cuts: Iterable[int]
) -> list[SignalProblem]:
    """Look-ahead check: signals on ``frame[:cut]`` must equal the full run's up to that bar."""
    full = strategy.generate(frame, symbol="T", timeframe="T").signals
    problems = []
    for cut in cuts:
        part = strategy.generate(frame.iloc[:cut], symbol="T", timeframe="T").signals
        end = frame.index[cut - 1]
        expected = tuple(s for s in full if s.timestamp <= end)
        if part != expected:
            where = next((a.timestamp for a, b in zip(part, expected, strict=False) if a != b), end)
            problems.append(
                SignalProblem(
                    "lookahead",
                    where,
                    f"{len(part)} signals on the first {cut} bars, {len(expected)} in the full run",
                )
            )
    return problems


__all__ = ["SignalProblem", "drop_duplicates", "truncation_problems", "validate_signals"]
