"""`python app.py metrics FILE`: equity or returns from another tool's CSV, every defect named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

import app
from analytics.metrics import compute_metrics
from analytics.series_io import SeriesFileError, read_series_csv
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
