"""Market context and trade labels (analytics/market_context.py, analytics/labels.py) and their
configuration (analytics/label_config.py).

Each rule is checked on hand-made bars whose answer is worked out in the test's comments (not
recomputed by the same formula); "only what existed at the fill" is checked by truncation on
real series (the S&P 500 daily bars and the generated one-minute DEMO walk, plus a stock-like
session walk): the context and labels of a fill computed from everything equal those computed
from the bars closed by its time and the fills up to it; the live Labeller equals the batch
functions after every fill.
"""

from __future__ import annotations

import json
from itertools import count
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator

import market.calendars as calendars
from analytics.label_config import (
    LABEL_CONFIG_PATH,
    LABEL_SCHEMA_PATH,
    LABELS,
    LabelConfigError,
    load_label_config,
    parse_label_config,
)
from analytics.labels import Labeller, SymbolBars, annotate_fills, label_fills
from analytics.market_context import CONTEXT_KEYS, fill_times_ns, market_context
from analytics.sessions import CalendarGrid, CalendarWindow
from analytics.symbol_bars import FrameBars
from database.records import TradeRecord
from market.calendars import ALWAYS_OPEN, TradingCalendar, infer_calendar
from market.candles import iter_candles
from market.sample_data import generate_session_walk, load_sample

CONFIG = load_label_config()
MINUTE = pd.Timedelta(minutes=1)
START = pd.Timestamp("2024-01-02 10:00", tz="UTC")  # a Tuesday, away from the UTC day's edges


def bars(closes, ranges=2.0, volumes=100.0, start=START, bar=MINUTE) -> pd.DataFrame:
    """Bars closing at ``closes``, each ``ranges`` high to low around its close."""
    closes = np.asarray(closes, dtype=float)
    half = np.broadcast_to(np.asarray(ranges, dtype=float) / 2, closes.shape)
    index = pd.DatetimeIndex(start + bar * np.arange(len(closes)), name="ts")
    return pd.DataFrame(
        {
            "open": closes,
            "high": closes + half,
            "low": closes - half,
            "close": closes,
            "volume": np.broadcast_to(np.asarray(volumes, dtype=float), closes.shape),
        },
        index=index,
    )


def quiet(n: int = 200, **kw) -> pd.DataFrame:
    """Closes 100, 102, 100, ...: true range 3 (ATR 3), RSI near 50, SMA 101 flat (sideways),
    Bollinger(20, 2) 99..103, Donchian(20) 99..103, constant volume (z 0): no label of its own."""
    return bars(100.0 + 2.0 * (np.arange(n) % 2), **kw)


_ids = count()


def fills_frame(*rows: dict) -> pd.DataFrame:
    """A fills frame from (time, side, price[, volume, account_id, reason ...]) dicts."""
    base = {"account_id": "acc", "strategy_id": "s", "symbol": "X", "volume": 1.0, "commission": 0}
    frame = pd.DataFrame([{"trade_id": f"t{next(_ids)}", **base, **row} for row in rows])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def after(candles: pd.DataFrame, k: int, bar=MINUTE) -> pd.Timestamp:
    """The moment bar ``k`` closes."""
    return candles.index[k] + bar


def labels_of(candles, *rows, bar=MINUTE, config=CONFIG, **kw) -> list[tuple[str, ...]]:
    return label_fills(fills_frame(*rows), candles, bar, config, **kw)


def context_of(candles, time, price, bar=MINUTE, config=CONFIG, **kw) -> dict:
    frame = fills_frame({"time": time, "side": "buy", "price": price})
    return market_context(candles, bar, frame, config, **kw)[0]


# -- configuration --------------------------------------------------------------------------


def _schema_defaults(node: dict) -> dict:
    return {
        key: _schema_defaults(sub) if sub.get("type") == "object" else sub["default"]
        for key, sub in node["properties"].items()
    }


def test_shipped_config_is_valid_and_the_schema_states_its_values_as_defaults():
    schema = json.loads(LABEL_SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    shipped = json.loads(LABEL_CONFIG_PATH.read_text())
    assert list(Draft202012Validator(schema).iter_errors(shipped)) == []
    assert _schema_defaults(schema) == shipped
    assert set(shipped["labels"]) == set(LABELS)
    assert CONFIG.enabled == frozenset(LABELS)
    assert (CONFIG.volatility.high_percentile, CONFIG.stop_loss.loss_atr) == (80, 2.0)


def test_invalid_config_names_the_file_every_json_path_and_the_reason(tmp_path: Path):
    path = tmp_path / "labels.json"
    path.write_text(
        json.dumps(
            {
                "context": {"volatility": {"high_percentile": 120, "atr_perod": 3}},
                "labels": {"stop_loss": {"reasons": ["stop_loss", 7]}, "quick_exit": []},
            }
        )
    )
    with pytest.raises(LabelConfigError) as caught:
        load_label_config(path)
    error = caught.value
    assert dict(error.problems) == {
        "$.context.volatility.atr_perod": "unknown key (did you mean 'atr_period'?); allowed: "
        "atr_period, high_percentile, low_percentile, rank_window",
        "$.context.volatility.high_percentile": "120 is greater than the maximum of 100",
        "$.labels.quick_exit": "[] is not of type 'object'",
        "$.labels.stop_loss.reasons[1]": "7 is not of type 'string'",
    }
    assert str(error).startswith(f"{path}: 4 problem(s)\n  - $.context.volatility.atr_perod")


def test_rules_across_keys_are_checked_against_the_merged_config():
    with pytest.raises(LabelConfigError) as caught:
        parse_label_config(
            {
                "context": {"volatility": {"low_percentile": 85}},  # the default high is 80
                "labels": {"conservative_entry": {"max_size_vs_median": 2.0}},
            }
        )
    assert caught.value.problems == [
        ("$.context.volatility.low_percentile", "85 must be below high_percentile (80)"),
        (
            "$.labels.conservative_entry.max_size_vs_median",
            "2.0 must be below aggressive_entry.min_size_vs_median (1.5)",
        ),
    ]
    with pytest.raises(LabelConfigError, match=r"utc_sessions\[1\]\.name: 'asia' repeated"):
        parse_label_config(
            {
                "context": {
                    "session": {
                        "utc_sessions": [
                            {"name": "asia", "start_hour": 0},
                            {"name": "asia", "start_hour": 8},
                        ]
                    }
                }
            }
        )


def test_a_file_that_is_not_json_names_the_line(tmp_path: Path):
    path = tmp_path / "labels.json"
    path.write_text('{"labels":\n  {"stop_loss": }\n}')
    with pytest.raises(
        LabelConfigError, match=r"(?s)labels\.json: 1 problem.*\$: not JSON: .* line 2, column 17"
    ):
        load_label_config(path)


def test_a_partial_config_takes_the_rest_from_the_shipped_one(tmp_path: Path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"labels": {"hold_long": {"min_hold_bars": 10}}}))
    config = load_label_config(path)
    assert config.hold_long_min_bars == 10
    assert config.quick_exit_max_bars == CONFIG.quick_exit_max_bars
    assert config.sessions == CONFIG.sessions
    assert config.sessions.utc_sessions == ((7.0, "europe"), (13.0, "america"), (22.0, "asia"))


def test_a_disabled_label_is_never_given():
    candles = bars(100.0 + np.arange(120.0))
    rows = {"time": after(candles, 110), "side": "buy", "price": 210.0}
    assert labels_of(candles, rows) == [("trend_following", "momentum")]
    config = parse_label_config({"labels": {"momentum": {"enabled": False}}})
    assert labels_of(candles, rows, config=config) == [("trend_following",)]


# -- market context: each part on bars whose answer is known ---------------------------------

SMALL_ATR = parse_label_config({"context": {"volatility": {"atr_period": 2, "rank_window": 10}}})


def test_volatility_regime_ranks_the_atr_share_against_its_own_window():
    # closes stay at 100, so a bar's true range is its range and ATR(2) moves by halves
    flat = bars([100.0] * 20)
    ctx = context_of(flat, after(flat, 19), 100.0, config=SMALL_ATR)
    # ten equal ATR shares: the current one ranks in the middle (0 below + 10/2 equal) / 10
    assert (ctx["atr"], ctx["atr_pct"], ctx["atr_pct_rank"]) == (2.0, 2.0, 50.0)
    assert ctx["volatility_regime"] == "medium"

    spike = bars([100.0] * 21, ranges=[2.0] * 20 + [20.0])
    ctx = context_of(spike, after(spike, 20), 100.0, config=SMALL_ATR)
    # ATR = (2 + 20) / 2 = 11, above the nine 2's before it: (9 + 1/2) / 10 = 95 %
    assert (ctx["atr"], ctx["atr_pct_rank"], ctx["volatility_regime"]) == (11.0, 95.0, "high")

    calming = bars([100.0] * 21, ranges=[4.0] * 20 + [2.0])
    ctx = context_of(calming, after(calming, 20), 100.0, config=SMALL_ATR)
    # ATR = (4 + 2) / 2 = 3, below the nine 4's: (0 + 1/2) / 10 = 5 %
    assert (ctx["atr"], ctx["atr_pct_rank"], ctx["volatility_regime"]) == (3.0, 5.0, "low")
    spike_fill = {"time": after(spike, 20), "side": "buy", "price": 100.0}
    assert "high_volatility" in labels_of(spike, spike_fill, config=SMALL_ATR)[0]
    calm_fill = {"time": after(calming, 20), "side": "buy", "price": 100.0}
    assert "low_volatility" in labels_of(calming, calm_fill, config=SMALL_ATR)[0]


@pytest.mark.parametrize(
    ("step", "trend", "to_sma"),
    [(1.0, "uptrend", 12.25), (-1.0, "downtrend", -12.25), (0.0, "sideways", 0.0)],
)
def test_trend_is_the_close_against_its_sma_with_the_sma_sloping(step, trend, to_sma):
    # closes move `step` a bar with ranges of 2: true range 2, so ATR 2; SMA(50) of a line
    # lags its last close by 24.5 steps: 12.25 ATRs, beyond the 0.5-ATR band
    candles = bars(500.0 + step * np.arange(120.0))
    ctx = context_of(candles, after(candles, 119), 400.0)
    assert (ctx["trend"], ctx["close_vs_sma_atr"], ctx["atr"]) == (trend, to_sma, 2.0)
    assert np.sign(ctx["sma_slope_pct"]) == np.sign(step)


@pytest.mark.parametrize(("last", "z", "profile"), [(130, 3.0, "high"), (100, 0.0, "medium")])
def test_volume_profile_is_a_zscore_against_the_bars_before(last, z, profile):
    # 20 bars of 90 and 110 before: mean 100, population deviation 10
    candles = quiet(41, volumes=[90.0, 110.0] * 20 + [last])
    ctx = context_of(candles, after(candles, 40), 101.0)
    assert (ctx["volume_z"], ctx["volume_profile"]) == (z, profile)
    candles = quiet(41, volumes=[90.0, 110.0] * 20 + [80.0])
    assert context_of(candles, after(candles, 40), 101.0)["volume_profile"] == "low"  # z = -2


@pytest.mark.parametrize(
    ("price", "level"),
    [(102.4, "resistance"), (103.6, "resistance"), (99.9, "support"), (101.0, "neutral")],
)
def test_price_level_is_the_distance_to_the_donchian_channel_in_atrs(price, level):
    # the quiet bars' channel is 99..103 and their ATR 3: within 0.5 ATR = 1.5 of an edge
    candles = quiet(60)
    ctx = context_of(candles, after(candles, 59), price)
    assert (ctx["donchian_high"], ctx["donchian_low"], ctx["atr"]) == (103.0, 99.0, 3.0)
    assert ctx["price_level"] == level


STOCK = TradingCalendar((5, 6), (14.5, 21.0))


@pytest.mark.parametrize(
    ("clock", "calendar", "session"),
    [
        ("15:00", STOCK, "regular"),
        ("14:30", STOCK, "regular"),
        ("20:59", STOCK, "regular"),
        ("21:00", STOCK, "after_hours"),
        ("09:00", STOCK, "pre_market"),  # 330 minutes before 14:30
        ("08:59", STOCK, "after_hours"),
        ("23:00", TradingCalendar((), (22.0, 6.0)), "regular"),  # a session across midnight
        ("05:59", TradingCalendar((), (22.0, 6.0)), "regular"),
        ("06:00", TradingCalendar((), (22.0, 6.0)), "after_hours"),
        ("03:00", ALWAYS_OPEN, "asia"),  # asia 22:00-07:00, europe 07-13, america 13-22 UTC
        ("07:00", ALWAYS_OPEN, "europe"),
        ("12:59", ALWAYS_OPEN, "europe"),
        ("13:00", ALWAYS_OPEN, "america"),
        ("22:30", ALWAYS_OPEN, "asia"),
    ],
)
def test_market_session(clock, calendar, session):
    time = pd.Timestamp(f"2024-01-03 {clock}", tz="UTC")
    assert context_of(quiet(5), time, 100.0, calendar=calendar)["market_session"] == session


@pytest.mark.parametrize(
    ("clock", "calendar", "expected"),
    [
        ("14:40", STOCK, ("market_open",)),
        ("14:59:59", STOCK, ("market_open",)),
        ("15:00", STOCK, ()),
        ("20:30", STOCK, ("market_close",)),  # 30 minutes left
        ("20:29", STOCK, ()),
        ("21:10", STOCK, ()),  # after the close
        ("00:05", ALWAYS_OPEN, ("market_open",)),  # the UTC day stands for the session
        ("23:45", ALWAYS_OPEN, ("market_close",)),
    ],
)
def test_market_open_and_close_are_the_sessions_first_and_last_minutes(clock, calendar, expected):
    time = pd.Timestamp(f"2024-01-03 {clock}", tz="UTC")
    assert labels_of(
        quiet(5), {"time": time, "side": "buy", "price": 101.0}, calendar=calendar
    ) == [expected]


def test_the_session_is_read_from_the_bars_closed_by_the_fill():
    candles = generate_session_walk("STOCK", "1h", "2024-01-01", 28, seed=1)  # 14:00-21:00
    early = pd.Timestamp("2024-01-01 18:30", tz="UTC")  # five bars seen: no session known yet
    later = pd.Timestamp("2024-01-10 18:30", tz="UTC")
    rows = fills_frame(*({"time": t, "side": "buy", "price": 100.0} for t in (early, later)))
    contexts = market_context(candles, pd.Timedelta(hours=1), rows, CONFIG)
    assert [c["market_session"] for c in contexts] == ["america", "regular"]


def _walks() -> list[tuple[str, pd.DataFrame, pd.Timedelta]]:
    fx_weekend = (pd.Timedelta(days=4, hours=22), pd.Timedelta(days=6, hours=22))
    return [
        ("stock 1h", generate_session_walk("S", "1h", "2024-01-01", 40, 1), pd.Timedelta("1h")),
        (
            "fx 1h",
            generate_session_walk("F", "1h", "2024-01-01", 30, 2, session=None, weekend=fx_weekend),
            pd.Timedelta("1h"),
        ),
        ("stock 5m", generate_session_walk("S", "5m", "2024-01-01", 9, 3), pd.Timedelta("5m")),
        ("sp500 1d", load_sample("SP500").iloc[:120], pd.Timedelta(days=1)),
    ]


@pytest.mark.parametrize("size", [calendars.SAMPLE_BARS, 150])
def test_calendar_window_equals_infer_calendar_after_every_bar(monkeypatch, size):
    monkeypatch.setattr(calendars, "SAMPLE_BARS", size)  # a window that slides, at 150
    for name, candles, bar in _walks():
        window = CalendarWindow(bar, size)
        for i, open_ns in enumerate(candles.index.as_unit("ns").asi8.tolist()):
            window.update(open_ns)
            assert window.calendar() == infer_calendar(candles.index[: i + 1], bar), (name, i)


@pytest.mark.parametrize("size", [calendars.SAMPLE_BARS, 150, 7])
def test_calendars_at_positions_equal_the_window_fed_every_bar(size):
    rng = np.random.default_rng(size)
    for name, candles, bar in _walks():
        opens = candles.index.as_unit("ns").asi8
        window, expected = CalendarWindow(bar, size), []
        for open_ns in opens.tolist():
            window.update(open_ns)
            expected.append(window.calendar())
        # every bar; sparse positions (the window slides past everything counted); repeats
        for positions in (
            range(len(opens)),
            sorted(rng.choice(len(opens), size=12, replace=False).tolist()),
            [3, 3, 1, len(opens) - 1, -1],
        ):
            got = CalendarGrid(opens, int(bar.value), size).at(positions)
            assert got == {i: expected[i] for i in positions if i >= 0}, (name, size)
        # one grid asked in turn: forward in steps, then behind what it counted
        grid = CalendarGrid(opens, int(bar.value), size)
        steps = np.cumsum(rng.integers(1, 40, size=len(opens)))
        forward = [part.tolist() for part in np.array_split(steps[steps < len(opens)], 5)]
        for positions in [*forward, [2, 0], [len(opens) - 1]]:
            got = grid.at(positions)
            assert sorted(got) == sorted(set(positions)), name
            assert got == {i: expected[i] for i in got}, (name, size)


def test_the_bar_a_fill_sees_is_the_last_closed_at_or_before_it():
    candles = quiet(30)
    ctx = context_of(candles, after(candles, 25), 101.0)  # bar 25 closes exactly then
    assert ctx["bar_open"] == candles.index[25].isoformat()
    ctx = context_of(candles, after(candles, 25) - pd.Timedelta(1, "ns"), 101.0)
    assert ctx["bar_open"] == candles.index[24].isoformat()


def test_context_before_the_indicators_warm_up_is_null():
    candles = quiet(30)
    before_any = context_of(candles, START + pd.Timedelta(seconds=30), 101.0)
    assert set(before_any) == set(CONTEXT_KEYS)
    assert before_any["market_session"] == "europe"
    assert all(v is None for k, v in before_any.items() if k != "market_session")
    early = context_of(candles, after(candles, 3), 101.0)  # four bars: no ATR(14) yet
    assert early["close"] == 102.0
    assert [early[k] for k in ("atr", "volatility_regime", "trend", "price_level")] == [None] * 4


# -- labels: each rule on hand-made bars -----------------------------------------------------


def test_entries_with_a_rising_market():
    # closes 100, 101, ... 219 (ATR 2): uptrend, RSI 100, 10 bars rose 10 = 5 ATRs, the
    # 20-bar channel's high is the last close + 1
    candles = bars(100.0 + np.arange(120.0))
    t = after(candles, 110)  # the last close: 210
    got = labels_of(
        candles,
        {"time": t, "side": "buy", "price": 210.0, "account_id": "a"},
        {"time": t, "side": "buy", "price": 211.5, "account_id": "b"},  # above 211: breakout
        {"time": t, "side": "sell", "price": 210.0, "account_id": "c"},  # a short against it
    )
    assert got == [
        ("trend_following", "momentum"),
        ("trend_following", "momentum", "breakout"),
        ("mean_reversion",),  # RSI 100 >= 70
    ]


def test_entries_with_a_falling_market():
    candles = bars(400.0 - np.arange(120.0))
    t = after(candles, 110)  # the last close: 290, the channel's low 289
    got = labels_of(
        candles,
        {"time": t, "side": "sell", "price": 288.0, "account_id": "a"},
        {"time": t, "side": "buy", "price": 290.0, "account_id": "b"},
    )
    assert got == [("trend_following", "momentum", "breakout"), ("mean_reversion",)]


def test_mean_reversion_at_a_bollinger_band():
    candles = quiet(60)  # RSI near 50; the bands 99..103
    t = after(candles, 59)
    got = labels_of(
        candles,
        {"time": t, "side": "buy", "price": 98.9, "account_id": "a"},  # below the lower band
        {"time": t, "side": "buy", "price": 99.5, "account_id": "b"},
        {"time": t, "side": "sell", "price": 103.0, "account_id": "c"},  # at the upper band
    )
    assert got == [("mean_reversion",), (), ("mean_reversion",)]


def test_exits_by_holding_time_and_move():
    # quiet 1m bars, ATR 3: quick_exit <= 3 bars, hold_long >= 50 bars, scalping <= 15 minutes
    # and a move of at most 1 ATR
    candles = quiet(300)
    t = after(candles, 100)
    m = pd.Timedelta(minutes=1)
    got = labels_of(
        candles,
        {"time": t, "side": "buy", "price": 101.0},
        {"time": t + 2 * m, "side": "sell", "price": 101.5},  # 2 minutes, +0.5
        {"time": t + 3 * m, "side": "buy", "price": 101.0},
        {"time": t + 13 * m, "side": "sell", "price": 101.5},  # 10 minutes, +0.5
        {"time": t + 14 * m, "side": "buy", "price": 101.0},
        {"time": t + 16 * m, "side": "sell", "price": 104.5},  # 2 minutes, +3.5 (> 1 ATR)
        {"time": t + 17 * m, "side": "buy", "price": 101.0},
        {"time": t + 77 * m, "side": "sell", "price": 101.5},  # 60 minutes
    )
    assert got[1::2] == [
        ("scalping", "quick_exit"),
        ("scalping",),
        ("quick_exit",),
        ("hold_long",),
    ]


def test_stop_loss_by_the_loss_in_atrs_or_the_exit_reason():
    candles = quiet(300)  # ATR 3: a stop distance of 2 ATRs is 6
    t = after(candles, 100)
    m = pd.Timedelta(minutes=20)  # held over 15 minutes and under 50 bars: no other label
    h = pd.Timedelta(hours=2)
    got = labels_of(
        candles,
        {"time": t, "side": "buy", "price": 101.0},
        {"time": t + m, "side": "sell", "price": 94.9},  # long: lost 6.1
        {"time": t + 2 * m, "side": "buy", "price": 101.0},
        {"time": t + 3 * m, "side": "sell", "price": 95.5},  # lost 5.5
        {"time": t + 4 * m, "side": "sell", "price": 101.0},
        {"time": t + 5 * m, "side": "buy", "price": 107.5},  # short: lost 6.5
        {"time": t + h, "side": "buy", "price": 101.0},
        {"time": t + h + m, "side": "sell", "price": 102.0, "reason": "stop_loss"},  # a gain
        {"time": t + 2 * h, "side": "buy", "price": 101.0},
        {"time": t + 2 * h + m, "side": "sell", "price": 101.0, "reason": "take_profit"},
    )
    assert got[1::2] == [("stop_loss",), (), ("stop_loss",), ("stop_loss",), ()]


def test_holding_time_runs_from_the_fill_that_opened_the_position():
    candles = quiet(300)
    t = after(candles, 100)
    m = pd.Timedelta(minutes=1)
    got = labels_of(
        candles,
        {"time": t, "side": "buy", "price": 101.0},
        {"time": t + 40 * m, "side": "buy", "price": 101.0},  # adds to the position
        {"time": t + 55 * m, "side": "sell", "price": 101.0},  # 55 minutes since it opened
        {"time": t + 56 * m, "side": "sell", "price": 101.0},  # closes it
        {"time": t + 57 * m, "side": "buy", "price": 101.0},
        {"time": t + 58 * m, "side": "sell", "price": 101.0, "volume": 3.0},  # flips to short
        {"time": t + 60 * m, "side": "buy", "price": 101.0, "volume": 2.0},  # closes the short
    )
    assert got[2:4] == [("hold_long",), ("hold_long",)]
    assert got[5] == ("scalping", "quick_exit")  # held 1 minute, and opens a short of 2
    assert got[6] == ("scalping", "quick_exit")  # the short opened by the flip, 2 minutes


def test_entry_size_against_the_accounts_trailing_entries():
    candles = quiet(300)
    t = after(candles, 100)
    s = pd.Timedelta(seconds=1)
    five = [{"time": t + i * s, "side": "buy", "price": 101.0} for i in range(5)]
    got = labels_of(
        candles,
        {"time": t, "side": "buy", "price": 101.0, "volume": 9.0, "account_id": "other"},
        *five[:4],
        {"time": t + 4 * s, "side": "buy", "price": 101.0, "volume": 3.0},  # 4 earlier: too few
        {"time": t + 5 * s, "side": "sell", "price": 101.0, "volume": 8.0},  # an exit: not a size
        *(dict(row, time=t + (10 + i) * s) for i, row in enumerate(five)),
        # trailing notionals now 101 x [1, 1, 1, 1, 3, 1, 1, 1, 1, 1]: median 101
        {"time": t + 20 * s, "side": "buy", "price": 101.0, "volume": 1.5},  # 1.5 x median
        {"time": t + 21 * s, "side": "buy", "price": 101.0, "volume": 0.5},  # 0.5 x median
        {"time": t + 22 * s, "side": "buy", "price": 101.0, "volume": 1.2},
    )
    assert got[5] == ()  # the fifth entry: the other account's sizes do not count
    assert got[-3:] == [("aggressive_entry",), ("conservative_entry",), ()]
    assert "aggressive_entry" not in got[6]  # exits are not compared


def test_news_event_within_its_window_of_an_event_of_the_symbol_or_of_every_symbol():
    news = pd.DataFrame(
        {
            "time": pd.to_datetime(["2024-01-03 14:00", "2024-01-03 18:00"], utc=True),
            "title": ["CPI", "earnings of Y"],
            "symbol": [None, "Y"],
        }
    )
    times = ["13:44", "13:45", "14:00", "14:30", "14:31", "18:00"]
    rows = [
        {"time": pd.Timestamp(f"2024-01-03 {c}", tz="UTC"), "side": "buy", "price": 101.0}
        for c in times
    ]
    got = labels_of(quiet(5), *rows, news=news)
    # 15 minutes before an event to 30 after it; Y's event is not X's
    assert ["news_event" in g for g in got] == [False, True, True, True, False, False]
    x_news = news.assign(symbol=[None, "X"])
    assert "news_event" in labels_of(quiet(5), rows[-1], news=x_news)[0]


def test_fills_in_any_row_order_get_their_own_labels():
    candles = quiet(300)
    t = after(candles, 100)
    rows = [
        {"time": t, "side": "buy", "price": 101.0},
        {"time": t + MINUTE, "side": "sell", "price": 101.0},
    ]
    frame = fills_frame(*rows)
    forward = label_fills(frame, candles, MINUTE, CONFIG)
    assert forward == [(), ("scalping", "quick_exit")]
    backward = label_fills(frame.iloc[::-1], candles, MINUTE, CONFIG)
    assert backward == forward[::-1]
    with pytest.raises(ValueError, match="one symbol per call"):
        label_fills(frame.assign(symbol=["X", "Y"]), candles, MINUTE, CONFIG)


# -- only what existed at the fill: truncation on real series ------------------------------


def _series(name: str) -> tuple[pd.DataFrame, pd.Timedelta]:
    if name == "SP500":
        return load_sample("SP500"), pd.Timedelta(days=1)
    if name == "DEMO":
        return load_sample("DEMO"), MINUTE
    return generate_session_walk("STOCK", "5m", "2024-01-01", 40, seed=5), pd.Timedelta("5min")


def random_fills(candles: pd.DataFrame, bar: pd.Timedelta, n: int, seed: int) -> pd.DataFrame:
    """``n`` fills of two accounts at random times (a quarter exactly at a bar's close, half
    within four bars of the one before, some sharing a time), around the last close by a few
    bar ranges, sometimes with an exit reason."""
    rng = np.random.default_rng(seed)
    closes = (candles.index + bar).as_unit("ns").asi8
    times = rng.integers(closes[0] - bar.value, closes[-1], n)
    exact = rng.random(n) < 0.25
    times[exact] = rng.choice(closes, exact.sum())
    times = np.sort(times)
    for k in np.flatnonzero(rng.random(n) < 0.5)[1:]:  # half soon after the one before
        times[k] = times[k - 1] + rng.integers(0, 4 * bar.value)
    times[1::7] = times[0::7][: len(times[1::7])]  # equal times: order decides
    times = np.sort(np.minimum(times, closes[-1]))
    last = np.maximum(np.searchsorted(closes, times, side="right") - 1, 0)
    spread = (candles["high"] - candles["low"]).to_numpy()[last]
    price = candles["close"].to_numpy()[last] + rng.normal(0, 1.5, n) * spread
    return pd.DataFrame(
        {
            "trade_id": [f"f{i}" for i in range(n)],
            "account_id": rng.choice(["a", "b"], n),
            "strategy_id": "s",
            "symbol": "X",
            "side": rng.choice(["buy", "sell"], n),
            "price": price,
            "volume": rng.choice([0.5, 1.0, 1.0, 2.0, 3.5], n),
            "commission": 0.01,
            "time": pd.to_datetime(times, utc=True),
            "reason": rng.choice([None, None, None, "stop_loss", "signal"], n),
        }
    )


def _news(candles: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.choice(candles.index.as_unit("ns").asi8, 30))
    return pd.DataFrame(
        {
            "time": pd.to_datetime(times + rng.integers(0, 10**11, 30), utc=True),
            "title": "event",
            "symbol": rng.choice([None, "X", "Y"], 30),
        }
    )


@pytest.mark.parametrize("name", ["SP500", "DEMO", "STOCK"])
def test_context_and_labels_use_only_what_existed_at_each_fill(name):
    candles, bar = _series(name)
    fills = random_fills(candles, bar, 60, seed=len(name))
    news = _news(candles, seed=3)
    contexts = market_context(candles, bar, fills, CONFIG)
    labels = label_fills(fills, candles, bar, CONFIG, news=news)
    # events are scheduled: the calendar is known ahead, so it stays whole; with no window
    # ahead of an event, cutting the calendar at the fill changes nothing either
    past_only = parse_label_config({"labels": {"news_event": {"minutes_before": 0}}})
    past_labels = label_fills(fills, candles, bar, past_only, news=news)
    closes = candles.index + bar
    seen = set()
    for k, t in enumerate(fills["time"]):
        known = candles[closes <= t]  # the bars closed by the fill, none after
        so_far = fills.iloc[: k + 1]
        assert market_context(known, bar, so_far, CONFIG)[-1] == contexts[k], (name, k)
        assert label_fills(so_far, known, bar, CONFIG, news=news)[-1] == labels[k], (name, k)
        cut_news = news[news["time"] <= t]
        assert label_fills(so_far, known, bar, past_only, news=cut_news)[-1] == past_labels[k]
        seen.update(labels[k])
    assert {c["volatility_regime"] for c in contexts} >= {"high", "medium", "low"}
    assert seen >= {"quick_exit", "stop_loss", "trend_following", "mean_reversion", "breakout"}
    if name == "STOCK":
        sessions = {c["market_session"] for c in contexts}
        assert sessions >= {"pre_market", "regular", "after_hours"}


# -- the live Labeller equals the batch functions ------------------------------------------


@pytest.mark.parametrize("name", ["SP500", "DEMO", "STOCK"])
def test_labeller_equals_the_batch_functions_after_every_fill(name):
    candles, bar = _series(name)
    fills = random_fills(candles, bar, 400, seed=11)
    news = _news(candles, seed=4)
    contexts = market_context(candles, bar, fills, CONFIG)
    labels = label_fills(fills, candles, bar, CONFIG, news=news)
    assert annotate_fills(fills, candles, bar, CONFIG, news=news) == (contexts, labels)
    labeller = Labeller(CONFIG, bar, news=news)
    closes = (candles.index + bar).as_unit("ns").asi8
    rows = list(iter_candles(candles))
    j = 0
    for k, fill in enumerate(fills.to_dict("records")):
        while j < len(rows) and closes[j] <= pd.Timestamp(fill["time"]).value:
            # a Candle, or a candle frame's row (named by its open time)
            labeller.update_candle(rows[j] if j % 2 else candles.iloc[j])
            j += 1
        assert labeller.annotate(fill) == (contexts[k], labels[k]), (name, k)


def test_labeller_warm_started_on_history_and_a_fill_that_comes_after_a_later_candle():
    candles, bar = _series("DEMO")
    fills = random_fills(candles.iloc[5000:6000], bar, 100, seed=5)
    contexts = market_context(candles, bar, fills, CONFIG)
    labels = label_fills(fills, candles, bar, CONFIG)
    first = candles.index.get_loc(fills["time"].iloc[0].floor("min")) - 3
    labeller = Labeller(CONFIG, bar, history=candles.iloc[:first])
    rows = candles.iloc[first:]
    closes = rows.index + bar
    j = 0
    for k, fill in enumerate(fills.to_dict("records")):
        while closes[j] <= fill["time"] + 2 * bar:  # two bars later than the fill
            labeller.update_candle(rows.iloc[j])
            j += 1
        assert labeller.context(fill) == contexts[k]
        assert labeller.annotate(fill) == (contexts[k], labels[k]), k
    old = dict(fills.iloc[-1], time=fills["time"].iloc[-1] - 200 * bar)
    with pytest.raises(ValueError, match="older than the bars kept"):
        labeller.label(old)


def test_labeller_takes_a_trade_record():
    candles = quiet(300)
    labeller = Labeller(CONFIG, MINUTE, history=candles.iloc[:101])
    t = after(candles, 100)
    record = {"account_id": "acc", "strategy_id": "s", "symbol": "X", "price": 101.0, "volume": 1}
    assert labeller.label(TradeRecord(trade_id="1", side="buy", execution_time=t, **record)) == ()
    exit_ = TradeRecord(trade_id="2", side="sell", execution_time=t + MINUTE, **record)
    assert labeller.label(exit_) == ("scalping", "quick_exit")
    with pytest.raises(ValueError, match=r"fill: missing \['price'\]"):
        labeller.label(SimpleNamespace(account_id="a", symbol="X", side="buy", volume=1, time=t))


@pytest.mark.parametrize("name", ["SP500", "DEMO", "STOCK"])
def test_bars_given_whole_read_as_bars_fed_one_at_a_time(name):
    """FrameBars (a replay's bars, known up front) against SymbolBars fed each bar before
    the fills after it: the same snapshot and calendar for every fill, read in batches."""
    candles, bar = _series(name)
    times = np.sort(fill_times_ns(random_fills(candles, bar, 600, seed=8)))
    fed = SymbolBars(CONFIG, bar, keep_bars=len(candles))
    whole = FrameBars(CONFIG, bar, candles)
    closes = (candles.index + bar).as_unit("ns").asi8
    rows, j = list(iter_candles(candles)), 0
    for batch in np.array_split(times, 40):
        while j < len(rows) and closes[j] <= batch[-1]:
            fed.update(rows[j], int(candles.index[j].value))
            j += 1
        expected, expected_of = fed.bars_at(batch.tolist())
        got, got_of = whole.bars_at(batch)
        # repr: NaN fields equal too (and a float's repr is exact)
        assert [repr(got[k]) for k in got_of] == [repr(expected[k]) for k in expected_of]
    assert whole.covers(int(closes[-1]))
    with pytest.raises(ValueError, match="may read a bar after those given"):
        whole.bars_at([int(closes[-1] + 1)])


@pytest.mark.parametrize("name", ["SP500", "DEMO", "STOCK"])
@pytest.mark.parametrize("keep", [64, 100_000])
def test_bars_warmed_on_history_at_once_equal_bars_fed_it_one_at_a_time(name, keep):
    """SymbolBars(history=...) (indicators opened on the whole columns, the calendar and
    windows made from their ends, the kept bars read from a BarFrame) against the same
    bars fed one at a time: every fill after, and within, the history reads the same bar,
    and so do fills after further bars; a fill older than the kept bars is refused alike."""
    candles, bar = _series(name)
    cut = len(candles) * 2 // 3
    history, later = candles.iloc[:cut], candles.iloc[cut:]
    warmed = SymbolBars(CONFIG, bar, history=history, keep_bars=keep)
    fed = SymbolBars(CONFIG, bar, keep_bars=keep)
    fed.update_frame(history)
    assert warmed.last_open_ns == fed.last_open_ns
    times = np.sort(fill_times_ns(random_fills(candles, bar, 400, seed=3)))
    closes = (candles.index + bar).as_unit("ns").asi8
    rows, j = list(iter_candles(later)), 0
    refused = after = 0
    # batches of fills within half the kept bars of one another
    span = times // (bar.value * min(keep // 2, len(candles) // 20))
    batches = np.split(times, np.flatnonzero(np.diff(span)) + 1)
    for batch in batches:
        while j < len(rows) and closes[cut + j] <= batch[-1]:
            for bars in (warmed, fed):
                bars.update(rows[j], int(later.index[j].value))
            j += 1
        read = []
        for bars in (warmed, fed):
            try:
                got, of = bars.bars_at(batch.tolist())
                read.append([repr(got[k]) for k in of])
            except ValueError as exc:  # a fill older than the bars kept
                read.append(str(exc))
        assert read[0] == read[1], name
        if batch[0] >= closes[cut - 1]:  # after the history: within the bars kept
            assert not isinstance(read[0], str), read[0]
            after += 1
        refused += isinstance(read[0], str)
    assert after >= 5
    assert refused or keep > len(candles), "a fill older than the bars kept is refused"
