"""`python app.py metrics FILE`: equity or returns from another tool's CSV, every defect named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

import analytics.series_io as series_io_module
import app
from analytics.metrics import compute_metrics
from analytics.series_io import SeriesFileError, read_series_csv, read_series_csv_precise
from market.sample_data import load_sample


@pytest.fixture
def sp500_close() -> pd.Series:
    return load_sample("SP500")["close"]


def write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_returns_file_gives_quantstats_values(tmp_path, sp500_close, capsys):
    returns = sp500_close.pct_change().dropna()
    path = write(
        tmp_path / "r.csv",
        pd.DataFrame({"Date": returns.index.strftime("%Y-%m-%d"), "Returns": returns.values}),
    )
    assert app.main(["metrics", str(path), "--preset", "quantstats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    naive = returns.tz_localize(None)
    assert stats["Sharpe Ratio"] == pytest.approx(qs.stats.sharpe(naive), rel=1e-9)
    assert stats["Sortino Ratio"] == pytest.approx(qs.stats.sortino(naive), rel=1e-9)
    assert stats["Max. Drawdown [%]"] == pytest.approx(100 * qs.stats.max_drawdown(naive), rel=1e-9)


def test_equity_file_equals_compute_metrics(tmp_path, sp500_close, capsys):
    path = write(
        tmp_path / "e.csv",
        pd.DataFrame({"timestamp": sp500_close.index.strftime("%Y-%m-%d"), "equity": sp500_close}),
    )
    kind, series = read_series_csv(path)
    assert kind == "equity"
    expected = compute_metrics(series, None, preset="backtesting.py")
    assert app.main(["metrics", str(path), "--preset", "backtesting.py", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["Return [%]"] == pytest.approx(expected["Return [%]"], rel=1e-12)
    assert stats["Return [%]"] == pytest.approx(
        100 * (sp500_close.iloc[-1] / sp500_close.iloc[0] - 1), rel=1e-12
    )
    assert stats["Buy & Hold Return [%]"] is None  # undefined without a benchmark: NaN -> null


def test_every_defect_is_named_by_line_and_column(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("date,equity\n2020-01-01,100\n2020-01-02,abc\n2020-01-02,-5\nnope,3\n")
    with pytest.raises(SeriesFileError) as caught:
        read_series_csv(path)
    assert caught.value.problems == [
        "line 3, column 'equity': 'abc' is invalid: expected a positive number",
        "line 4, column 'equity': '-5' is invalid: expected a positive number",
        "line 4, column 'date': '2020-01-02' repeats line 3's time: timestamps must increase",
        "line 5, column 'date': 'nope' is not a date or time",
    ]
    assert app.main(["metrics", str(path)]) == 1
    assert "bad.csv: 4 problem(s)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,equity\n2020-01-01,1\n", "no timestamp column"),
        ("date,price\n2020-01-01,1\n", "no value column"),
        ("date,returns\n", "no data rows"),
        ("date,returns\n2020-01-01,-1.5\n", "expected a number above -1"),
    ],
)
def test_unusable_files(tmp_path, text, message):
    path = tmp_path / "f.csv"
    path.write_text(text)
    with pytest.raises(SeriesFileError, match=message):
        read_series_csv(path)


def test_values_are_read_as_utc_oldest_first(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("ts,ret\n2024-01-02T00:00:00+02:00,0.01\n2024-01-03,0.02\n")
    kind, series = read_series_csv(path)
    assert kind == "returns"
    assert str(series.index.tz) == "UTC"
    assert series.index[0] == pd.Timestamp("2024-01-01 22:00", tz="UTC")
    np.testing.assert_array_equal(series.to_numpy(), [0.01, 0.02])


# -- the columnar reader and its fallback ---------------------------------------------------


@pytest.fixture
def precise_calls(monkeypatch) -> list[Path]:
    """The files read_series_csv handed to the precise (pandas) path."""
    calls: list[Path] = []

    def recorded(path: Path) -> tuple[str, pd.Series]:
        calls.append(path)
        return read_series_csv_precise(path)

    monkeypatch.setattr(series_io_module, "read_series_csv_precise", recorded)
    return calls


@pytest.mark.parametrize(
    "text",
    [
        "timestamp,equity\n2024-01-01 00:00:00,100\n2024-01-01 00:01:00,100.5\n",
        "Date,Returns\n2024-01-02,0.01\n2024-01-03,-0.02\n2024-01-04,0\n",
        "ts,nav\n2024-01-01T00:00:00Z,1e4\n2024-01-01T03:00:00+02:00,10001.25\n",
        "time,balance\n2024-01-01 00:00:00+0000,7\n2024-01-01 00:00:00.123456+0000,8\n",
        'time,value,note\n2024-01-01 05,3,"a, b"\n\n2024-01-01 06,4,x\n',
        'datetime,ret\n"2024-01-01 00:00",0.1\n"2024-01-01 00:00:01",-0.5\n',
    ],
    ids=["naive", "date-returns", "offsets", "micro", "extra-column-blank-line", "quoted"],
)
def test_columnar_reader_reads_what_pandas_reads(tmp_path, precise_calls, text):
    path = tmp_path / "s.csv"
    path.write_text(text)
    kind, series = read_series_csv(path)
    assert precise_calls == []  # the fast path took it
    expected_kind, expected = read_series_csv_precise(path)
    assert kind == expected_kind
    pd.testing.assert_series_equal(series, expected, check_exact=True)


@pytest.mark.parametrize(
    "text",
    [
        "ts,equity\n2024-01-01,1\n2024-01-02T00:00:00+02:00,2\n",  # with and without offsets
        "ts,equity\n 2024-01-01 , 1.5 \n2024-01-02,2\n",  # spaces around values
        "ts,equity\n01/02/2024,1\n01/03/2024,2\n",  # not ISO 8601
        "ts,equity\n2024-01-01 00:00:00.1234567,1\n2024-01-02,2\n",  # pandas nanoseconds
        "ts,equity,equity\n2024-01-01,1,2\n2024-01-02,2,3\n",  # pandas renames a duplicate
    ],
    ids=["mixed-zones", "spaces", "not-iso", "nanoseconds", "duplicate-name"],
)
def test_what_the_columnar_reader_declines_is_read_by_pandas(tmp_path, precise_calls, text):
    path = tmp_path / "s.csv"
    path.write_text(text)
    kind, series = read_series_csv(path)
    assert precise_calls == [path]
    assert (kind, len(series)) == ("equity", 2)
    assert str(series.index.dtype) in {"datetime64[us, UTC]", "datetime64[ns, UTC]"}


def test_a_defect_anywhere_in_a_large_file_is_named(tmp_path):
    stamps = pd.date_range("2024-01-01", periods=100_000, freq="min", tz="UTC")
    equity = (100 + np.arange(len(stamps)) % 7).astype(str)
    equity[90_000] = "NA"  # in the reader's third block, far past the header's
    path = write(tmp_path / "big.csv", pd.DataFrame({"timestamp": stamps, "equity": equity}))
    with pytest.raises(SeriesFileError) as caught:
        read_series_csv(path)
    assert caught.value.problems == [
        "line 90002, column 'equity': 'NA' is invalid: expected a positive number"
    ]


@pytest.mark.parametrize("unit", [1, 1000], ids=["epoch-seconds", "epoch-milliseconds"])
def test_epoch_times_are_read_as_import_reads_them(tmp_path, unit):
    """`app.py import` takes epoch seconds and milliseconds; `metrics` takes them too."""
    seconds = [1704067200, 1704153600, 1704240000]
    path = tmp_path / "epoch.csv"
    path.write_text("timestamp,equity\n" + "".join(f"{s * unit},{100 + i}\n" for i, s in
                                                    enumerate(seconds)))  # fmt: skip
    kind, series = read_series_csv(path)
    assert kind == "equity"
    assert list(series.index) == list(pd.to_datetime(seconds, unit="s", utc=True))
    assert series.tolist() == [100.0, 101.0, 102.0]
    path.write_text(path.read_text() + "not-a-time,103\n")
    with pytest.raises(SeriesFileError, match="line 5, column 'timestamp': 'not-a-time'"):
        read_series_csv(path)
