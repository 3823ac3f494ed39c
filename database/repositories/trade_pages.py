"""TradePages: an account's stored trades a page at a time, for the REST API's trade list.

Keyed by the stored row id (``trades.id``, the recording order): a page is the rows after a
cursor, so a client walking the pages sees every trade once even while new ones are recorded
(they come after the last page). Filters: strategy, symbol, a label the trade carries, and
``start <= execution_time <= end``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, exists, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from database.models import Trade
from database.records import TradeRecord
from database.repositories._common import TimeLike, where_matching
from database.repositories.trades import trade_records

TRADES: Table = Trade.__table__  # type: ignore[assignment]


class TradePages:
    def __init__(self, session: Session) -> None:
        self._session = session

    def page(
        self,
        account_id: str,
        *,
        after_id: int = 0,
        limit: int = 100,
        strategy_id: str | None = None,
        symbol: str | None = None,
        label: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> list[tuple[int, TradeRecord]]:
        """Up to ``limit`` (row id, trade) of the account with a row id above ``after_id``,
        matching every filter given, by row id."""
        statement = where_matching(
            select(TRADES),
            TRADES,
            {"account_id": account_id, "strategy_id": strategy_id, "symbol": symbol},
            within="execution_time",
            start=start,
            end=end,
        ).where(TRADES.c.id > after_id)
        if label is not None:
            statement = statement.where(self._carries(label))
        statement = statement.order_by(TRADES.c.id).limit(limit)
        rows = self._session.execute(statement).mappings().all()
        records = trade_records(self._session, rows)
        return [(int(row["id"]), record) for row, record in zip(rows, records, strict=True)]

    def _carries(self, label: str) -> Any:
        """The condition "the trade's labels (a JSON list) hold ``label``"."""
        if self._session.get_bind().dialect.name == "postgresql":
            return type_coerce(TRADES.c.labels, JSONB).contains([label])
        each = func.json_each(TRADES.c.labels).table_valued("value").alias("label")
        return exists(select(1).select_from(each).where(each.c.value == label))


__all__ = ["TradePages"]
