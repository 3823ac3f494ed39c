"""Incremental == full on every bar: state.update(candle) gives, bar by bar, what the full
computation gives; peek gives what update would, and leaves the state as it was."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indicators import IndicatorParamError, IndicatorSpec, all_specs, get
from market.candles import Candle, candles_from_records
from tests.indicators.cases import CASES, case_id


def replay(spec: IndicatorSpec, candles: list[Candle], split: int, params: dict[str, Any]) -> None:
    """Open on candles[:split], then peek (a decoy, the real one) and update the rest."""
    frame = candles_from_records(candles)
    full = spec.compute(frame, params)
    expected = np.column_stack([full[o] for o in spec.outputs]) if len(frame) else None
    state, opened = spec.open(frame.iloc[:split], params)
    for output in spec.outputs:
        np.testing.assert_array_equal(opened[output], full[output][:split])
    for i in range(split, len(candles)):
        candle = candles[i]
        decoy = Candle(
            candle.ts, candle.open, candle.high * 1.5, candle.low * 0.5, candle.close * 1.25, 7.0
        )
        state.peek(decoy)  # a forming bar that then changed: must leave no trace
        peeked = state.peek(candle)
        updated = state.update(candle)
        assert len(updated) == len(spec.outputs)
        np.testing.assert_array_equal(peeked, updated, err_msg=f"peek != update at bar {i}")
        np.testing.assert_array_equal(updated, expected[i], err_msg=f"bar {i}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_incremental_equals_full_on_sp500(
    case: tuple[str, dict[str, Any]], sp500_candles: list[Candle]
) -> None:
    name, params = case
    spec = get(name)
    candles = sp500_candles[:1500]
    # open in the warm-up, exactly at its end, just after it, and well after it
    for split in {0, spec.lookback(params), spec.lookback(params) + 1, 1200}:
        replay(spec, candles, split, params)


def test_peek_leaves_state_unchanged(sp500: pd.DataFrame, sp500_candles: list[Candle]) -> None:
    for spec in all_specs():
        state, _ = spec.open(sp500.iloc[:400])
        nxt = sp500_candles[400]
        before = [state.peek(nxt) for _ in range(3)]
        assert before[0] == before[1] == before[2]
        assert state.update(nxt) == before[0]


def test_state_keeps_going_past_the_history(
    sp500: pd.DataFrame, sp500_candles: list[Candle]
) -> None:
    spec = get("macd")
    state, _ = spec.open(sp500.iloc[:4000])
    last = [state.update(c) for c in sp500_candles[4000:]][-1]
    full = spec.compute(sp500)
    assert last == tuple(full[o][-1] for o in spec.outputs)


# --- random positive series (hypothesis) ---------------------------------------------------

STEPS_MS = (60_000, 3_600_000, 6 * 3_600_000, 86_400_000, 3 * 86_400_000)


@st.composite
def candle_series(draw: st.DrawFn) -> list[Candle]:
    size = draw(st.integers(0, 70))
    close = draw(st.lists(st.floats(1.0, 1000.0), min_size=size, max_size=size))
    spread = st.floats(0.0, 0.05)
    up = draw(st.lists(spread, min_size=size, max_size=size))
    down = draw(st.lists(spread, min_size=size, max_size=size))
    volume = draw(st.lists(st.floats(0.0, 1e6) | st.just(0.0), min_size=size, max_size=size))
    steps = draw(st.lists(st.sampled_from(STEPS_MS), min_size=size, max_size=size))
    start = pd.Timestamp("2024-01-05 22:00", tz="UTC")
    ts = start + pd.to_timedelta(np.cumsum(steps, dtype=np.int64), unit="ms")
    return [
        Candle(t, c, c * (1 + u), c * (1 - d), c, v)
        for t, c, u, d, v in zip(ts, close, up, down, volume, strict=True)
    ]


@st.composite
def spec_and_params(draw: st.DrawFn) -> tuple[IndicatorSpec, dict[str, Any]]:
    spec = draw(st.sampled_from(all_specs()))
    params: dict[str, Any] = {}
    for p in spec.params:
        if p.kind is int:
            params[p.name] = draw(st.integers(int(p.low), int(min(p.high, 12))))
        elif p.kind is float:
            params[p.name] = draw(st.floats(0.5, 3.0))
        else:
            params[p.name] = draw(st.sampled_from(p.choices))
    try:
        return spec, spec.validate(params)
    except IndicatorParamError:
        return spec, spec.validate({})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_and_params(), candle_series(), st.integers(0, 80))
def test_incremental_equals_full_on_random_series(
    chosen: tuple[IndicatorSpec, dict[str, Any]], candles: list[Candle], split: int
) -> None:
    spec, params = chosen
    replay(spec, candles, min(split, len(candles)), params)


@settings(max_examples=100, deadline=None)
@given(spec_and_params(), candle_series(), st.integers(0, 70))
def test_truncation_invariance_on_random_series(
    chosen: tuple[IndicatorSpec, dict[str, Any]], candles: list[Candle], stop: int
) -> None:
    spec, params = chosen
    frame = candles_from_records(candles)
    full, head = spec.compute(frame, params), spec.compute(frame.iloc[:stop], params)
    for output in spec.outputs:
        np.testing.assert_array_equal(head[output], full[output][:stop])
