"""TradeRepository: executed trades, append-only and immutable, keyed by (account, ``trade_id``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, NoReturn

import pandas as pd
from sqlalchemy import Table, func, insert, select
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
_FRAME_COLUMNS = (
    "trade_id", "account_id", "strategy_id", "symbol", "side", "price", "volume", "commission",
    "execution_time", "pnl", "cumulative_pnl", "labels", "market_context", "source", "order_id",
)  # fmt: skip


class TradeRepository:
    """Executed trades: append-only, keyed by ``trade_id``."""

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def add_many(self, records: Iterable[TradeRecord], *, checked: bool = False) -> int:
        """Store new trades in bulk; returns how many.

        A trade id repeated in the batch or already stored in its account raises
        DuplicateTradeError naming them (and the account), and nothing is written.
        ``checked``: the caller knows the ids are new (the trade tracker keeps each account's
        ids): no query looks, the database's unique key still refuses a repeat.
        """
        batch = list(records)
        for record in batch:
            if not isinstance(record, TradeRecord):
                raise TypeError(f"expected TradeRecord, got {type(record).__name__}")
        by_account: dict[str, list[str]] = {}
        for record in batch:
            by_account.setdefault(record.account_id, []).append(record.trade_id)
        for account, ids in by_account.items():
            repeated = [trade_id for trade_id, n in Counter(ids).items() if n > 1]
            if repeated:
                raise DuplicateTradeError(repeated, where="within the batch", account=account)
        for account, ids in by_account.items() if not checked else ():
            stored = self.stored_ids(account, ids)
            if stored:
                raise DuplicateTradeError(stored, where="already stored", account=account)
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
                "source": r.source,
                "order_id": r.order_id,
            }
            for r in batch
        ]
        for chunk in chunks(rows, self._chunk_rows):
            self._session.execute(insert(TRADES), chunk)
        return len(rows)

    def stored_ids(self, account_id: str, trade_ids: Iterable[str]) -> set[str]:
        """Which of ``trade_ids`` the account already has."""
        wanted = list(dict.fromkeys(trade_ids))
        found: set[str] = set()
        for ids in chunks(wanted, IN_CHUNK):
            found.update(
                self._session.scalars(
                    select(TRADES.c.trade_id).where(
                        TRADES.c.account_id == account_id, TRADES.c.trade_id.in_(ids)
                    )
                )
            )
        return found

    def get(self, trade_id: str, account_id: str | None = None) -> TradeRecord | None:
        """The trade ``trade_id`` of ``account_id`` (of any account when None: the first)."""
        statement = select(TRADES).where(TRADES.c.trade_id == trade_id)
        if account_id is not None:
            statement = statement.where(TRADES.c.account_id == account_id)
        row = self._session.execute(statement.order_by(TRADES.c.id)).mappings().first()
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

    def frame(
        self,
        account_id: str,
        *,
        strategy_id: str | None = None,
        symbol: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pd.DataFrame:
        """The account's trades as the fills frame analytics reads (docs/tracking.md), in
        recording order: trade_id, account_id, strategy_id, symbol, side, price, volume,
        commission, time (UTC), pnl, cumulative_pnl, labels (tuples), market_context (dicts),
        source, order_id."""
        statement = where_matching(
            select(*(TRADES.c[c] for c in _FRAME_COLUMNS)),
            TRADES,
            {"account_id": account_id, "strategy_id": strategy_id, "symbol": symbol},
            within="execution_time",
            start=start,
            end=end,
        ).order_by(TRADES.c.id)
        rows = self._session.execute(statement).all()
        frame = pd.DataFrame.from_records(rows, columns=list(_FRAME_COLUMNS))
        frame = frame.rename(columns={"execution_time": "time"})
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        for column in ("price", "volume", "commission", "pnl", "cumulative_pnl"):
            frame[column] = frame[column].astype(float)
        frame["labels"] = [tuple(x) for x in frame["labels"]]
        return frame

    def accounts(self) -> list[tuple[str, int, str | None]]:
        """(account, trades, source of its first trade) of every account with trades."""
        first = (
            select(TRADES.c.account_id, func.min(TRADES.c.id).label("first"), func.count())
            .group_by(TRADES.c.account_id)
            .subquery()
        )
        rows = self._session.execute(
            select(first.c.account_id, first.c.count, TRADES.c.source)
            .join(TRADES, TRADES.c.id == first.c.first)
            .order_by(first.c.account_id)
        ).all()
        return [(a, int(n), source) for a, n, source in rows]

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
        source=row["source"],
        order_id=row["order_id"],
    )
