"""Each account's newest stored trade row: what the trade tracker checks before a batch
(tracking/tracker.py: a row another writer stored makes it read the account again) and
reads after it.

>>> newest_rows(session, ["paper", "ib"])           # {"paper": 1234, "ib": 0}
>>> newest_sql(2)                                   # the same as driver SQL, %s each

One ``max(id)`` per account: both databases answer it from the last entry of the
(account_id, id) index, where a GROUP BY over an IN list reads every row of the accounts
(0.8 s for one of 1,000,000 trades on PostgreSQL). One statement per number of accounts,
made once (compiling one took ~3 ms a batch).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from database.repositories.trades import TRADES

ACCOUNTS_PER_QUERY = 500  # bound parameters within both databases' limits


def newest_rows(session: Session, accounts: Iterable[str]) -> dict[str, int]:
    """Each account's newest stored trade row (0: none)."""
    names = sorted(accounts)
    out: dict[str, int] = {}
    for start in range(0, len(names), ACCOUNTS_PER_QUERY):
        part = names[start : start + ACCOUNTS_PER_QUERY]
        values = {f"a{k}": name for k, name in enumerate(part)}
        row = session.execute(_statement(len(part)), values).one()
        out.update({account: int(newest or 0) for account, newest in zip(part, row, strict=True)})
    return out


@functools.lru_cache(maxsize=32)
def newest_sql(count: int, style: str = "%s") -> str:
    """``SELECT (max id of the first account), (of the second), ...`` as one row: each
    account's parameter written ``style`` (``:a{k}`` for SQLAlchemy's named ones)."""
    table = TRADES.name
    return "SELECT " + ", ".join(
        f"(SELECT max(id) FROM {table} WHERE account_id = {style.format(k=k)})"
        for k in range(count)
    )


@functools.lru_cache(maxsize=32)
def _statement(count: int) -> Any:
    return text(newest_sql(count, ":a{k}"))


__all__ = ["ACCOUNTS_PER_QUERY", "newest_rows", "newest_sql"]
