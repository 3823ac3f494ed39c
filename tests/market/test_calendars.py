"""Trading calendars read from the bars, and the chart's rangebreaks that hide closed times."""

from __future__ import annotations

import pandas as pd
import pytest

from components.charts.candles import candle_figure, rangebreaks
from components.charts.layers import CandlesLayer, ChartData, compose
from components.charts.lod import aggregate_ohlc
from market.calendars import ALWAYS_OPEN, TradingCalendar, infer_calendar
from market.sample_data import generate_random_walk, generate_session_walk, load_sample
from market.timeframes import Timeframe

HOUR = pd.Timedelta(hours=1)
FX_WEEKEND = (pd.Timedelta(days=4, hours=22), pd.Timedelta(days=6, hours=22))  # Fri 22 - Sun 22


def stock(timeframe: str = "1h", days: int = 28) -> pd.DataFrame:
    return generate_session_walk("STOCK", timeframe, "2024-01-01", days, seed=1)


def fx(days: int = 28) -> pd.DataFrame:
    return generate_session_walk(
        "EURUSD", "1h", "2024-01-01", days, seed=2, session=None, weekend=FX_WEEKEND
    )


def test_a_stock_closes_at_weekends_and_at_night():
    calendar = infer_calendar(stock().index, HOUR)
    assert calendar == TradingCalendar(closed_days=(5, 6), session=(14.0, 21.0))
    gaps = calendar.closed_gaps(stock().index, HOUR)
    assert gaps[0] == (
        pd.Timestamp("2024-01-05 21:00", tz="UTC"),
        pd.Timestamp("2024-01-08 14:00", tz="UTC"),
    )
    assert len(gaps) == 3  # the weekends between four weeks of bars; nights hold no whole day
    assert all(calendar.is_closed(*gap) for gap in gaps)  # the patterns already hide them


def test_fx_closes_from_friday_night_to_sunday_night_and_crypto_never():
    calendar = infer_calendar(fx().index, HOUR)
    assert calendar == TradingCalendar(closed_days=(5,), session=None)
    gaps = calendar.closed_gaps(fx().index, HOUR)
    assert gaps[0] == (
        pd.Timestamp("2024-01-05 22:00", tz="UTC"),
        pd.Timestamp("2024-01-07 22:00", tz="UTC"),
    )
    assert not any(calendar.is_closed(*gap) for gap in gaps)  # Friday 22-24 is a weekday's
    crypto = generate_random_walk("BTC", "1m", "2024-01-01", 30 * 1440, seed=3)
    assert infer_calendar(crypto.index, pd.Timedelta(minutes=1)) == ALWAYS_OPEN


def test_too_few_bars_or_long_bars_say_nothing():
    assert infer_calendar(stock(days=5).index, HOUR).closed_days == ()  # under two weeks
    assert infer_calendar(stock(days=1).index, HOUR).always_open  # under two days
    assert infer_calendar(stock().index, pd.Timedelta(days=7)).always_open
    assert TradingCalendar().closed_gaps(stock().index, HOUR) == []  # an outage is no holiday


def test_a_short_daily_pause_is_no_session():
    bars = generate_random_walk("X", "15m", "2024-01-01", 96 * 20, seed=4)
    bars = bars[bars.index.strftime("%H:%M") != "03:00"]  # a bar missing each night: a gap
    assert infer_calendar(bars.index, pd.Timedelta(minutes=15)).session is None


@pytest.mark.parametrize(
    ("bars", "timeframe", "expected"),
    [
        (
            stock(),
            "1h",
            [
                {"pattern": "day of week", "bounds": ["sat", "mon"]},
                {"pattern": "hour", "bounds": [21.0, 14.0]},
            ],
        ),
        (
            fx(),
            "1h",
            [
                {"pattern": "day of week", "bounds": ["sat", "sun"]},
                {
                    "values": [f"2024-01-{day} 22:00" for day in ("05", "12", "19", "26")],
                    "dvalue": 2 * 86_400_000,
                },
            ],
        ),
        (generate_random_walk("BTC", "15m", "2024-01-01", 96 * 30, seed=5), "15m", []),
    ],
    ids=["stock", "fx", "crypto"],
)
def test_rangebreaks_by_calendar(bars, timeframe, expected):
    assert rangebreaks(bars.index, Timeframe.parse(timeframe)) == expected


def test_daily_index_bars_hide_weekends_and_holidays():
    sp500 = load_sample("SP500").iloc[-500:]
    breaks = rangebreaks(sp500.index, Timeframe.parse("1d"))
    assert breaks[0] == {"pattern": "day of week", "bounds": ["sat", "mon"]}
    holidays = {value for b in breaks[1:] for value in b["values"]}
    assert "2017-12-23 00:00" in holidays  # Christmas, a Monday: its gap starts Saturday
    assert "2017-07-04 00:00" in holidays  # a Tuesday


def test_full_and_lod_figures_carry_the_breaks():
    bars = stock(days=60)
    tf = Timeframe.parse("1h")
    full = candle_figure(bars, None, symbol="STOCK", timeframe=tf)
    assert [b["pattern"] for b in full.layout.xaxis.rangebreaks] == ["day of week", "hour"]
    lod = aggregate_ohlc(bars, max_bars=100).drop(columns="bars")  # buckets of 3 bars
    data = ChartData("STOCK", tf, lod, None)
    composed = compose(data, [CandlesLayer()], view_bars=len(lod))
    # buckets of 4 bars: the session seems to run to midnight, the rest of Friday is listed
    breaks = composed.figure.layout.xaxis.rangebreaks
    assert [b.pattern for b in breaks[:2]] == ["day of week", "hour"]
    assert all(b.values[0].startswith("2024-01-05") for b in breaks[2:])
    crypto = generate_random_walk("BTC", "1h", "2024-01-01", 24 * 30, seed=6)
    assert not candle_figure(crypto, None, symbol="BTC", timeframe=tf).layout.xaxis.rangebreaks
