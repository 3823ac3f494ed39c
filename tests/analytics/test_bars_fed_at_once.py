"""A batch's bars fed to a symbol's indicators column by column (SymbolBars.update_many)
equal the same bars fed one at a time (update), to the bit: every kept bar's raw values,
calendar and snapshot, and the state the next bars are fed on."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from analytics.label_config import load_label_config
from analytics.market_context import BarSnapshot
from analytics.symbol_bars import OHLCV, SymbolBars
from market.calendars import ALWAYS_OPEN
from market.candles import Candle
from market.sample_data import generate_session_walk

CONFIG = load_label_config()
BAR = pd.Timedelta(minutes=1)


def _same(a, b) -> bool:
    """Equal to the bit, NaN equal to NaN, through tuples."""
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, BarSnapshot):  # its fields (a dataclass compares NaN unequal)
        return isinstance(b, BarSnapshot) and _same(_fields(a), _fields(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and _same(list(a.values()), list(b.values()))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a.hex() == b.hex()
    return a == b


def _fields(snapshot: BarSnapshot) -> list:
    return [getattr(snapshot, f.name) for f in fields(snapshot)]


def _candles(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.cumprod(1 + rng.normal(0, 0.002, n))
    frame = pd.DataFrame(
        {
            "open": close * (1 + rng.normal(0, 0.001, n)),
            "high": close * (1 + np.abs(rng.normal(0, 0.002, n))),
            "low": close * (1 - np.abs(rng.normal(0, 0.002, n))),
            "close": close,
            "volume": rng.integers(1, 1000, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"),
    )
    frame.iloc[n // 3 : n // 3 + 30, frame.columns.get_loc("high")] = frame["close"].iloc[
        n // 3 : n // 3 + 30
    ]  # some bars of no range (a zero true range)
    return frame


def _rows(frame: pd.DataFrame) -> tuple[list[int], list[tuple[float, ...]]]:
    opens = frame.index.as_unit("ns").asi8.tolist()
    rows = list(zip(*(frame[c].to_numpy(dtype=np.float64).tolist() for c in OHLCV), strict=True))
    return opens, rows


def _kept(bars: SymbolBars) -> list:
    return [(close, raw, cal) for close, (raw, cal) in zip(bars._closes, bars._recent, strict=True)]


@pytest.mark.parametrize("history", [0, 5, 300])
@pytest.mark.parametrize("calendar", [None, ALWAYS_OPEN])
@pytest.mark.parametrize("chunks", [(1000,), (3, 17, 200, 1, 779), (250, 750)])
def test_bars_fed_at_once_equal_bars_fed_one_at_a_time(history, calendar, chunks):
    frame = _candles(history + sum(chunks) + 50, seed=history + len(chunks))
    warm = frame.iloc[:history] if history else None
    one = SymbolBars(CONFIG, BAR, calendar=calendar, history=warm, keep_bars=64)
    many = SymbolBars(CONFIG, BAR, calendar=calendar, history=warm, keep_bars=64)
    opens, rows = _rows(frame.iloc[history:])
    start = 0
    for size in (*chunks, 50):
        for open_ns, row in zip(
            opens[start : start + size], rows[start : start + size], strict=True
        ):
            one.update(Candle(None, *row), open_ns)  # type: ignore[arg-type]
        many.update_many(opens[start : start + size], rows[start : start + size])
        start += size
        assert _same(_kept(one), _kept(many))
        assert one._dropped == many._dropped
        assert one.last_open_ns == many.last_open_ns
        times = (np.array(opens[max(0, start - 60) : start]) + BAR.value + 7).tolist()
        a, a_of = one.bars_at(times)
        b, b_of = many.bars_at(times)
        assert a_of == b_of
        assert _same(a, b)


def test_a_session_market_fed_at_once_reads_the_same_calendars():
    frame = generate_session_walk("X", "5m", "2024-01-01", days=40, seed=3)[list(OHLCV)]
    one = SymbolBars(CONFIG, _bar(frame), keep_bars=4096)
    many = SymbolBars(CONFIG, _bar(frame), keep_bars=4096)
    opens, rows = _rows(frame)
    for open_ns, row in zip(opens, rows, strict=True):
        one.update(Candle(None, *row), open_ns)  # type: ignore[arg-type]
    for start in range(0, len(opens), 700):
        many.update_many(opens[start : start + 700], rows[start : start + 700])
    assert _same(_kept(one), _kept(many))


def test_bars_out_of_order_are_refused_as_one_at_a_time():
    frame = _candles(60, seed=1)
    bars = SymbolBars(CONFIG, BAR, history=frame.iloc[:40])
    opens, rows = _rows(frame.iloc[40:])
    with pytest.raises(ValueError, match="not after the last one"):
        bars.update_many(opens[::-1], rows[::-1])


def _bar(frame: pd.DataFrame) -> pd.Timedelta:
    return pd.Timedelta(int(np.diff(frame.index.as_unit("ns").asi8).min()))
