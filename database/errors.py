"""Errors raised by the persistence layer, named for what went wrong."""

from __future__ import annotations

from collections.abc import Iterable


class RepositoryError(Exception):
    """Base class of the errors the repositories raise on purpose."""


class DuplicateTradeError(RepositoryError, ValueError):
    """One or more trade ids are repeated in a batch or already stored; nothing was written."""

    def __init__(self, trade_ids: Iterable[str], *, where: str) -> None:
        self.trade_ids = tuple(sorted(set(trade_ids)))
        shown = ", ".join(repr(t) for t in self.trade_ids[:10])
        more = f" and {len(self.trade_ids) - 10} more" if len(self.trade_ids) > 10 else ""
        super().__init__(f"duplicate trade id(s) {where}: {shown}{more}; no trade was written")


class TradeImmutableError(RepositoryError):
    """A stored trade cannot be updated or deleted."""


class RunNotFoundError(RepositoryError, LookupError):
    """No strategy run has the given id."""
