"""TradeRepository: executed trades, append-only and immutable, keyed by ``trade_id``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, NoReturn

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from database.errors import DuplicateTradeError, TradeImmutableError
from database.models import Trade
from database.records import TradeRecord
from database.repositories._common import (
    DEFAULT_CHUNK_ROWS,
    IN_CHUNK,
    TimeLike,
    chunks,
    ordered,
    where_matching,
)

TRADES: Table = Trade.__table__  # type: ignore[assignment]


class TradeRepository:
    """Executed trades: append-only, keyed by ``trade_id``."""

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def add_many(self, records: Iterable[TradeRecord]) -> int:
        """Store new trades in bulk; returns how many.

        A trade id repeated in the batch or already stored raises DuplicateTradeError naming
        them, and nothing is written.
        """
        batch = list(records)
        for record in batch:
            if not isinstance(record, TradeRecord):
                raise TypeError(f"expected TradeRecord, got {type(record).__name__}")
        counts = Counter(record.trade_id for record in batch)
        repeated = [trade_id for trade_id, n in counts.items() if n > 1]
        if repeated:
            raise DuplicateTradeError(repeated, where="within the batch")
        stored = [
            trade_id
            for ids in chunks(list(counts), IN_CHUNK)
            for trade_id in self._session.scalars(
                select(TRADES.c.trade_id).where(TRADES.c.trade_id.in_(ids))
            )
        ]
        if stored:
            raise DuplicateTradeError(stored, where="already stored")
        rows = [
            {
                "trade_id": r.trade_id,
                "account_id": r.account_id,
                "strategy_id": r.strategy_id,
                "run_id": r.run_id,
                "symbol": r.symbol,
                "side": r.side,
                "price": r.price,
                "volume": r.volume,
                "commission": r.commission,
                "execution_time": r.execution_time,
                "market_context": dict(r.market_context),
                "labels": list(r.labels),
                "pnl": r.pnl,
                "cumulative_pnl": r.cumulative_pnl,
            }
            for r in batch
        ]
        for chunk in chunks(rows, self._chunk_rows):
            self._session.execute(insert(TRADES), chunk)
        return len(rows)

    def get(self, trade_id: str) -> TradeRecord | None:
        row = (
            self._session.execute(select(TRADES).where(TRADES.c.trade_id == trade_id))
            .mappings()
            .first()
        )
        return None if row is None else _trade_record(row)

    def list(
        self,
        *,
        symbol: str | None = None,
        strategy_id: str | None = None,
        account_id: str | None = None,
        run_id: int | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
    ) -> list[TradeRecord]:
        """Trades matching every given filter (``start <= execution_time <= end``), in
        execution order."""
        statement = where_matching(
            select(TRADES),
            TRADES,
            {
                "symbol": symbol,
                "strategy_id": strategy_id,
                "account_id": account_id,
                "run_id": run_id,
            },
            within="execution_time",
            start=start,
            end=end,
        )
        statement = ordered(statement, (TRADES.c.execution_time, TRADES.c.id), limit)
        return [_trade_record(row) for row in self._session.execute(statement).mappings()]

    def update(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored trade is immutable (record a correcting trade instead)."""
        raise TradeImmutableError("trades are immutable: a stored trade cannot be updated")

    def delete(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored trade is immutable."""
        raise TradeImmutableError("trades are immutable: a stored trade cannot be deleted")


def _trade_record(row: Any) -> TradeRecord:
    return TradeRecord(
        trade_id=row["trade_id"],
        account_id=row["account_id"],
        strategy_id=row["strategy_id"],
        run_id=row["run_id"],
        symbol=row["symbol"],
        side=row["side"],
        price=row["price"],
        volume=row["volume"],
        commission=row["commission"],
        execution_time=row["execution_time"],
        market_context=row["market_context"],
        labels=tuple(row["labels"]),
        pnl=row["pnl"],
        cumulative_pnl=row["cumulative_pnl"],
    )
