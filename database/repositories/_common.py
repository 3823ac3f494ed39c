"""What the repositories share: chunked bulk writes, aware times, argument checks, filters.

Helpers for the modules of this package only; callers use the repositories.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Select, Table, func, select
from sqlalchemy.orm import Session

TimeLike = datetime | str
"""A timezone-aware time: a datetime / pd.Timestamp, or an ISO string with an offset."""

DEFAULT_CHUNK_ROWS = 10_000
IN_CHUNK = 500  # ids per IN (...) query, far below SQLite's bound-parameter limit


BULK_DIALECTS = ("postgresql", "sqlite")  # config.settings accepts these DATABASE_URLs only


def bulk_dialect(connection: Connection, what: str) -> str:
    """The connection's dialect name, one of ``BULK_DIALECTS`` whose bulk writes (binary COPY,
    multi-row INSERT) the repositories implement; NotImplementedError naming ``what`` and the
    supported databases for another."""
    dialect = connection.dialect.name
    if dialect not in BULK_DIALECTS:
        raise NotImplementedError(
            f"{what} supports SQLite and PostgreSQL, the databases StratLens runs on, not {dialect}"
        )
    return dialect


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def aware_timestamp(value: TimeLike, name: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp; ValueError naming ``name`` if it is naive."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(
            f"{name}={value!r} is naive: pass a timezone-aware time (UTC), e.g. "
            "pd.Timestamp('2024-01-02', tz='UTC')"
        )
    return stamp.tz_convert("UTC")


def choices(name: str, values: str | Iterable[str], allowed: tuple[str, ...]) -> list[str]:
    """``values`` (one or many) as a list; ValueError naming those not in ``allowed``."""
    chosen = [values] if isinstance(values, str) else list(values)
    unknown = [value for value in chosen if value not in allowed]
    if unknown:
        raise ValueError(
            f"{name}={values!r}: unknown {', '.join(map(repr, unknown))}; "
            f"expected among {', '.join(allowed)}"
        )
    return chosen


def where_matching(
    statement: Select[Any],
    table: Table,
    equal: Mapping[str, Any],
    *,
    within: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> Select[Any]:
    """The filters of the run, signal and trade queries: each column of ``table`` named in
    ``equal`` equals its value, and ``start <= within <= end``. None means "any"."""
    for name, value in equal.items():
        if value is not None:
            statement = statement.where(table.c[name] == value)
    if start is not None:
        statement = statement.where(table.c[within] >= aware_timestamp(start, "start"))
    if end is not None:
        statement = statement.where(table.c[within] <= aware_timestamp(end, "end"))
    return statement


def ordered(
    statement: Select[Any], order: Sequence[ColumnElement[Any]], limit: int | None
) -> Select[Any]:
    """The statement sorted by ``order``, its first ``limit`` rows when given."""
    statement = statement.order_by(*order)
    return statement if limit is None else statement.limit(limit)


def stored_keys(
    session: Session, table: Table, key: str, account_id: str, wanted: Iterable[str]
) -> set[str]:
    """Which of ``wanted`` values of ``table``'s ``key`` column the account already has (the
    trades' ids, the imported orders' ids), asked ``IN_CHUNK`` at a time."""
    values = list(dict.fromkeys(wanted))
    column, account = table.c[key], table.c["account_id"]
    found: set[str] = set()
    for part in chunks(values, IN_CHUNK):
        found.update(session.scalars(select(column).where(account == account_id, column.in_(part))))
    return found


def accounts_with_source(session: Session, table: Table) -> list[tuple[str, int, str | None]]:
    """(account, rows, ``source`` of its first row) of every account in ``table`` (one with
    ``account_id`` and ``source`` columns), by account name."""
    first = (
        select(table.c.account_id, func.min(table.c.id).label("first"), func.count())
        .group_by(table.c.account_id)
        .subquery()
    )
    rows = session.execute(
        select(first.c.account_id, first.c.count, table.c.source)
        .join(table, table.c.id == first.c.first)
        .order_by(first.c.account_id)
    ).all()
    return [(a, int(n), source) for a, n, source in rows]
