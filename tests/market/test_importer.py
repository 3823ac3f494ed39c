from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from config.settings import ROOT
from market.candles import CANDLE_COLUMNS
from market.importer import CandleImportError, read_candle_file
from market.validation import CandleError, CandleValidationError

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
GOOD = [
    "1/4/1999,10.0,11.5,9.5,11.0,11.0,100",
    "1/5/1999,11.0,12.5,10.5,12.0,12.0,200",
    "1/6/1999,12.0,13.5,11.5,13.0,13.0,300",
    "1/7/1999,13.0,14.5,12.5,14.0,14.0,400",
]


def write(tmp_path: Path, lines: list[str], name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_row(index: int, row: str) -> list[str]:
    """The good file with data row ``index`` (0-based) replaced; it sits on line index + 2."""
    rows = list(GOOD)
    rows[index] = row
    return [HEADER, *rows]


def single_error(path: Path) -> CandleError:
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(path)
    assert len(info.value.errors) == 1, str(info.value)
    return info.value.errors[0]


def assert_names(error: CandleError, line: int, column: str) -> None:
    assert (error.source, error.row, error.row_label, error.column) == (
        "prices.csv",
        line,
        "line",
        column,
    )
    assert str(error).startswith(f"prices.csv, line {line}, column {column!r}: ")


def test_reads_a_clean_file(tmp_path: Path) -> None:
    result = read_candle_file(write(tmp_path, [HEADER, *GOOD]))
    frame = result.candles
    assert result.rejected == []
    assert list(frame.columns) == list(CANDLE_COLUMNS)
    assert all(frame[c].dtype == np.float64 for c in CANDLE_COLUMNS)
    assert str(frame.index.dtype) == "datetime64[us, UTC]"
    assert frame.index.name == "ts"
    assert frame.index[0] == pd.Timestamp("1999-01-04", tz="UTC")
    assert frame.iloc[1].tolist() == [11.0, 12.5, 10.5, 12.0, 200.0]


# one test per validation case; each names file, line and column


def test_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, ["Date,Open,High,Low,Close", "1/4/1999,1,2,0.5,1.5"])
    error = single_error(path)
    assert (error.source, error.row, error.column) == ("prices.csv", None, "volume")
    assert str(error).startswith("prices.csv, column 'volume': missing required column")


def test_missing_columns_raise_even_when_skipping(tmp_path: Path) -> None:
    path = write(tmp_path, ["Open,High,Low,Close,Volume", "1,2,0.5,1.5,3"])
    with pytest.raises(CandleValidationError, match="missing timestamp column"):
        read_candle_file(path, skip_invalid=True)


def test_unparseable_timestamp(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(1, "Jan 5th,11.0,12.5,10.5,12.0,12.0,200")))
    assert_names(error, 3, "Date")
    assert error.value == "Jan 5th"
    assert "is not a timestamp" in error.message


def test_nan_price(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(2, "1/6/1999,NaN,13.5,11.5,13.0,13.0,300")))
    assert_names(error, 4, "Open")
    assert "missing" in error.message


def test_empty_price(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(2, "1/6/1999,12.0,13.5,11.5,,13.0,300")))
    assert_names(error, 4, "Close")


def test_infinite_price(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(0, "1/4/1999,10.0,inf,9.5,11.0,11.0,100")))
    assert_names(error, 2, "High")
    assert error.message == "inf is not a finite price"


def test_zero_price(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(3, "1/7/1999,13.0,14.5,0,14.0,14.0,400")))
    assert_names(error, 5, "Low")
    assert error.message == "0.0 is not a positive price"


def test_negative_price(tmp_path: Path) -> None:
    row = "1/7/1999,13.0,14.5,12.5,-14.0,-14.0,400"
    errors = read_errors(write(tmp_path, with_row(3, row)))
    assert [(e.row, e.column, e.message) for e in errors] == [
        (5, "Close", "-14.0 is not a positive price")
    ]


def test_text_in_a_price(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(1, "1/5/1999,11.0,12.5,n/a?,12.0,12.0,200")))
    assert_names(error, 3, "Low")
    assert error.message == "'n/a?' is not a number"


def test_high_below_body(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "ts,open,high,low,close,volume\n"
        + "".join(f"{d},1,2,0.5,1.5,1\n" for d in range(1, 13))
        # line 14: high 95.1 below max(open, close)=96.0
        + "2000000000,96.0,95.1,94.0,95.0,1\n",
        encoding="utf-8",
    )
    error = single_error(path)
    assert str(error) == "prices.csv, line 14, column 'high': 95.1 is below max(open, close)=96.0"


def test_low_above_body(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(1, "1/5/1999,11.0,12.5,11.5,12.0,12.0,200")))
    assert_names(error, 3, "Low")
    assert error.message == "11.5 is above min(open, close)=11.0"


def test_high_below_low(tmp_path: Path) -> None:
    errors = read_errors(write(tmp_path, with_row(1, "1/5/1999,11.0,10.0,12.5,12.0,12.0,200")))
    assert {(e.row, e.column) for e in errors} == {(3, "High"), (3, "Low")}
    assert "10.0 is below low=12.5" in [e.message for e in errors]


def test_negative_volume(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(2, "1/6/1999,12.0,13.5,11.5,13.0,13.0,-5")))
    assert_names(error, 4, "Volume")
    assert error.message == "-5.0 is a negative volume"


def test_missing_volume(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(2, "1/6/1999,12.0,13.5,11.5,13.0,13.0,")))
    assert_names(error, 4, "Volume")
    assert error.message == "volume is missing (NaN)"


def test_duplicate_timestamp(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(2, "1/5/1999,12.0,13.5,11.5,13.0,13.0,300")))
    assert_names(error, 4, "Date")
    assert error.message == "duplicate timestamp 1999-01-05 00:00:00 UTC (first on line 3)"


def test_out_of_order_timestamp(tmp_path: Path) -> None:
    error = single_error(write(tmp_path, with_row(2, "1/3/1999,12.0,13.5,11.5,13.0,13.0,300")))
    assert_names(error, 4, "Date")
    assert error.message == (
        "out of order: 1999-01-03 00:00:00 UTC is earlier than 1999-01-05 00:00:00 UTC on line 3"
    )


def read_errors(path: Path) -> list[CandleError]:
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(path)
    return info.value.errors


def test_every_error_is_reported_with_its_line(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "1/4/1999,10.0,11.5,9.5,11.0,11.0,100",
        "",  # blank lines are skipped but counted
        "1/5/1999,-1,12.5,10.5,12.0,12.0,200",
        "1/6/1999,12.0,13.5,11.5,13.0,13.0,-3",
        "1/7/1999,13.0,14.5,12.5,14.0,14.0,400",
        "1/7/1999,13.0,14.5,12.5,14.0,14.0,400",
    ]
    errors = read_errors(write(tmp_path, lines))
    assert [(e.row, e.column) for e in errors] == [(4, "Open"), (5, "Volume"), (7, "Date")]
    assert all(e.source == "prices.csv" and e.row_label == "line" for e in errors)


# skip_invalid


def test_skip_invalid_keeps_valid_rows_and_reports_the_rest(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "1/4/1999,10.0,11.5,9.5,11.0,11.0,100",
        "1/5/1999,-1,12.5,10.5,12.0,12.0,200",
        "1/6/1999,12.0,13.5,11.5,13.0,13.0,300",
        "1/7/1999,13.0,12.0,12.5,14.0,14.0,-400",
    ]
    result = read_candle_file(write(tmp_path, lines), skip_invalid=True)
    assert result.candles.index.strftime("%Y-%m-%d").tolist() == ["1999-01-04", "1999-01-06"]
    assert result.rejected_rows == [3, 5]
    assert {(e.row, e.column) for e in result.rejected} == {
        (3, "Open"),
        (5, "High"),  # 12.0 below max(open, close) and below the low
        (5, "Volume"),
    }


def test_skip_invalid_keeps_the_first_of_duplicates(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "1/4/1999,10.0,11.5,9.5,11.0,11.0,100",
        "1/4/1999,20.0,21.5,19.5,21.0,21.0,999",
        "1/5/1999,11.0,12.5,10.5,12.0,12.0,200",
    ]
    result = read_candle_file(write(tmp_path, lines), skip_invalid=True)
    assert result.candles["open"].tolist() == [10.0, 11.0]
    assert result.rejected_rows == [3]


def test_skip_invalid_rejects_rows_that_go_backwards(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "1/4/1999,10.0,11.5,9.5,11.0,11.0,100",
        "1/6/1999,12.0,13.5,11.5,13.0,13.0,300",
        "1/5/1999,11.0,12.5,10.5,12.0,12.0,200",
        "1/7/1999,13.0,14.5,12.5,14.0,14.0,400",
    ]
    result = read_candle_file(write(tmp_path, lines), skip_invalid=True)
    assert result.candles.index.day.tolist() == [4, 6, 7]
    assert result.rejected_rows == [4]


def test_a_mistyped_future_date_is_named_in_every_backwards_error(tmp_path: Path) -> None:
    lines = [HEADER, GOOD[0], "1/5/2099,11.0,12.5,10.5,12.0,12.0,200", *GOOD[2:]]
    result = read_candle_file(write(tmp_path, lines), skip_invalid=True)
    assert result.rejected_rows == [4, 5]
    assert all("on line 3" in e.message for e in result.rejected)


def test_newest_first_files_are_read_bottom_up(tmp_path: Path) -> None:
    result = read_candle_file(write(tmp_path, [HEADER, *reversed(GOOD)]))
    expected = read_candle_file(write(tmp_path, [HEADER, *GOOD], "oldest_first.csv")).candles
    pd.testing.assert_frame_equal(result.candles, expected)


def test_newest_first_errors_keep_their_lines(tmp_path: Path) -> None:
    rows = list(reversed(GOOD))
    rows[1] = rows[1].replace(",13.5,", ",1.0,")  # 1/6/1999: high 1.0, on line 3
    errors = read_errors(write(tmp_path, [HEADER, *rows]))
    assert {(e.row, e.column) for e in errors} == {(3, "High")}


# formats


def test_csv_gz_and_parquet_read_the_same(tmp_path: Path) -> None:
    text = "\n".join([HEADER, *GOOD]) + "\n"
    (tmp_path / "a.csv").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "a.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    from_csv = read_candle_file(tmp_path / "a.csv").candles
    from_gz = read_candle_file(tmp_path / "a.csv.gz").candles
    from_csv.to_parquet(tmp_path / "a.parquet")
    from_parquet = read_candle_file(tmp_path / "a.parquet").candles
    pd.testing.assert_frame_equal(from_gz, from_csv)
    pd.testing.assert_frame_equal(from_parquet, from_csv)


def test_parquet_errors_count_data_rows(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC"),
            "open": [1.0, 1.0, 1.0],
            "high": [2.0, 0.9, 2.0],
            "low": [0.5, 0.5, 0.5],
            "close": [1.5, 0.8, 1.5],
            "volume": [1, 1, 1],
        }
    )
    table.to_parquet(tmp_path / "p.parquet", index=False)
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(tmp_path / "p.parquet")
    assert [str(e) for e in info.value.errors] == [
        "p.parquet, row 2, column 'high': 0.9 is below max(open, close)=1.0"
    ]


def test_parquet_local_times_are_converted_to_utc(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "Datetime": pd.date_range("2024-07-01 09:30", periods=2, freq="min", tz="US/Eastern"),
            "Open": [1.0, 1.0],
            "High": [2.0, 2.0],
            "Low": [0.5, 0.5],
            "Close": [1.5, 1.5],
            "Volume": [1.0, 1.0],
        }
    )
    table.to_parquet(tmp_path / "p.parquet")
    index = read_candle_file(tmp_path / "p.parquet").candles.index
    assert index[0] == pd.Timestamp("2024-07-01 13:30", tz="UTC")
    assert str(index.tz) == "UTC"


@pytest.mark.parametrize(
    "stamps",
    [
        pytest.param(["1704067200", "1704067260"], id="epoch-seconds"),
        pytest.param(["1704067200000", "1704067260000"], id="epoch-milliseconds"),
        pytest.param(["1704067200.0", "1704067260.0"], id="epoch-float-seconds"),
        pytest.param(["2024-01-01T00:00:00Z", "2024-01-01T02:01:00+02:00"], id="iso-offsets"),
        pytest.param(["2024-01-01 00:00", "2024-01-01 00:01"], id="iso-naive-is-utc"),
        pytest.param(["1/1/2024 00:00", "1/1/2024 00:01"], id="month-day-year-time"),
    ],
)
def test_timestamp_forms(tmp_path: Path, stamps: list[str]) -> None:
    lines = ["time,open,high,low,close,volume"] + [f"{s},1,2,0.5,1.5,7" for s in stamps]
    index = read_candle_file(write(tmp_path, lines)).candles.index
    expected = pd.DatetimeIndex(
        [pd.Timestamp("2024-01-01 00:00", tz="UTC"), pd.Timestamp("2024-01-01 00:01", tz="UTC")]
    )
    assert index.tolist() == expected.tolist()


def test_aliases_extra_columns_and_split_date_time(tmp_path: Path) -> None:
    lines = [
        "Symbol,Date,Time,OPEN,High,low,Close,Adj Close,VOLUME",
        "X,2024-01-02,09:30,10,11,9,10.5,10.4,5",
        "X,2024-01-02,09:31,10.5,11,10,10.8,10.7,6",
    ]
    frame = read_candle_file(write(tmp_path, lines)).candles
    assert frame.index.strftime("%H:%M").tolist() == ["09:30", "09:31"]
    assert frame["close"].tolist() == [10.5, 10.8]


def test_bundled_sp500_matches_the_raw_file() -> None:
    path = ROOT / "data" / "sample" / "sp500.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    frame = read_candle_file(path).candles
    assert len(frame) == len(rows) == 5031
    month, day, year = (int(x) for x in rows[-1]["Date"].split("/"))
    assert frame.index[-1] == pd.Timestamp(year, month, day, tz="UTC")
    assert frame["high"].iloc[100] == float(rows[100]["High"])
    assert frame["volume"].iloc[-1] == float(rows[-1]["Volume"])


# malformed files


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\n\n  \n", "the file is empty"),
        ("header_only.csv", b"ts,open,high,low,close,volume\n", "header but no data rows"),
        ("no_header.csv", b"1/4/1999,1,2,0.5,1.5,3\n1/5/1999,1,2,0.5,1.5,3\n", "no header row"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file"),
        ("fake.csv.gz", b"ts,open,high,low,close,volume\n", "not a valid gzip file"),
        ("fake.parquet", b"ts,open\n1,2\n", "not a readable Parquet file"),
        ("prices.xlsx", b"whatever", "unsupported file type"),
        (
            "ragged.csv",
            b"ts,open,high,low,close,volume\n1,1,2,0.5,1.5,3\n2,1,2,0.5,1.5,3,9,9\n",
            "line 3",
        ),
    ],
)
def test_malformed_files_name_the_file(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CandleImportError) as info:
        read_candle_file(path)
    assert str(info.value).startswith(f"{name}: ")
    assert fragment in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CandleImportError, match=r"^gone\.csv: file not found"):
        read_candle_file(tmp_path / "gone.csv")


def test_source_overrides_the_name_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, with_row(0, "1/4/1999,10.0,11.5,9.5,11.0,11.0,-1"))
    with pytest.raises(CandleValidationError) as info:
        read_candle_file(path, source="upload #3")
    assert str(info.value.errors[0]).startswith("upload #3, line 2, column 'Volume'")


def test_parquet_with_an_unnamed_datetime_index(tmp_path: Path) -> None:
    frame = read_candle_file(write(tmp_path, [HEADER, *GOOD])).candles
    frame.rename_axis(None).to_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(read_candle_file(tmp_path / "p.parquet").candles, frame)


def test_legacy_latin1_file(tmp_path: Path) -> None:
    text = "\n".join(["Date,Open,High,Low,Close,Volume,Börse", "1/4/1999,1,2,0.5,1.5,3,Zürich"])
    (tmp_path / "old.csv").write_bytes(text.encode("latin-1"))
    assert len(read_candle_file(tmp_path / "old.csv").candles) == 1


# the quick (Arrow) way and the careful (pandas) way give the same candles
QUICK_FILES = {
    "iso offsets": [
        "timestamp,open,high,low,close,volume",
        "2024-01-01T00:00:00Z,1.1,2.25,0.5,1.5,7",
        "2024-01-01T02:01:00.250+02:00,1.2,2.5,0.75,1.25,0",
    ],
    "iso naive with fractions": [
        "Date,Open,High,Low,Close,Adj Close,Volume",
        "2024-01-01 00:00:00,100.10000000000001,101,99,100.5,100.4,1e3",
        "2024-01-01 00:00:00.5,100.5,101.5,100,101,101,2.5",
    ],
    "epoch milliseconds": [
        "ts,open,high,low,close,volume",
        "1704067200000,1,2,0.5,1.5,7",
        "1704067260000,1,2,0.5,1.5,8",
    ],
    "epoch float seconds": [
        "time,open,high,low,close,volume",
        "1704067200.5,1,2,0.5,1.5,7",
        "1704067260.25,1,2,0.5,1.5,8",
    ],
    "blank line and extra columns": [
        "Symbol,datetime,OPEN,High,low,Close,VOLUME,Note",
        "X,2024-01-02 09:30,10,11,9,10.5,5,a",
        "",
        "X,2024-01-02 09:31,10.5,11,10,10.8,6,b",
    ],
}


@pytest.mark.parametrize("lines", QUICK_FILES.values(), ids=QUICK_FILES.keys())
def test_the_quick_and_the_careful_way_read_the_same(
    tmp_path: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = write(tmp_path, lines, "prices.csv")
    zipped = tmp_path / "prices.csv.gz"  # gzip always goes the careful way
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    careful = read_candle_file(zipped, source="prices.csv")

    def no_pandas(*_args, **_kwargs):
        raise AssertionError("the quick way should have read this file")

    monkeypatch.setattr("market.importer._read_csv", no_pandas)
    quick = read_candle_file(plain)

    pd.testing.assert_frame_equal(quick.candles, careful.candles, check_exact=True)
    assert (quick.source, quick.rejected, quick.row_label) == ("prices.csv", [], "line")


def test_anything_unusual_goes_the_careful_way(tmp_path: Path) -> None:
    # month/day/year dates, one bad cell, a newest-first file: read (or refused) as before
    assert len(read_candle_file(write(tmp_path, [HEADER, *GOOD])).candles) == 4
    newest_first = write(tmp_path, [HEADER, *GOOD[::-1]], "reversed.csv")
    pd.testing.assert_frame_equal(
        read_candle_file(newest_first).candles,
        read_candle_file(write(tmp_path, [HEADER, *GOOD])).candles,
    )
    iso = ["ts,open,high,low,close,volume", "2024-01-01 00:00,1,2,0.5,1.5,7"]
    bad = write(tmp_path, [*iso, "2024-01-01 00:01,1,2,0.5,1.5,NaN"], "bad.csv")
    error = single_error(bad)
    assert (error.row, error.column) == (3, "volume")
