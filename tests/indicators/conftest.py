"""One real price series (the bundled S&P 500 daily bars) drives the indicator tests."""

from __future__ import annotations

import pandas as pd
import pytest

from market.candles import Candle, iter_candles
from market.sample_data import load_sample


@pytest.fixture(scope="session")
def sp500() -> pd.DataFrame:
    return load_sample("SP500")


@pytest.fixture(scope="session")
def sp500_candles(sp500: pd.DataFrame) -> list[Candle]:
    return list(iter_candles(sp500))


@pytest.fixture(scope="session")
def demo_minutes() -> pd.DataFrame:
    """Three UTC days of 1m bars: VWAP sessions with many bars each."""
    return load_sample("DEMO").iloc[: 3 * 1440 + 100]
