"""Downloads: trades, signals, metrics or the equity curve as CSV, JSON or Excel bytes.

>>> payload, suffix, mime = export_bytes("trades", result.trades, "csv")
>>> export_filename("trades", "sma_crossover SP500 1d", "csv", date="2024-01-02")
'sma_crossover_SP500_1d_trades_2024-01-02.csv'

Times are UTC: ISO 8601 strings ending in "Z" in CSV and JSON; in Excel, which cannot hold a
time zone, naive UTC datetimes under a column name saying so ("entry_time (UTC)"). CSV and
JSON write floats in their shortest round-trip form (``repr``), so reading a file back gives
the same numbers; Excel holds what openpyxl writes, 16 significant digits (1e-15
relative). Missing values are empty cells in CSV and Excel and ``null`` in JSON (always valid
JSON, never a NaN token). A dashboard callback hands the bytes to ``dcc.send_bytes``.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable
from datetime import date as Date
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from market.timeframes import as_utc
from strategies.signals import StrategyResult, StrategySignal

ExportKind = Literal["trades", "signals", "metrics", "equity"]
ExportFormat = Literal["csv", "json", "xlsx"]
EXPORT_KINDS: tuple[str, ...] = get_args(ExportKind)
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
MIME_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# the base columns of a signals export; metadata keys follow (prefixed "meta_" on a clash)
SIGNAL_EXPORT_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "symbol",
    "timeframe",
    "strategy_name",
    "config_hash",
    "signal_type",
    "price",
    "confidence",
)
EXCEL_MAX_ROWS = 1_048_575  # a sheet's 1,048,576 rows, one for the header
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _check(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(
            f"{name}={value!r} is invalid: expected one of " + ", ".join(map(repr, allowed))
        )


def format_duration(value: pd.Timedelta | float | None) -> str:
    """A duration as its two largest units: ``"3d"``, ``"42d 4h"``, ``"5h 30m"``, ``"45s"``.

    A number is seconds; NaT, NaN or None give "".
    """
    if value is None or pd.isna(value):
        return ""
    if isinstance(value, pd.Timedelta | np.timedelta64):
        seconds = pd.Timedelta(value).total_seconds()
    else:
        seconds = float(value)
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    if whole < 60:
        text = f"{abs(seconds):.3g}s" if abs(seconds) < 1 and seconds else f"{whole}s"
        return sign + text
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append(f"{count}{unit}")
    shown = parts[:2]
    while len(shown) > 1 and shown[-1].startswith("0"):
        shown.pop()
    return sign + " ".join(shown)


def export_filename(
    kind: ExportKind,
    label: str | Iterable[str],
    fmt: ExportFormat,
    *,
    date: Date | pd.Timestamp | str | None = None,
) -> str:
    """``{label}_{kind}_{YYYY-MM-DD}.{fmt}`` with only letters, digits, ``.``, ``_``, ``-``.

    >>> export_filename("signals", ["ema_crossover", "SP500", "1d"], "json", date="2024-01-02")
    'ema_crossover_SP500_1d_signals_2024-01-02.json'

    ``label`` names the run (strategy, symbol, timeframe), a string or its parts; any run of
    spaces, slashes or other characters becomes one "_". ``date``: today (UTC) when None.
    """
    _check("kind", kind, EXPORT_KINDS)
    _check("fmt", fmt, EXPORT_FORMATS)
    parts = [label] if isinstance(label, str) else list(label)
    stamp = pd.Timestamp.now(tz="UTC") if date is None else pd.Timestamp(date)
    name = "_".join([*map(str, parts), kind, stamp.strftime("%Y-%m-%d")])
    name = _UNSAFE.sub("_", name).strip("._-")
    return f"{name}.{fmt}"


# --- the frame of each kind ------------------------------------------------------------------


def _utc(values: pd.Series) -> pd.Series:
    """Datetimes as UTC (a naive column is read as UTC)."""
    values = pd.to_datetime(values)
    return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")


def trades_frame(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades frame to export: ``trade`` number (1-based) first, UTC times, categoricals
    as strings, ``duration`` as ``duration_s`` (seconds) and ``duration_text`` ("42d 4h")."""
    out = pd.DataFrame(index=range(len(trades)))
    out["trade"] = np.arange(1, len(trades) + 1)
    for column in trades.columns:
        values = trades[column].reset_index(drop=True)
        if column == "duration":
            durations = pd.to_timedelta(values)
            out["duration_s"] = durations.dt.total_seconds()
            out["duration_text"] = [format_duration(d) for d in durations]
        elif isinstance(values.dtype, pd.CategoricalDtype):
            out[column] = values.astype(object).where(values.notna(), None)
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            out[column] = _utc(values)
        else:
            out[column] = values
    return out


def signals_frame(signals: StrategyResult | Iterable[StrategySignal]) -> pd.DataFrame:
    """One row per signal: :data:`SIGNAL_EXPORT_COLUMNS`, then one column per metadata key
    (first-seen order; NaN where a signal lacks it)."""
    items = signals.signals if isinstance(signals, StrategyResult) else tuple(signals)
    rows = {c: [getattr(s, c) for s in items] for c in SIGNAL_EXPORT_COLUMNS}
    keys: dict[str, None] = {}
    for s in items:
        keys.update(dict.fromkeys(s.metadata))
    for key in keys:
        column = f"meta_{key}" if key in rows else key
        rows[column] = [s.metadata.get(key, math.nan) for s in items]
    out = pd.DataFrame(rows, columns=list(rows))
    out["timestamp"] = pd.to_datetime(pd.Series(rows["timestamp"], dtype=object), utc=True)
    return out


def _plain(value: Any) -> Any:
    """A metric value as a JSON/CSV-able scalar: ISO strings for times, None for NaN/NaT."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        return _iso_stamps(pd.Series([as_utc(value)]))[0]
    if isinstance(value, pd.Timedelta):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if math.isnan(value) else float(value)
    if pd.isna(value):
        return None
    return value


def metrics_frame(metrics: pd.Series) -> pd.DataFrame:
    """``name, value`` rows of a :func:`analytics.metrics.compute_metrics` Series; Timestamps
    and Timedeltas as ISO 8601 strings ("1999-01-04T00:00:00Z", "P42DT0H0M0S"), NaN as None."""
    return pd.DataFrame(
        {
            "name": [str(k) for k in metrics.index],
            "value": pd.Series([_plain(v) for v in metrics.to_numpy()], dtype=object),
        }
    )


def equity_frame(
    equity: pd.Series, benchmark: pd.Series | pd.DataFrame | None = None
) -> pd.DataFrame:
    """``time, equity, drawdown_pct`` (<= 0: (equity / running peak - 1) * 100) and
    ``benchmark`` when given (reindexed to the equity's times, forward-filled)."""
    values = equity.astype(float)
    index = equity.index
    times = _utc(pd.Series(index)) if isinstance(index, pd.DatetimeIndex) else index.to_numpy()
    out = pd.DataFrame({"time": times, "equity": values.to_numpy()})
    # (v / peak - 1) is exactly -(1 - v / peak), without a "-0.0" at the peaks
    out["drawdown_pct"] = (values / values.cummax() - 1).to_numpy() * 100
    if benchmark is not None:
        series = benchmark
        if isinstance(series, pd.DataFrame):
            series = series["close"] if "close" in series else series["Close"]
        out["benchmark"] = series.reindex(equity.index).ffill().to_numpy(dtype=float)
    return out


def export_frame(
    kind: ExportKind, data: Any, *, benchmark: pd.Series | None = None
) -> pd.DataFrame:
    """The table ``export_bytes`` writes, with real (tz-aware UTC) datetimes.

    ``data``: trades -- the trades frame or a BacktestResult; signals -- a StrategyResult or
    StrategySignals; metrics -- a compute_metrics Series; equity -- the equity Series (then
    ``benchmark`` adds a column) or a BacktestResult (its own benchmark).
    """
    _check("kind", kind, EXPORT_KINDS)
    if kind == "trades":
        return trades_frame(getattr(data, "trades", data))
    if kind == "signals":
        return signals_frame(data)
    if kind == "metrics":
        if not isinstance(data, pd.Series):
            raise ValueError(f"metrics export needs a pd.Series, got {type(data).__name__}")
        return metrics_frame(data)
    if hasattr(data, "equity"):
        benchmark = benchmark if benchmark is not None else getattr(data, "benchmark", None)
        data = data.equity
    return equity_frame(data, benchmark)


# --- writers ---------------------------------------------------------------------------------


def _iso_stamps(values: pd.Series) -> list[str | None]:
    """UTC datetimes as ISO 8601 strings ending in "Z"; fractions of a second only when some
    time has one."""
    stamps = values.dt.tz_convert(None)
    fraction = (stamps.dt.microsecond != 0).any() or (stamps.dt.nanosecond != 0).any()
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f" if fraction else "%Y-%m-%dT%H:%M:%S") + "Z"
    return [t if isinstance(t, str) else None for t in text.astype(object)]


def _datetime_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Datetimes replaced by ISO strings, for CSV and JSON."""
    out = frame.copy()
    for column in _datetime_columns(frame):
        out[column] = pd.Series(_iso_stamps(frame[column]), index=frame.index, dtype=object)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_bytes(frame: pd.DataFrame) -> bytes:
    """A JSON array of row objects; floats in repr form, NaN as null (``allow_nan=False``
    guarantees no NaN token slips through)."""
    text = _text_frame(frame)
    columns = list(text.columns)
    arrays = [text[c].to_numpy(dtype=object) for c in columns]
    records = [
        {
            c: (None if isinstance(v, float) and math.isnan(v) else v)
            for c, v in zip(columns, row, strict=True)
        }
        for row in zip(*arrays, strict=True)
    ]
    return json.dumps(records, default=_json_default, allow_nan=False).encode()


def _excel_bytes(frame: pd.DataFrame, sheet: str) -> bytes:
    """An .xlsx workbook of one sheet; tz-aware datetimes become naive UTC under "<name> (UTC)"."""
    if len(frame) > EXCEL_MAX_ROWS:
        raise ValueError(
            f"{len(frame):,} rows do not fit an Excel sheet ({EXCEL_MAX_ROWS:,} rows at most "
            "below the header): export csv or json"
        )
    out = frame.copy()
    renames = {}
    for column in _datetime_columns(frame):
        out[column] = frame[column].dt.tz_convert(None)
        renames[column] = f"{column} (UTC)"
    out = out.rename(columns=renames)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        out.to_excel(writer, sheet_name=sheet, index=False)
    return buffer.getvalue()


def export_bytes(
    kind: ExportKind, data: Any, fmt: ExportFormat, *, benchmark: pd.Series | None = None
) -> tuple[bytes, str, str]:
    """``(payload, ".csv" | ".json" | ".xlsx", mime type)`` of one export.

    >>> payload, suffix, mime = export_bytes("metrics", stats, "json")
    >>> json.loads(payload)[0]
    {'name': 'Start', 'value': '1999-01-04T00:00:00Z'}

    ``data`` as in :func:`export_frame`. A bad ``kind`` or ``fmt`` raises ValueError naming the
    allowed values.
    """
    _check("kind", kind, EXPORT_KINDS)
    _check("fmt", fmt, EXPORT_FORMATS)
    frame = export_frame(kind, data, benchmark=benchmark)
    if fmt == "csv":
        payload = _text_frame(frame).to_csv(index=False, lineterminator="\n").encode()
    elif fmt == "json":
        payload = _json_bytes(frame)
    else:
        payload = _excel_bytes(frame, sheet=kind)
    return payload, f".{fmt}", MIME_TYPES[fmt]


__all__ = [
    "EXCEL_MAX_ROWS",
    "EXPORT_FORMATS",
    "EXPORT_KINDS",
    "MIME_TYPES",
    "SIGNAL_EXPORT_COLUMNS",
    "equity_frame",
    "export_bytes",
    "export_filename",
    "export_frame",
    "format_duration",
    "metrics_frame",
    "signals_frame",
    "trades_frame",
]
