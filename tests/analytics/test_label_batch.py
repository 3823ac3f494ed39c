"""The column-wise labels (analytics.label_batch) against the per-fill rule (fill_context and
fill_labels), on random books over random bars: a market with session hours (its calendar
read as of each bar), a 24/7 one, a symbol without bars, fills before the first bar closed,
exit reasons and news events near some fills. Equal to the bit: the same context dicts and
the same labels, fill for fill."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from analytics.label_batch import MIN_COLUMNS, FillColumns, annotate_columns
from analytics.label_config import load_label_config
from analytics.labels import Fill, FillBook, NewsCalendar, SymbolBars, fill_labels
from analytics.market_context import fill_context
from market.sample_data import generate_random_walk
from tests.analytics.random_books import next_fill

CONFIG = load_label_config()
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def bars_of(kind: str, seed: int) -> tuple[pd.DataFrame | None, pd.Timedelta]:
    """Random bars: ``session`` 30-minute bars on weekdays 14:30-21:00 UTC, ``always`` 5-minute
    bars around the clock, ``none`` no bars (the tracker's one-minute bar)."""
    if kind == "none":
        return None, pd.Timedelta(minutes=1)
    if kind == "always":
        return generate_random_walk("X", "5m", T0, 6000, seed=seed), pd.Timedelta(minutes=5)
    frame = generate_random_walk("X", "30m", T0, 48 * 90, seed=seed)
    minute = frame.index.hour * 60 + frame.index.minute
    keep = (frame.index.day_of_week < 5) & (minute >= 14 * 60 + 30) & (minute < 21 * 60)
    return frame[keep], pd.Timedelta(minutes=30)


def random_fills(rng: np.random.Generator, n: int, start: pd.Timestamp, span: pd.Timedelta):
    """n fills of two accounts in time order, a few at the same time, some with reasons."""
    offsets = np.sort(rng.integers(0, span.value // 1000, size=n)) * 1000
    offsets[1::7] = offsets[0::7][: len(offsets[1::7])]  # some fills share a time
    minute = 60_000_000_000
    offsets[::3] = offsets[::3] // minute * minute  # a third on whole minutes (session edges)
    offsets.sort()
    held: dict[str, float] = {}
    reasons = [None, None, None, "stop_loss", "take_profit", "stoploss_on_exchange", ""]
    out = []
    for k, offset in enumerate(offsets.tolist()):
        account = f"a{rng.integers(2)}"
        side, volume = next_fill(rng, held, account)
        price = float(np.round(100 * np.exp(rng.normal(0, 0.05)), 4))
        reason = reasons[rng.integers(len(reasons))]
        out.append(Fill(account, "X", side, price, volume, start.value + offset, 0.1, f"t{k}",
                        "s", reason or None))  # fmt: skip
    return out


def news_near(rng: np.random.Generator, fills: list[Fill]) -> NewsCalendar:
    """Events a few minutes around some fills: of the symbol, of every symbol, of another."""
    picked = rng.choice(len(fills), size=max(1, len(fills) // 15), replace=False)
    times = [fills[i].time_ns + int(rng.integers(-90, 90)) * 60_000_000_000 for i in picked]
    symbols = [["X", None, "Y"][int(rng.integers(3))] for _ in picked]
    frame = pd.DataFrame({"time": pd.to_datetime(times, utc=True), "title": "event",
                          "symbol": symbols})  # fmt: skip
    return NewsCalendar(frame)


@pytest.mark.parametrize("kind", ["session", "always", "none"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_column_wise_labels_and_context_equal_the_per_fill_rule(kind, seed):
    rng = np.random.default_rng(seed)
    candles, bar = bars_of(kind, seed)
    symbol_bars = SymbolBars(CONFIG, bar, history=candles, keep_bars=100_000)
    start = T0 - pd.Timedelta(hours=2)  # some fills before the first bar closed
    span = (candles.index[-1] - start) if candles is not None else pd.Timedelta(days=30)
    fills = random_fills(rng, 1500, start, span)
    news = news_near(rng, fills)
    configs = [CONFIG, dataclasses.replace(
        CONFIG, breakout=dataclasses.replace(CONFIG.breakout, beyond_atr=0.0),
        quick_exit_max_bars=2.5, enabled=CONFIG.enabled - {"momentum"},
    )]  # fmt: skip
    for config in configs:
        book = FillBook(config)
        roles = [book.apply(f) for f in fills]
        bars, of = symbol_bars.bars_at([f.time_ns for f in fills])
        expected = []
        for f, role in zip(fills, roles, strict=True):
            snapshot, calendar = symbol_bars.bar_at(f.time_ns)
            expected.append((
                fill_context(snapshot, calendar, f.time_ns, f.price, config),
                fill_labels(config, symbol_bars.bar_ns, snapshot, calendar, f, role, news),
            ))  # fmt: skip
        # the whole book at once, and in pieces (a piece below MIN_COLUMNS: the per-fill path)
        for cut in (len(fills), MIN_COLUMNS - 1, 97):
            got = []
            for a in range(0, len(fills), cut):
                part = slice(a, a + cut)
                contexts, labels = annotate_columns(
                    config, symbol_bars.bar_ns, "X", columns(fills[part], roles[part]),
                    bars, np.array(of[part], dtype=np.int64), news,
                )  # fmt: skip
                got.extend(zip(contexts, labels, strict=True))
            for k, (want, have) in enumerate(zip(expected, got, strict=True)):
                assert have[1] == want[1], (k, fills[k])
                assert have[0] == want[0], (k, fills[k])
                assert list(have[0]) == list(want[0])  # the keys' order (the stored JSON's)
    labels = {name for _, names in expected for name in names}
    assert {"news_event", "stop_loss", "quick_exit", "aggressive_entry"} <= labels
    if kind != "none":
        assert {"high_volatility", "low_volatility", "trend_following", "breakout"} <= labels
        assert any(c["volatility_regime"] is None for c, _ in expected)  # before the first bar
    if kind == "session":
        sessions = {c["market_session"] for c, _ in expected}
        assert {"regular", "pre_market", "after_hours"} <= sessions
        assert {"market_open", "market_close"} <= labels


def columns(fills: list[Fill], roles: list) -> FillColumns:
    return FillColumns(
        np.array([f.time_ns for f in fills], dtype=np.int64),
        np.array([f.price for f in fills]),
        np.array([1 if f.side == "buy" else -1 for f in fills], dtype=np.int64),
        np.array([r.opened for r in roles]),
        np.array([r.trailing_median for r in roles]),
        np.array([r.closed for r in roles]),
        np.array([r.entry_price for r in roles]),
        np.array([r.entry_ns for r in roles], dtype=np.int64),
        np.array([r.direction for r in roles], dtype=np.int64),
        [f.reason for f in fills],
    )
