"""Types the models share: numbers that are null where undefined, the query choices."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

Period = Literal["all", "daily", "weekly", "monthly"]
Preset = Literal["quantstats", "backtesting.py", "trade"]
Dimension = Literal["label", "session", "hour", "weekday", "size", "regime", "strategy", "symbol"]
Clock = Literal["entry", "exit"]
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
"""Text without control characters (PostgreSQL refuses NUL in text: a 422, not a 500)."""


def _finite_or_none(value: Any) -> Any:
    """NaN and infinities (a metric undefined here) as None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Number = Annotated[float | None, BeforeValidator(_finite_or_none)]
"""A float, or null where it is undefined (a win rate without trades, a ratio without spread)."""

MetricValue = Annotated[float | int | str | None, BeforeValidator(_finite_or_none)]
"""A metric: a number, a time (ISO 8601 text: ``Start``, ``End``) or null; durations in s."""
