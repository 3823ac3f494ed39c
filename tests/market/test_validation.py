from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.validation import (
    CandleError,
    CandleValidationError,
    check_candles,
    ensure_valid_candles,
    parse_timestamps,
    resolve_columns,
    validate_candles,
)


def raw(**overrides: list[object]) -> pd.DataFrame:
    """Three valid daily bars; keyword arguments replace whole columns."""
    data: dict[str, list[object]] = {
        "ts": ["2024-01-02", "2024-01-03", "2024-01-04"],
        "open": [10.0, 11.0, 12.0],
        "high": [11.5, 12.5, 13.5],
        "low": [9.5, 10.5, 11.5],
        "close": [11.0, 12.0, 13.0],
        "volume": [100.0, 200.0, 300.0],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def only(errors: list[CandleError]) -> CandleError:
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_valid_table_has_no_errors() -> None:
    assert validate_candles(raw(), "t") == []


def test_message_reads_like_the_contract() -> None:
    table = raw(open=[96.0, 11.0, 12.0], high=[95.1, 12.5, 13.5], close=[95.0, 12.0, 13.0])
    error = only(validate_candles(table, "sp500.csv", row_numbers=[14, 15, 16], row_label="line"))
    assert str(error) == "sp500.csv, line 14, column 'high': 95.1 is below max(open, close)=96.0"
    assert (error.source, error.row, error.column, error.value) == ("sp500.csv", 14, "high", 95.1)


def test_rows_are_one_based_data_rows_by_default() -> None:
    error = only(validate_candles(raw(volume=[1.0, 2.0, -3.0]), "frame"))
    assert str(error) == "frame, row 3, column 'volume': -3.0 is a negative volume"


@pytest.mark.parametrize(
    ("column", "values", "row", "fragment"),
    [
        ("ts", ["2024-01-02", "soon", "2024-01-04"], 2, "'soon' is not a timestamp"),
        ("ts", ["2024-01-02", None, "2024-01-04"], 2, "missing timestamp"),
        ("open", [10.0, np.nan, 12.0], 2, "price is missing (NaN)"),
        ("close", [11.0, 12.0, np.inf], 3, "inf is not a finite price"),
        ("close", [11.0, 12.0, -np.inf], 3, "-inf is not a finite price"),
        ("low", [0.0, 10.5, 11.5], 1, "0.0 is not a positive price"),
        ("open", [10.0, -11.0, 12.0], 2, "-11.0 is not a positive price"),
        ("open", [10.0, "eleven", 12.0], 2, "'eleven' is not a number"),
        ("volume", [100.0, np.nan, 300.0], 2, "volume is missing (NaN)"),
        ("volume", [100.0, 200.0, -1.0], 3, "-1.0 is a negative volume"),
        ("low", [9.5, 11.5, 11.5], 2, "11.5 is above min(open, close)=11.0"),
    ],
)
def test_single_cell_problems(column: str, values: list[object], row: int, fragment: str) -> None:
    error = only(validate_candles(raw(**{column: values}), "t.csv"))
    assert (error.source, error.row, error.column) == ("t.csv", row, column)
    assert fragment in error.message


def test_high_below_low_is_reported_besides_the_open_close_bounds() -> None:
    errors = validate_candles(raw(high=[11.5, 9.0, 13.5]), "t")
    messages = {e.message for e in errors}
    assert {e.row for e in errors} == {2}
    assert "9.0 is below low=10.5" in messages
    assert "9.0 is below max(open, close)=12.0" in messages


def test_zero_volume_is_fine() -> None:
    assert validate_candles(raw(volume=[0.0, 0.0, 0.0]), "t") == []


def test_every_offending_row_is_reported_in_row_order() -> None:
    table = raw(volume=[-1.0, -2.0, -3.0], open=[10.0, -11.0, 12.0])
    errors = validate_candles(table, "t")
    assert [(e.row, e.column) for e in errors] == [
        (1, "volume"),
        (2, "open"),
        (2, "volume"),
        (3, "volume"),
    ]


def test_duplicates_name_the_first_occurrence() -> None:
    table = raw(ts=["2024-01-02", "2024-01-03", "2024-01-02"])
    error = only(validate_candles(table, "t.csv", row_numbers=[2, 3, 4], row_label="line"))
    assert (error.row, error.column) == (4, "ts")
    assert error.message == "duplicate timestamp 2024-01-02 00:00:00 UTC (first on line 2)"


def test_out_of_order_names_the_row_holding_the_latest_time() -> None:
    table = raw(ts=["2024-01-05", "2024-01-03", "2024-01-04"])
    errors = validate_candles(table, "t")
    assert [(e.row, e.column) for e in errors] == [(2, "ts"), (3, "ts")]
    assert errors[0].message == (
        "out of order: 2024-01-03 00:00:00 UTC is earlier than 2024-01-05 00:00:00 UTC on row 1"
    )


def test_missing_and_ambiguous_columns() -> None:
    errors = validate_candles(raw().drop(columns=["volume"]).rename(columns={"ts": "when"}), "t")
    assert [(e.row, e.column) for e in errors] == [(None, "timestamp"), (None, "volume")]
    assert str(errors[1]).startswith("t, column 'volume': missing required column")

    twice = raw().assign(Close=[1.0, 2.0, 3.0])
    error = only(validate_candles(twice, "t"))
    assert error.column == "close"
    assert "ambiguous" in error.message


def test_column_names_match_case_insensitively_and_name_the_file_column() -> None:
    table = raw(high=[11.5, 1.0, 13.5]).rename(columns=str.upper).rename(columns={"TS": "Date"})
    errors = validate_candles(table, "t")
    assert {e.column for e in errors} == {"HIGH"}
    mapping, problems = resolve_columns(
        ["Date", "Time", "Open", "High", "Low", "Close", "Vol"], "t"
    )
    assert mapping["ts"] == ("Date", "Time")
    assert [p.column for p in problems] == ["volume"]


def test_candle_frame_input_uses_its_index() -> None:
    frame = raw().assign(ts=lambda d: pd.to_datetime(d.ts, utc=True)).set_index("ts")
    assert validate_candles(frame, "f") == []
    frame.loc[frame.index[1], "close"] = 50.0
    error = only(validate_candles(frame, "f"))
    assert (error.row, error.column) == (2, "high")


def test_ensure_valid_raises_with_all_errors() -> None:
    with pytest.raises(CandleValidationError) as info:
        ensure_valid_candles(raw(volume=[-1.0, -2.0, -3.0]), "t")
    assert [e.row for e in info.value.errors] == [1, 2, 3]
    assert "3 candle errors" in str(info.value)
    assert "t, row 2, column 'volume'" in str(info.value)


def test_error_summary_is_capped_but_errors_are_complete() -> None:
    errors = [CandleError("t", i, "open", 0.0, "bad") for i in range(1, 31)]
    exc = CandleValidationError(errors)
    assert len(exc.errors) == 30
    assert "... and 10 more" in str(exc)


class TestParseTimestamps:
    def test_epoch_units_are_told_apart_by_magnitude(self) -> None:
        second = 1_704_067_200  # 2024-01-01 00:00 UTC
        for factor in (1, 1_000, 1_000_000, 1_000_000_000):
            ms, ok = parse_timestamps(pd.Series([second * factor, (second + 60) * factor]))
            assert ok.all()
            assert ms.tolist() == [second * 1000, (second + 60) * 1000], factor

    def test_fractional_epoch_seconds(self) -> None:
        ms, _ = parse_timestamps(pd.Series([1_704_067_200.5]))
        assert ms.tolist() == [1_704_067_200_500]

    def test_numeric_strings_are_epochs(self) -> None:
        ms, ok = parse_timestamps(pd.Series(["1704067200000", "x"]))
        assert ms[0] == 1_704_067_200_000
        assert ok.tolist() == [True, False]

    def test_iso_naive_is_utc_and_offsets_are_converted(self) -> None:
        ms, ok = parse_timestamps(
            pd.Series(["2024-01-01", "2024-01-01T09:30:00+02:00", "2024-01-01 10:00Z"])
        )
        expected = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 07:30", "2024-01-01 10:00"])
        assert ok.all()
        assert ms.tolist() == (expected.as_unit("ms").asi8).tolist()

    def test_month_day_year_with_optional_time(self) -> None:
        ms, ok = parse_timestamps(pd.Series(["1/4/1999", "12/31/2018 09:30", "13/1/1999"]))
        assert ok.tolist() == [True, True, False]  # 13 is not a month: no silent day-first
        assert ms[0] == 915_408_000_000
        assert ms[1] == pd.Timestamp("2018-12-31 09:30", tz="UTC").value // 1_000_000

    def test_tz_aware_datetimes_are_converted(self) -> None:
        local = pd.Series(pd.date_range("2024-07-01 09:30", periods=2, freq="h", tz="US/Eastern"))
        ms, _ = parse_timestamps(local)
        assert ms.tolist() == [
            pd.Timestamp("2024-07-01 13:30", tz="UTC").value // 1_000_000,
            pd.Timestamp("2024-07-01 14:30", tz="UTC").value // 1_000_000,
        ]


def test_million_rows_validate_quickly() -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.random(n),
        },
        index=pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC", name="ts"),
    )
    frame.iloc[::10_000, 1] = 1.0  # 100 highs below the body (and below the low)
    started = time.perf_counter()
    errors = validate_candles(frame, "big")
    elapsed = time.perf_counter() - started
    assert [e.row for e in errors[::2]] == list(range(1, n + 1, 10_000))
    assert len(errors) == 200
    assert elapsed < 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=40))
def test_rows_without_errors_are_strictly_increasing(minutes: list[int]) -> None:
    n = len(minutes)
    table = pd.DataFrame(
        {
            "ts": np.array(minutes, dtype=np.int64) * 60 + 1_704_067_200,
            "open": np.full(n, 10.0),
            "high": np.full(n, 11.0),
            "low": np.full(n, 9.0),
            "close": np.full(n, 10.5),
            "volume": np.ones(n),
        }
    )
    checked = check_candles(table, "p")
    kept = np.array(minutes)[~checked.rejected]
    assert (np.diff(kept) > 0).all()
    # a row is kept exactly when it is later than every row before it (a trader's "next bar")
    expected = [all(m > earlier for earlier in minutes[:i]) for i, m in enumerate(minutes)]
    assert (~checked.rejected).tolist() == expected
    assert {e.row for e in checked.errors} == {i + 1 for i, keep in enumerate(expected) if not keep}
    assert len(checked.valid_frame()) == sum(expected)


def test_bars_touching_their_bounds_are_valid() -> None:
    # marubozu (high == close, low == open) and a doji with every price equal
    table = raw(high=[11.0, 12.5, 12.0], low=[10.0, 10.5, 12.0], open=[10.0, 11.0, 12.0])
    table["close"] = [11.0, 12.0, 12.0]
    assert validate_candles(table, "t") == []
