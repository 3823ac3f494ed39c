"""What every importer hands back: the fills read, where they came from, what was left out and
why, and the one error that lists every problem of a rejected file.

>>> log = ProblemLog("fills.csv")
>>> log.add("row 3", "price", "'abc' is not a number")
>>> str(log.problems[0])
"fills.csv, row 3, column 'price': 'abc' is not a number"
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from database.models import Trade as TradeRow
from database.records import TradeRecord

if TYPE_CHECKING:
    from tracking.importers.executions import ExecutionBatch

T = TypeVar("T")

FORMATS: tuple[str, ...] = ("freqtrade", "hummingbot", "csv", "orders-csv")
MAX_LISTED = 50  # problems spelled out in a TradeImportError; the rest are counted

# longest text the trades table stores in these fields (String(n) columns: PostgreSQL enforces)
TEXT_LIMITS: dict[str, int] = {
    name: TradeRow.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in ("trade_id", "strategy_id", "symbol", "order_id")
}
# what one unit of each source is, for the summary line
_UNITS = {
    "freqtrade": "orders", "hummingbot": "TradeFill rows", "csv": "rows", "orders-csv": "rows",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One reason a file is rejected: the file, the place (a CSV data row, a database table and
    primary key; empty for the whole file), the column (None for a whole row) and what is wrong.
    """

    source: str
    place: str
    column: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.source]
        if self.place:
            parts.append(self.place)
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return f"{', '.join(parts)}: {self.message}"


class TradeImportError(ValueError):
    """A file rejected as a whole: nothing of it is imported. ``problems`` holds every problem
    found; the message lists the first ``MAX_LISTED`` and counts the rest."""

    def __init__(self, source: str, problems: Sequence[ImportProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        lines = [str(p) for p in self.problems[:MAX_LISTED]]
        if count > MAX_LISTED:
            lines.append(f"... and {count - MAX_LISTED} more")
        header = f"{source}: rejected, nothing imported ({count} problem{'s' * (count != 1)})"
        super().__init__("\n".join([header, *lines]))


class ProblemLog:
    """Collects every problem of one file, so the user sees them all at once, not one a run."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[ImportProblem] = []

    def add(self, place: str, column: str | None, message: str) -> None:
        self.problems.append(ImportProblem(self.source, place, column, message))

    def fail(self, message: str) -> TradeImportError:
        """The error for a file that cannot be read at all (raise what this returns)."""
        self.add("", None, message)
        return TradeImportError(self.source, self.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise TradeImportError(self.source, self.problems)


class RowCheck:
    """The checks of one row: each failed parse is logged at the row's place and column, and
    ``ok`` tells whether this row added any problem."""

    def __init__(self, log: ProblemLog, place: str, row: Any) -> None:
        self.log, self.place, self.row = log, place, row
        self._before = len(log.problems)

    @property
    def ok(self) -> bool:
        return len(self.log.problems) == self._before

    def problem(self, column: str | None, message: str) -> None:
        self.log.add(self.place, column, message)

    def fits(self, **values: tuple[str | None, str | None]) -> None:
        """A problem for each field longer than the trades table stores: ``field=(column,
        value)`` names the source column the value came from."""
        for name, (column, value) in values.items():
            if value is not None and len(value) > TEXT_LIMITS[name]:
                self.problem(
                    column,
                    f"{value[:40]!r}... is {len(value)} characters: the {name} of a "
                    f"stored trade holds at most {TEXT_LIMITS[name]}",
                )

    def get(self, column: str, parse: Callable[[Any], T]) -> T | None:
        """``parse(row[column])``; None (and a problem) when it raises ValueError."""
        try:
            return parse(self.row[column])
        except ValueError as exc:
            self.problem(column, str(exc))
            return None


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Which reader read which file."""

    format: str
    path: str

    def __str__(self) -> str:
        return f"{self.format} file {self.path}"


@dataclass(frozen=True)
class ImportedTrades:
    """The fills of one file, ordered by execution time, then by the source's own order.

    ``rows_read`` counts the source's units (freqtrade orders, Hummingbot TradeFill rows, CSV
    data rows); each is either one record or counted once in ``skipped`` under its reason.
    ``notes`` counts facts that left nothing out but change how to read the records (an open
    freqtrade trade's position is still open, a fee that could not be converted).
    ``executions``: the orders behind the fills, with their fills, for transaction-cost
    analysis (freqtrade, Hummingbot, orders-csv; None for a CSV of fills).
    """

    records: list[TradeRecord]
    source: ImportSource
    rows_read: int
    skipped: Mapping[str, int] = field(default_factory=dict)
    notes: Mapping[str, int] = field(default_factory=dict)
    executions: ExecutionBatch | None = None

    @property
    def skipped_rows(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """For the command line, e.g. "freqtrade file x.sqlite: 7 orders read, 5 fills
        imported, 2 skipped (2 cancelled, expired or rejected orders without fill)", then a
        line per note."""
        return summary_line(
            self.source, self.rows_read, len(self.records), self.skipped, self.notes
        )


def summary_line(
    source: ImportSource,
    rows_read: int,
    fills: int,
    skipped: Mapping[str, int],
    notes: Mapping[str, int],
) -> str:
    """ImportedTrades.summary's text of these counts."""
    unit = _UNITS.get(source.format, "rows")
    text = f"{source}: {rows_read} {unit} read, {fills} fills imported"
    if skipped:
        reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        text += f", {sum(skipped.values())} skipped ({reasons})"
    for note, n in sorted(notes.items()):
        text += f"\nnote: {n} {note}"
    return text


def finite(value: object) -> float:
    """``value`` (a number, or the text of one) as a finite float; ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    try:
        result = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def fill_id(prefix: str, *parts: object) -> str:
    """``prefix:part:part...``, the same for the same fill on every read; when longer than a
    stored trade_id holds, ``prefix:`` and 32 hex digits of the parts' SHA-256 instead."""
    text = ":".join([prefix, *map(str, parts)])
    if len(text) <= TEXT_LIMITS["trade_id"]:
        return text
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{prefix}:{digest[:32]}"


def ordered(
    keyed: Iterable[tuple[tuple[datetime, object], TradeRecord]],
    source: ImportSource,
    rows_read: int,
    skipped: Counter[str],
    notes: Counter[str],
    executions: ExecutionBatch | None = None,
) -> ImportedTrades:
    """The result with its records sorted by ``(execution_time, source order)``."""
    records = [record for _, record in sorted(keyed, key=lambda pair: pair[0])]
    return ImportedTrades(records, source, rows_read, dict(skipped), dict(notes), executions)
