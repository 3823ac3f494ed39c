"""Read an equity or returns series from CSV, for metrics of results made by other tools.

>>> kind, series = read_series_csv(Path("equity.csv"))   # ("equity", Series) or ("returns", ...)

The file has a timestamp column (timestamp, date, datetime, time or ts) and one value column:
equity (equity, value, nav, balance, portfolio) or returns (returns, return, ret; fractions,
0.01 = 1 %). Every defect is reported with the file, the line and the column, and nothing is
computed from a file that has one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TIME_NAMES = ("timestamp", "date", "datetime", "time", "ts")
EQUITY_NAMES = ("equity", "value", "nav", "balance", "portfolio")
RETURN_NAMES = ("returns", "return", "ret")


class SeriesFileError(ValueError):
    """A series file that cannot be used; ``problems`` lists every defect found."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path.name}: {len(problems)} problem(s)\n{listed}{more}")


def read_series_csv(path: Path) -> tuple[str, pd.Series]:
    """("equity" | "returns", a float Series on a UTC DatetimeIndex, oldest first)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SeriesFileError(path, [f"cannot be read as CSV: {exc}"]) from None
    columns = {c.strip().lower(): c for c in raw.columns}
    time_col = next((columns[n] for n in TIME_NAMES if n in columns), None)
    value_col, kind = None, None
    for names, what in ((EQUITY_NAMES, "equity"), (RETURN_NAMES, "returns")):
        found = next((columns[n] for n in names if n in columns), None)
        if found is not None:
            value_col, kind = found, what
            break
    missing = []
    if time_col is None:
        missing.append(f"no timestamp column: expected one of {', '.join(TIME_NAMES)}")
    if value_col is None:
        missing.append(
            "no value column: expected equity (" + ", ".join(EQUITY_NAMES) + ") or returns ("
            + ", ".join(RETURN_NAMES) + ")"
        )  # fmt: skip
    if missing:
        raise SeriesFileError(path, missing)
    if raw.empty:
        raise SeriesFileError(path, ["no data rows"])

    lines = np.arange(len(raw)) + 2  # header is line 1
    stamps = pd.to_datetime(raw[time_col].str.strip(), errors="coerce", utc=True, format="mixed")
    values = pd.to_numeric(raw[value_col].str.strip(), errors="coerce").to_numpy(dtype=float)
    problems = [
        f"line {line}, column {time_col!r}: {text!r} is not a date or time"
        for line, text, bad in zip(lines, raw[time_col], stamps.isna(), strict=True)
        if bad
    ]
    bad_value = ~np.isfinite(values)
    if kind == "equity":
        bad_value |= values <= 0
        rule = "a positive number"
    else:
        bad_value |= values <= -1
        rule = "a number above -1 (a fraction: 0.01 = 1 %)"
    problems += [
        f"line {line}, column {value_col!r}: {text!r} is invalid: expected {rule}"
        for line, text, bad in zip(lines, raw[value_col], bad_value, strict=True)
        if bad
    ]
    order = stamps.to_numpy()
    valid = ~stamps.isna().to_numpy()
    backwards = np.flatnonzero(valid[1:] & valid[:-1] & (order[1:] <= order[:-1])) + 1
    problems += [
        f"line {lines[i]}, column {time_col!r}: {raw[time_col].iloc[i]!r} "
        f"{'repeats' if order[i] == order[i - 1] else 'goes back from'} line {lines[i - 1]}'s "
        "time: timestamps must increase"
        for i in backwards
    ]
    if problems:
        problems.sort(key=lambda text: int(text.split(",")[0].removeprefix("line ")))
        raise SeriesFileError(path, problems)
    series = pd.Series(values, index=pd.DatetimeIndex(stamps, name="timestamp"), name=kind)
    return kind, series
