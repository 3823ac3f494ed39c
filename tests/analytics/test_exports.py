"""Exports: every kind in every format is read back (pd.read_csv, json.loads, pd.read_excel)
and compared with the source values of a real run (SMA 10/30 long and short on the SP500
sample): floats exactly (Excel: to openpyxl's 16 significant digits), times as UTC, NaN as
empty cells or null."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from analytics.backtest import BacktestResult, run_backtest
from analytics.exports import (
    EXCEL_MAX_ROWS,
    EXPORT_FORMATS,
    EXPORT_KINDS,
    MIME_TYPES,
    SIGNAL_EXPORT_COLUMNS,
    export_bytes,
    export_filename,
    format_duration,
)
from analytics.metrics import compute_metrics
from market.sample_data import load_sample
from strategies.registry import create
from strategies.signals import StrategyResult, StrategySignal

EXCEL_RTOL = 1e-15  # openpyxl writes "%.16g": 16 significant digits
FLOAT_COLUMNS = ("size", "entry_price", "exit_price", "pnl", "return_pct", "commission", "mae")


@pytest.fixture(scope="module")
def run() -> tuple[BacktestResult, StrategyResult]:
    candles = load_sample("SP500")
    strategy = create("sma_crossover", fast=10, slow=30, direction="both")
    signals = strategy.generate(candles, symbol="SP500", timeframe="1d")
    return run_backtest(candles, signals), signals


def read_csv(payload: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(payload))  # pandas 3 parses floats exactly by default


def read_json(payload: bytes) -> list[dict]:
    def no_nan(token: str) -> None:
        raise AssertionError(f"invalid JSON token {token}")

    return json.loads(payload, parse_constant=no_nan)


def read_excel(payload: bytes) -> pd.DataFrame:
    return pd.read_excel(io.BytesIO(payload), engine="openpyxl")


def utc(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True))


# --- trades ----------------------------------------------------------------------------------


def test_trades_csv_round_trip(run: tuple[BacktestResult, StrategyResult]) -> None:
    trades = run[0].trades
    payload, suffix, mime = export_bytes("trades", trades, "csv")
    assert (suffix, mime) == (".csv", "text/csv")
    back = read_csv(payload)
    assert list(back["trade"]) == list(range(1, len(trades) + 1))
    for column in FLOAT_COLUMNS:
        np.testing.assert_array_equal(back[column].to_numpy(), trades[column].to_numpy())
    assert back["entry_time"].str.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z").all()
    assert utc(back["entry_time"]).equals(pd.DatetimeIndex(trades["entry_time"]).as_unit("ns"))
    assert list(back["side"]) == list(trades["side"].astype(str))
    assert list(back["exit_reason"]) == list(trades["exit_reason"].astype(str))
    seconds = trades["duration"].dt.total_seconds()
    np.testing.assert_array_equal(back["duration_s"].to_numpy(), seconds.to_numpy())
    assert back["duration_text"][0] == "3d"
    assert list(back["entry_bar"]) == list(trades["entry_bar"])


def test_trades_json_round_trip(run: tuple[BacktestResult, StrategyResult]) -> None:
    trades = run[0].trades
    records = read_json(export_bytes("trades", run[0], "json")[0])  # a BacktestResult works too
    assert len(records) == len(trades)
    for record, (_, trade) in zip(records, trades.iterrows(), strict=True):
        for column in FLOAT_COLUMNS:
            assert record[column] == trade[column]
        assert pd.Timestamp(record["exit_time"]) == trade["exit_time"]
        assert record["side"] == trade["side"]
        assert record["duration_s"] == trade["duration"].total_seconds()
    nan_trades = trades.iloc[:2].assign(mfe=[np.nan, 0.5])
    nan_records = read_json(export_bytes("trades", nan_trades, "json")[0])
    assert [r["mfe"] for r in nan_records] == [None, 0.5]
    assert read_csv(export_bytes("trades", nan_trades, "csv")[0])["mfe"].isna().tolist() == [
        True,
        False,
    ]


def test_trades_excel_naive_utc_columns(run: tuple[BacktestResult, StrategyResult]) -> None:
    trades = run[0].trades
    payload, suffix, mime = export_bytes("trades", trades, "xlsx")
    assert (suffix, mime) == (".xlsx", MIME_TYPES["xlsx"])
    back = read_excel(payload)
    assert "entry_time (UTC)" in back.columns
    assert "entry_time" not in back.columns
    expected = pd.DatetimeIndex(trades["exit_time"]).tz_convert(None)
    assert list(back["exit_time (UTC)"]) == list(expected)
    for column in FLOAT_COLUMNS:
        got = back[column].to_numpy(dtype=float)
        np.testing.assert_allclose(got, trades[column], rtol=EXCEL_RTOL, atol=0)
    assert list(back["side"]) == list(trades["side"].astype(str))


def test_non_utc_times_are_converted(run: tuple[BacktestResult, StrategyResult]) -> None:
    trades = run[0].trades.iloc[:1].copy()
    trades["entry_time"] = pd.DatetimeIndex(trades["entry_time"]).tz_convert("America/New_York")
    record = read_json(export_bytes("trades", trades, "json")[0])[0]
    assert record["entry_time"] == "1999-02-26T00:00:00Z"
    back = read_excel(export_bytes("trades", trades, "xlsx")[0])
    assert back["entry_time (UTC)"][0] == pd.Timestamp("1999-02-26")


# --- signals ---------------------------------------------------------------------------------


def test_signals_all_formats(run: tuple[BacktestResult, StrategyResult]) -> None:
    result = run[1]
    signals = result.signals
    csv_payload = export_bytes("signals", result, "csv")[0]
    assert export_bytes("signals", list(signals), "csv")[0] == csv_payload
    back = read_csv(csv_payload)
    meta = list(signals[0].metadata)
    assert list(back.columns) == [*SIGNAL_EXPORT_COLUMNS, *meta]
    assert len(back) == len(signals)
    np.testing.assert_array_equal(back["price"], [s.price for s in signals])
    np.testing.assert_array_equal(back["confidence"], [s.confidence for s in signals])
    for key in meta:
        np.testing.assert_array_equal(back[key], [s.metadata[key] for s in signals])
    assert list(back["signal_type"]) == [s.signal_type for s in signals]
    assert utc(back["timestamp"]).equals(pd.DatetimeIndex([s.timestamp for s in signals]))
    records = read_json(export_bytes("signals", result, "json")[0])
    assert records[0]["price"] == signals[0].price
    assert records[0][meta[0]] == signals[0].metadata[meta[0]]
    excel = read_excel(export_bytes("signals", signals, "xlsx")[0])
    assert list(excel["timestamp (UTC)"][:3]) == [s.timestamp.tz_convert(None) for s in signals[:3]]
    prices = [s.price for s in signals]
    np.testing.assert_allclose(excel["price"], prices, rtol=EXCEL_RTOL, atol=0)


def test_signals_metadata_union_and_clash() -> None:
    stamp = pd.Timestamp("2024-01-02", tz="UTC")
    base = ("SP500", "1d", "demo", "abc", "entry_long", 10.5, 0.5)
    signals = [
        StrategySignal(stamp, *base, {"rsi": 25.0, "price": 10.4}),
        StrategySignal(stamp + pd.Timedelta(days=1), *base, {"atr": 1.5}),
    ]
    records = read_json(export_bytes("signals", signals, "json")[0])
    assert records[0]["meta_price"] == 10.4
    assert records[0]["price"] == 10.5
    assert records[1]["rsi"] is None
    assert records[0]["atr"] is None
    assert records[1]["atr"] == 1.5
    empty = read_csv(export_bytes("signals", [], "csv")[0])
    assert list(empty.columns) == list(SIGNAL_EXPORT_COLUMNS)
    assert empty.empty


# --- metrics ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics(run: tuple[BacktestResult, StrategyResult]) -> pd.Series:
    result = run[0]
    stats = compute_metrics(result.equity, result.trades)  # no benchmark: Alpha, Beta are NaN
    assert stats.isna().sum() >= 3
    return stats


def _check_metric(value, source, rtol: float = 0.0) -> None:
    if isinstance(source, pd.Timestamp):
        assert pd.Timestamp(value) == source
    elif isinstance(source, pd.Timedelta):
        assert pd.Timedelta(value) == source
    elif pd.isna(source):
        assert value is None or pd.isna(value)
    else:
        assert float(value) == pytest.approx(float(source), rel=rtol, abs=0)


def test_metrics_json_is_valid_with_nulls(metrics: pd.Series) -> None:
    payload, suffix, mime = export_bytes("metrics", metrics, "json")
    assert (suffix, mime) == (".json", "application/json")
    assert b"NaN" not in payload
    records = read_json(payload)
    assert [r["name"] for r in records] == list(metrics.index)
    for record in records:
        _check_metric(record["value"], metrics[record["name"]])
    by_name = {r["name"]: r["value"] for r in records}
    assert by_name["Beta"] is None
    assert by_name["Start"] == "1999-01-04T00:00:00Z"
    assert by_name["Duration"] == "P7301DT0H0M0S"
    assert by_name["# Trades"] == metrics["# Trades"]
    assert isinstance(by_name["# Trades"], int)


def test_metrics_csv_and_excel(metrics: pd.Series) -> None:
    back = pd.read_csv(io.BytesIO(export_bytes("metrics", metrics, "csv")[0]), dtype=str)
    assert list(back["name"]) == list(metrics.index)
    for name, value in zip(back["name"], back["value"], strict=True):
        _check_metric(None if pd.isna(value) else value, metrics[name])
    assert back.set_index("name")["value"].isna().sum() == metrics.isna().sum()
    excel = read_excel(export_bytes("metrics", metrics, "xlsx")[0]).set_index("name")["value"]
    for name, value in excel.items():
        _check_metric(None if pd.isna(value) else value, metrics[name], EXCEL_RTOL)
    with pytest.raises(ValueError, match=r"pd\.Series"):
        export_bytes("metrics", metrics.to_frame(), "csv")


# --- equity ----------------------------------------------------------------------------------


def test_equity_with_drawdown_and_benchmark(run: tuple[BacktestResult, StrategyResult]) -> None:
    result = run[0]
    equity = result.equity.to_numpy()
    drawdown = -(1 - equity / np.maximum.accumulate(equity)) * 100
    back = read_csv(export_bytes("equity", result, "csv")[0])
    assert list(back.columns) == ["time", "equity", "drawdown_pct", "benchmark"]
    np.testing.assert_array_equal(back["equity"], equity)
    np.testing.assert_array_equal(back["drawdown_pct"], drawdown)
    np.testing.assert_array_equal(back["benchmark"], result.benchmark.to_numpy())
    assert utc(back["time"]).equals(result.equity.index.as_unit("ns"))
    plain = read_json(export_bytes("equity", result.equity, "json")[0])
    assert set(plain[0]) == {"time", "equity", "drawdown_pct"}
    assert plain[-1]["equity"] == equity[-1]
    extra = read_json(export_bytes("equity", result.equity, "json", benchmark=result.benchmark)[0])
    assert extra[-1]["benchmark"] == result.benchmark.iloc[-1]


def test_equity_excel(run: tuple[BacktestResult, StrategyResult]) -> None:
    result = run[0]
    equity = result.equity["2016":]  # the last three years keep the test fast
    payload = export_bytes("equity", equity, "xlsx", benchmark=result.benchmark)[0]
    excel = read_excel(payload)
    assert list(excel.columns) == ["time (UTC)", "equity", "drawdown_pct", "benchmark"]
    np.testing.assert_allclose(excel["equity"], equity, rtol=EXCEL_RTOL, atol=0)
    bench = result.benchmark["2016":]
    np.testing.assert_allclose(excel["benchmark"], bench, rtol=EXCEL_RTOL, atol=0)
    assert list(excel["time (UTC)"]) == list(equity.index.tz_convert(None))
    values = equity.to_numpy()
    drawdown = (values / np.maximum.accumulate(values) - 1) * 100
    np.testing.assert_allclose(excel["drawdown_pct"], drawdown, rtol=EXCEL_RTOL, atol=1e-300)


def test_excel_refuses_more_rows_than_a_sheet_holds() -> None:
    index = pd.date_range("2024-01-01", periods=EXCEL_MAX_ROWS + 1, freq="min", tz="UTC")
    equity = pd.Series(100.0, index=index)
    with pytest.raises(ValueError, match="1,048,576 rows do not fit an Excel sheet"):
        export_bytes("equity", equity, "xlsx")


# --- names and errors ------------------------------------------------------------------------


def test_bad_kind_or_format_names_the_allowed_values(run) -> None:
    with pytest.raises(ValueError, match="'trades', 'signals', 'metrics', 'equity'"):
        export_bytes("orders", run[0].trades, "csv")
    with pytest.raises(ValueError, match="'csv', 'json', 'xlsx'"):
        export_bytes("trades", run[0].trades, "parquet")
    with pytest.raises(ValueError, match="fmt='xls'"):
        export_filename("trades", "x", "xls")
    assert set(EXPORT_KINDS) == {"trades", "signals", "metrics", "equity"}
    assert set(MIME_TYPES) == set(EXPORT_FORMATS)


def test_export_filename_is_safe() -> None:
    name = export_filename("trades", "sma crossover / SP500 1d", "csv", date="2024-01-02")
    assert name == "sma_crossover_SP500_1d_trades_2024-01-02.csv"
    parts = export_filename(
        "equity", ["ema_crossover", "BTC/USDT", "15m"], "xlsx", date=pd.Timestamp("2024-03-05")
    )
    assert parts == "ema_crossover_BTC_USDT_15m_equity_2024-03-05.xlsx"
    today = export_filename("metrics", "../etc passwd", "json")
    assert re.fullmatch(r"etc_passwd_metrics_\d{4}-\d\d-\d\d\.json", today)


def test_format_duration() -> None:
    cases = [
        (pd.Timedelta(days=3), "3d"),
        (pd.Timedelta(days=42, hours=4, minutes=3), "42d 4h"),
        (pd.Timedelta(hours=5, minutes=30), "5h 30m"),
        (pd.Timedelta(hours=1), "1h"),
        (pd.Timedelta(seconds=45), "45s"),
        (pd.Timedelta(0), "0s"),
        (pd.Timedelta(milliseconds=500), "0.5s"),
        (pd.Timedelta(hours=-2), "-2h"),
        (np.timedelta64(90, "m"), "1h 30m"),
        (90.0, "1m 30s"),
        (pd.NaT, ""),
        (None, ""),
    ]
    assert [format_duration(value) for value, _ in cases] == [text for _, text in cases]
