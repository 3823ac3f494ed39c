"""The sample series StratLens loads on first start.

>>> sorted(SAMPLE_SERIES)
['DEMO', 'NASDAQ', 'SP500']
>>> len(load_sample("SP500"))
5031

SP500 and NASDAQ are daily bars 1999-2018 shipped with the ``arch`` package (NCSA licence,
data/sample/LICENSE-arch.md), read through :func:`market.importer.read_candle_file`.
DEMO is a seeded random walk of 1m bars; its live continuation is a
:class:`market.feeds.RandomWalkFeed` with the same symbol and seed, which uses the same
bar generator and so extends the series as if it had been generated in one go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import ROOT
from market.candles import CANDLE_COLUMNS
from market.feeds import DEFAULT_VOLATILITY, random_walk_bars
from market.timeframes import Timeframe, as_utc, from_epoch_ms, to_epoch_ms

SAMPLE_DIR = ROOT / "data" / "sample"
DEMO_SEED = 20240101
DEMO_START = pd.Timestamp("2024-01-01 00:00", tz="UTC")
DEMO_BARS = 20 * 24 * 60
DEMO_START_PRICE = 100.0
_ARCH = "arch package by Kevin Sheppard (NCSA licence, see data/sample/LICENSE-arch.md)"


@dataclass(frozen=True)
class SampleSeries:
    symbol: str
    timeframe: Timeframe
    description: str
    source: str  # attribution
    loader: Callable[[], pd.DataFrame]

    def load(self) -> pd.DataFrame:
        return self.loader()


def generate_random_walk(
    symbol: str,
    timeframe: Timeframe | str,
    start: pd.Timestamp | str,
    bars: int,
    seed: int,
    start_price: float = 100.0,
    volatility: float = DEFAULT_VOLATILITY,
) -> pd.DataFrame:
    """A candle frame of ``bars`` contiguous random-walk bars, the first opening at ``start``.

    >>> frame = generate_random_walk("DEMO", "1m", pd.Timestamp("2024-01-01", tz="UTC"), 3, 7)
    >>> frame.index[-1]
    Timestamp('2024-01-01 00:02:00+0000', tz='UTC')

    ``start`` is floored to the timeframe; a naive time is UTC. The same generator drives
    RandomWalkFeed, so ``RandomWalkFeed(symbol, timeframe, last bar, seed=seed, ...)``
    continues this series.
    """
    tf = Timeframe.parse(timeframe)
    stamp = as_utc(start)
    first = int(tf.bucket_start_ms(to_epoch_ms(pd.DatetimeIndex([stamp]))[0]))
    ts_ms = first + np.arange(bars, dtype=np.int64) * tf.millis
    data = random_walk_bars(symbol, ts_ms, start_price, seed=seed, volatility=volatility)
    return pd.DataFrame({c: data[c] for c in CANDLE_COLUMNS}, index=from_epoch_ms(ts_ms))


def generate_session_walk(
    symbol: str,
    timeframe: Timeframe | str,
    start: pd.Timestamp | str,
    days: int,
    seed: int,
    *,
    session: tuple[float, float] | None = (14.5, 21.0),
    weekend: tuple[pd.Timedelta, pd.Timedelta] | None = None,
) -> pd.DataFrame:
    """A random walk of a market that closes: :func:`generate_random_walk`'s bars over
    ``days`` days, kept only Monday to Friday inside ``session`` (UTC hours, as a US stock's
    14:30-21:00; None: around the clock). ``weekend``: instead of Saturday and Sunday, the
    closed stretch of the week as offsets from Monday 00:00 (an FX week closes from Friday
    22:00, ``Timedelta(days=4, hours=22)``, to Sunday 22:00, ``Timedelta(days=6, hours=22)``).

    >>> bars = generate_session_walk("STOCK", "1h", "2024-01-01", 28, seed=1)
    >>> sorted(set(bars.index.day_of_week)), bars.index[0].strftime("%H:%M")
    ([0, 1, 2, 3, 4], '14:00')
    """
    tf = Timeframe.parse(timeframe)
    frame = generate_random_walk(symbol, tf, start, days * 86400 // tf.seconds, seed)
    index = frame.index
    since_monday = index - index.normalize() + pd.to_timedelta(index.day_of_week, unit="D")
    if weekend is None:
        keep = index.day_of_week < 5
    else:
        keep = (since_monday < weekend[0]) | (since_monday >= weekend[1])
    if session is not None:
        hour = index.hour + index.minute / 60
        # a bar that opens inside the session (a 1h bar at 14:00 holds the 14:30 open)
        keep &= (hour + tf.seconds / 3600 > session[0]) & (hour < session[1])
    return frame[keep]


def _file_loader(path: Path) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        # the reader (pyarrow's CSV, the validation) only when a series is loaded: a command
        # that finds the bundled series stored never imports it
        from market.importer import read_candle_file

        return read_candle_file(path).candles

    return load


def _demo() -> pd.DataFrame:
    return generate_random_walk(
        "DEMO", "1m", DEMO_START, DEMO_BARS, DEMO_SEED, start_price=DEMO_START_PRICE
    )


SAMPLE_SERIES: dict[str, SampleSeries] = {
    s.symbol: s
    for s in (
        SampleSeries(
            "SP500",
            Timeframe.parse("1d"),
            "S&P 500 index, daily, 1999-2018",
            _ARCH,
            _file_loader(SAMPLE_DIR / "sp500.csv.gz"),
        ),
        SampleSeries(
            "NASDAQ",
            Timeframe.parse("1d"),
            "NASDAQ Composite index, daily, 1999-2018",
            _ARCH,
            _file_loader(SAMPLE_DIR / "nasdaq.csv.gz"),
        ),
        SampleSeries(
            "DEMO",
            Timeframe.parse("1m"),
            "Random-walk demo symbol, 1 minute bars, 20 days from 2024-01-01 UTC",
            f"generated (seed {DEMO_SEED})",
            _demo,
        ),
    )
}


def load_sample(name: str) -> pd.DataFrame:
    """The candle frame of one sample series (a fresh copy each call)."""
    try:
        series = SAMPLE_SERIES[name]
    except KeyError:
        known = ", ".join(SAMPLE_SERIES)
        raise KeyError(f"unknown sample series {name!r}: expected one of {known}") from None
    return series.load()
