"""What the database or a later computation would refuse is refused by validation first, by row
and column (issue 12 items 2-4): values at 1e308, timestamps pandas cannot hold, and times that
are not the open time of a bar of the series' timeframe."""

from __future__ import annotations

import pandas as pd
import pytest

import app
from market.validation import LAST_MS, check_candles
from tests.market.test_validation import raw


def _messages(checked) -> list[str]:
    return [str(e) for e in checked.errors]


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume"])
def test_a_value_at_1e308_is_refused_by_row_and_column(column):
    values = {"open": 10.0, "high": 11.5, "low": 9.5, "close": 11.0, "volume": 100.0}
    bar = {c: [v, v, v] for c, v in values.items()}
    bar[column][1] = 1e308
    checked = check_candles(raw(**bar), "f.csv")
    assert any(
        m.startswith(f"f.csv, row 2, column '{column}': 1e+308 is too large") for m in
        _messages(checked)
    )  # fmt: skip
    assert checked.rejected.tolist() == [False, True, False]


def test_a_timestamp_pandas_cannot_hold_is_refused():
    checked = check_candles(raw(ts=["2024-01-02", "9999-12-31", "2024-01-04"]), "f.csv")
    assert _messages(checked) == [
        "f.csv, row 2, column 'ts': '9999-12-31' is outside the supported range "
        "1677-09-22 .. 2262-04-11"
    ]
    assert pd.Timestamp(LAST_MS, unit="ms") <= pd.Timestamp.max


@pytest.mark.parametrize(
    ("timeframe", "stamps", "bad"),
    [
        ("1d", ["2024-01-02", "2024-01-02 00:01", "2024-01-04"], "1d bars open at 00:00 UTC"),
        ("1h", ["2024-01-02 00:00", "2024-01-02 01:30", "2024-01-02 03:00"], "multiples of 1h"),
        ("1w", ["2024-01-01", "2024-01-09", "2024-01-15"], "Monday 00:00 UTC"),  # 01-09: Tuesday
    ],
)
def test_timestamps_must_open_a_bar_of_the_timeframe(timeframe, stamps, bad):
    checked = check_candles(raw(ts=stamps), "f.csv", timeframe=timeframe)
    (message,) = _messages(checked)
    assert message.startswith(f"f.csv, row 2, column 'ts': {stamps[1]!r} is not the open time")
    assert bad in message
    assert check_candles(raw(ts=stamps), "f.csv").errors == []  # no timeframe: not checked


def test_a_1m_file_imported_as_1d_writes_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    path = tmp_path / "minutes.csv"
    rows = [f"2024-03-01 00:{m:02d},10,11,9,10.5,1" for m in range(5)]
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    assert app.main(["import", str(path), "--symbol", "M", "--timeframe", "1d"]) == 1
    err = capsys.readouterr().err
    assert "import rejected, nothing written: 4 problem(s)" in err
    assert err.count("is not the open time of a 1d bar") == 4  # each problem printed once
    assert app.main(["import", str(path), "--symbol", "M", "--timeframe", "1m"]) == 0


def test_skip_invalid_with_no_valid_row_fails(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,open,high,low,close,volume\n2024-03-01,10,11,9,10.5,1e308\n")
    args = ["import", str(path), "--symbol", "B", "--timeframe", "1d", "--skip-invalid"]
    assert app.main(args) == 1
    assert "none of the 1 rows of" in capsys.readouterr().err
