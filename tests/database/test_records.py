"""Records validate and normalize on construction (no database needed)."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from database.errors import DuplicateTradeError
from database.records import utc_datetime
from tests.database.builders import signal, trade


def test_times_are_normalized_to_plain_utc_datetimes():
    tokyo = timezone(timedelta(hours=9))

    assert signal(timestamp=datetime(2024, 1, 2, 9, tzinfo=tokyo)).timestamp == datetime(
        2024, 1, 2, tzinfo=UTC
    )
    stamp = pd.Timestamp("2024-01-02 00:00:00.123456789", tz="America/New_York")
    normalized = trade(execution_time=stamp).execution_time
    assert type(normalized) is datetime
    assert normalized.tzinfo is UTC
    assert normalized == datetime(2024, 1, 2, 5, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("value", [datetime(2024, 1, 2), pd.Timestamp("2024-01-02")])
def test_a_naive_time_is_refused(value):
    with pytest.raises(ValueError, match="naive"):
        signal(timestamp=value)
    with pytest.raises(ValueError, match=r"execution_time=.*naive"):
        trade(execution_time=value)


def test_a_time_must_be_a_datetime():
    with pytest.raises(TypeError, match="got str"):
        utc_datetime("2024-01-02T00:00:00Z", "when")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"signal_type": "buy"}, "signal_type='buy'"),
        ({"price": 0.0}, "price=0.0"),
        ({"price": math.nan}, "price=nan"),
        ({"confidence": 1.5}, "confidence=1.5"),
        ({"confidence": -0.1}, "confidence=-0.1"),
        ({"strategy_name": " "}, "strategy_name"),
        ({"symbol": None}, "symbol=None"),
    ],
)
def test_an_invalid_signal_is_refused(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        signal(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"side": "long"}, "side='long'"),
        ({"volume": 0}, "volume=0"),
        ({"price": -1}, "price=-1"),
        ({"commission": math.inf}, "commission=inf"),
        ({"pnl": math.nan}, "pnl=nan"),
        ({"labels": "breakout"}, "labels='breakout'"),
        ({"labels": ("ok", 3)}, "labels="),
        ({"trade_id": ""}, "trade_id=''"),
    ],
)
def test_an_invalid_trade_is_refused(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        trade(**changes)


def test_records_are_frozen_hashable_and_numbers_are_floats():
    record = trade(labels=["a", "b"], price=10, volume=3)

    assert record.labels == ("a", "b")
    assert type(record.price) is float
    assert hash(record) == hash(trade(labels=("a", "b"), price=10.0, volume=3.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.price = 11.0  # type: ignore[misc]


def test_duplicate_trade_error_names_ids_sorted_and_caps_the_list():
    error = DuplicateTradeError([f"t-{i:02d}" for i in range(12, 0, -1)], where="already stored")

    assert error.trade_ids[0] == "t-01"
    assert str(error).startswith("duplicate trade id(s) already stored: 't-01', 't-02'")
    assert str(error).endswith("and 2 more; no trade was written")
