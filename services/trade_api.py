"""What the REST API does with trades beyond TrackingService's queries: a page of an
account's stored trades (by row id, with filters), and a posted batch recorded whole or not
at all, its repeated ids named.

>>> trades = TradeApi(tracking, sessions)
>>> trades.page("acc1", after_id=0, limit=100, label="breakout")
>>> trades.record(records)          # Recorded; DuplicateTradeError naming every stored id
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from database.errors import DuplicateTradeError
from database.records import TradeRecord
from database.repositories.trade_pages import TradePages
from database.repositories.trades import TradeRepository
from services.tracking import TrackingService
from tracking.tracker import Recorded


class TradeApi:
    def __init__(self, tracking: TrackingService, sessions: sessionmaker[Session]) -> None:
        self._tracking = tracking
        self._sessions = sessions

    def page(self, account_id: str, **query: Any) -> list[tuple[int, TradeRecord]]:
        """Up to ``limit`` (row id, trade) after ``after_id``, matching every filter given
        (:meth:`database.repositories.trade_pages.TradePages.page`)."""
        with self._sessions() as session:
            return TradePages(session).page(account_id, **query)

    def record(self, records: Sequence[TradeRecord]) -> Recorded:
        """Record the batch through the tracker in one transaction, committed on return.
        Ids the account already holds raise DuplicateTradeError naming all of them (the
        tracker itself stops at the first); nothing is written then, nor on any refusal."""
        by_account: dict[str, list[str]] = {}
        for record in records:
            by_account.setdefault(record.account_id, []).append(record.trade_id)
        with self._sessions() as session:
            repo = TradeRepository(session)
            for account, ids in by_account.items():
                stored = repo.stored_ids(account, ids)
                if stored:
                    raise DuplicateTradeError(stored, where="already stored", account=account)
        return self._tracking.tracker.record_many(records)


__all__ = ["TradeApi"]
