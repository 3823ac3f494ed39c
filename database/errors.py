"""Errors raised by the persistence layer, named for what went wrong."""

from __future__ import annotations

from collections.abc import Iterable


class RepositoryError(Exception):
    """Base class of the errors the repositories raise on purpose."""


class DuplicateTradeError(RepositoryError, ValueError):
    """One or more trade ids are repeated in a batch or already stored; nothing was written."""

    def __init__(self, trade_ids: Iterable[str], *, where: str, account: str | None = None) -> None:
        self.trade_ids = tuple(sorted(set(trade_ids)))
        self.account = account
        shown = ", ".join(repr(t) for t in self.trade_ids[:10])
        more = f" and {len(self.trade_ids) - 10} more" if len(self.trade_ids) > 10 else ""
        of = f" (account {account!r})" if account is not None else ""
        super().__init__(f"duplicate trade id(s) {where}: {shown}{more}{of}; no trade was written")


class DuplicateOrderError(RepositoryError, ValueError):
    """Imported order ids repeated in a batch or already stored in the account; nothing was
    written (an order is stored once, with all of its fills)."""

    def __init__(self, order_ids: Iterable[str], *, where: str, account: str) -> None:
        self.order_ids = tuple(sorted(set(order_ids)))
        self.account = account
        shown = ", ".join(repr(o) for o in self.order_ids[:10])
        more = f" and {len(self.order_ids) - 10} more" if len(self.order_ids) > 10 else ""
        super().__init__(
            f"duplicate order id(s) {where}: {shown}{more} (account {account!r});"
            " no order was written"
        )


class TradeImmutableError(RepositoryError):
    """A stored trade cannot be updated or deleted."""


class RunNotFoundError(RepositoryError, LookupError):
    """No strategy run has the given id."""


def is_transient_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the database is busy or briefly unreachable, so the same work
    may succeed if tried again later: SQLite's "database is locked" (another writer held the
    lock past the busy timeout), a connection lost or refused, a pool with no connection
    free, a PostgreSQL lock timeout, deadlock or serialization failure, a server shutting
    down ("terminating connection due to administrator command"), a connection the server
    closed under a transaction (psycopg2's InterfaceError "connection already closed"). False
    for everything else (a bug, a schema problem, an integrity error: retrying cannot help)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlite = type(exc.orig).__module__.startswith("sqlite3")
    if exc.connection_invalidated or (isinstance(exc, InterfaceError) and not sqlite):
        return True  # (sqlite3's InterfaceError is a bad parameter: a bug)
    if not isinstance(exc, OperationalError):
        return False
    if sqlite:
        # "no such table" or "disk I/O error" are OperationalErrors too, and permanent
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text
    return True  # PostgreSQL: connection, lock timeout, deadlock, serialization, shutdown


def failure_reason(exc: BaseException) -> str:
    """The driver's own message of a database failure, on one line and without the SQL
    statement or its parameters (which SQLAlchemy's str() appends)."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(orig).__name__)[:200]
