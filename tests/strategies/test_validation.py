"""Signal validation: every strategy passes it, and it catches each kind of problem."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from market.sample_data import load_sample
from strategies.registry import all_strategies, create
from strategies.signals import StrategySignal
from strategies.validation import drop_duplicates, truncation_problems, validate_signals


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    return load_sample("SP500")


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return load_sample("DEMO")


@pytest.mark.parametrize("direction", ["long", "short", "both"])
@pytest.mark.parametrize("cls", all_strategies(), ids=lambda c: c.name)
def test_generated_signals_are_valid(sp500, demo, cls, direction) -> None:
    strategy = cls(direction=direction)
    for frame in (sp500, demo):
        signals = strategy.generate(frame, symbol="X", timeframe="1d").signals
        assert signals
        assert validate_signals(signals, warmup_end=frame.index[strategy.warmup]) == []
        # the first signal may come right at the end of the warm-up, never before
        assert signals[0].timestamp >= frame.index[strategy.warmup]


@pytest.mark.parametrize("cls", all_strategies(), ids=lambda c: c.name)
def test_no_look_ahead(sp500, cls) -> None:
    strategy = cls(direction="both")
    assert truncation_problems(strategy, sp500, cuts=[40, 257, 1000, 3001, 5030]) == []


def test_truncation_check_catches_look_ahead(sp500) -> None:
    class Peeking(type(create("sma_crossover"))):
        def rules(self, cur, prev):
            # the highest close of the whole input, future bars included, moves the average
            peek = cur["fast_sma"] + 0.01 * (cur["close"].max() - 1000.0)
            return super().rules({**cur, "fast_sma": peek}, prev)

    problems = truncation_problems(Peeking(), sp500, cuts=[1000, 2000, 3000, 4000])
    assert problems
    assert problems[0].kind == "lookahead"


def _signal(day: int, kind: str, confidence: float = 0.5) -> StrategySignal:
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=day)
    return StrategySignal(ts, "S", "1d", "sma_crossover", "h", kind, 10.0, confidence)  # type: ignore[arg-type]


def test_validation_finds_each_problem() -> None:
    good = [_signal(3, "entry_long"), _signal(5, "exit_long"), _signal(5, "entry_short")]
    assert validate_signals(good, warmup_end=_signal(3, "entry_long").timestamp) == []
    kinds = lambda signals, **kw: [p.kind for p in validate_signals(signals, **kw)]  # noqa: E731
    assert kinds(good, warmup_end=_signal(4, "x_long" if False else "entry_long").timestamp) == [
        "warmup"
    ]
    assert kinds([_signal(1, "exit_long")]) == ["alternation"]
    assert kinds([_signal(1, "entry_short"), _signal(2, "entry_short")]) == ["alternation"]
    assert kinds([_signal(2, "entry_long"), _signal(1, "exit_long")]) == ["order"]
    assert kinds([_signal(1, "entry_long"), _signal(1, "entry_long")]) == ["duplicate"]
    bad_price = dataclasses.replace(_signal(1, "entry_long"), price=0.0)
    assert kinds([bad_price]) == ["value"]


def test_drop_duplicates_sorts_and_keeps_one() -> None:
    signals = [
        _signal(5, "entry_short"),
        _signal(5, "exit_long"),
        _signal(1, "entry_long"),
        _signal(1, "entry_long"),
    ]
    assert [(s.timestamp.day, s.signal_type) for s in drop_duplicates(signals)] == [
        (2, "entry_long"), (6, "exit_long"), (6, "entry_short"),
    ]  # fmt: skip
    assert validate_signals(drop_duplicates(signals)) == []
