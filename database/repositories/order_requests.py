"""OrderRequestRepository: the trading runner's lease and the cancel/modify requests it answers.

>>> with factory.begin() as session:                      # the runner, starting
...     repo = OrderRequestRepository(session)
...     repo.take_lease("host:4242", now, stale_before=now - timedelta(seconds=10))
>>> with factory.begin() as session:                      # a page of another process
...     repo = OrderRequestRepository(session)
...     if repo.lease_holder(stale_before=...) is not None:
...         request_id = repo.add(order_id, "42-entry", "cancel", {}, "host:77", now)

One lease row (``trading``, inserted by migration 0009) says which process runs the trading
runner and when it last said so. ``lease_holder`` locks that row (``FOR UPDATE`` on
PostgreSQL; on SQLite the caller's write transaction already excludes other writers), as
``take_lease`` and ``renew`` do by updating it: a page that finds no fresh holder and edits a
stored order, and a runner starting and then reading the open orders, take turns. Never
commits (the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.orm import Session

from database.records import utc_datetime
from database.trading_models import (
    ORDER_REQUEST_ACTIONS,
    TRADING_LEASE,
    OrderRequest,
    RunnerLease,
)

LEASES: Table = RunnerLease.__table__  # type: ignore[assignment]
REQUESTS: Table = OrderRequest.__table__  # type: ignore[assignment]
CHANGES = ("quantity", "limit_price", "stop_price")


@dataclass(frozen=True)
class OrderRequestRow:
    id: int
    order_id: int
    client_order_id: str
    action: str
    changes: dict[str, float]
    status: str
    answer: str | None
    requested_by: str
    requested_at: datetime
    answered_at: datetime | None


class OrderRequestRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # -- the lease ---------------------------------------------------------------------------
    def take_lease(
        self, owner: str, now: datetime, *, stale_before: datetime, replacing: str | None = None
    ) -> str | None:
        """Hold the trading lease as ``owner`` when it is free, stale (its heartbeat before
        ``stale_before``), already ``owner``'s or ``replacing``'s (a holder known dead): None.
        Else the holder's name (nothing changed): another runner is running."""
        now = utc_datetime(now, "now")
        stale = utc_datetime(stale_before, "stale_before")
        taken = self._session.execute(
            update(LEASES)
            .where(
                and_(
                    LEASES.c.name == TRADING_LEASE,
                    or_(
                        LEASES.c.owner.is_(None),
                        LEASES.c.owner == owner,
                        LEASES.c.owner == (replacing or owner),
                        LEASES.c.heartbeat_at.is_(None),
                        LEASES.c.heartbeat_at < stale,
                    ),
                )
            )
            .values(owner=owner, heartbeat_at=now)
        ).rowcount
        if taken == 1:
            return None
        holder = self._session.execute(
            select(LEASES.c.owner).where(LEASES.c.name == TRADING_LEASE)
        ).scalar_one_or_none()
        if holder is None:  # a database migrated without the row (never by 0009)
            raise RuntimeError("runner_leases has no 'trading' row: run `app.py db upgrade`")
        return holder

    def renew(self, owner: str, now: datetime) -> bool:
        """The heartbeat of ``owner``'s lease; False when it holds it no more."""
        return (
            self._session.execute(
                update(LEASES)
                .where(and_(LEASES.c.name == TRADING_LEASE, LEASES.c.owner == owner))
                .values(heartbeat_at=utc_datetime(now, "now"))
            ).rowcount
            == 1
        )

    def release(self, owner: str) -> None:
        self._session.execute(
            update(LEASES)
            .where(and_(LEASES.c.name == TRADING_LEASE, LEASES.c.owner == owner))
            .values(owner=None, heartbeat_at=None)
        )

    def lease_holder(self, *, stale_before: datetime) -> str | None:
        """The runner holding the lease with a heartbeat at or after ``stale_before`` (None:
        no runner runs now); the row stays locked until the caller's transaction ends."""
        query = select(LEASES.c.owner, LEASES.c.heartbeat_at).where(LEASES.c.name == TRADING_LEASE)
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._session.execute(query).first()
        if row is None or row.owner is None or row.heartbeat_at is None:
            return None
        fresh = utc_datetime(row.heartbeat_at, "heartbeat_at") >= utc_datetime(
            stale_before, "stale_before"
        )
        return row.owner if fresh else None

    # -- requests ----------------------------------------------------------------------------
    def add(
        self,
        order_id: int,
        client_order_id: str,
        action: str,
        changes: Mapping[str, float],
        requested_by: str,
        now: datetime,
    ) -> int:
        if action not in ORDER_REQUEST_ACTIONS:
            raise ValueError(f"action={action!r}: expected one of {ORDER_REQUEST_ACTIONS}")
        unknown = sorted(set(changes) - set(CHANGES))
        if unknown:
            raise ValueError(f"unknown order change(s) {unknown}: expected {CHANGES}")
        return int(
            self._session.execute(
                insert(REQUESTS)
                .values(
                    order_id=order_id,
                    client_order_id=client_order_id,
                    action=action,
                    status="pending",
                    requested_by=requested_by,
                    requested_at=utc_datetime(now, "now"),
                    **{k: float(v) for k, v in changes.items()},
                )
                .returning(REQUESTS.c.id)
            ).scalar_one()
        )

    def pending(self, limit: int = 100) -> list[OrderRequestRow]:
        """The oldest pending requests first."""
        query = (
            select(REQUESTS)
            .where(REQUESTS.c.status == "pending")
            .order_by(REQUESTS.c.id)
            .limit(limit)
        )
        return [_row(r) for r in self._session.execute(query).mappings()]

    def get(self, request_id: int) -> OrderRequestRow | None:
        row = (
            self._session.execute(select(REQUESTS).where(REQUESTS.c.id == request_id))
            .mappings()
            .first()
        )
        return None if row is None else _row(row)

    def answer(self, request_id: int, status: str, answer: str, now: datetime) -> None:
        if status not in ("applied", "refused"):
            raise ValueError(f"status={status!r}: expected 'applied' or 'refused'")
        self._session.execute(
            update(REQUESTS)
            .where(and_(REQUESTS.c.id == request_id, REQUESTS.c.status == "pending"))
            .values(status=status, answer=answer, answered_at=utc_datetime(now, "now"))
        )


def _row(row: Mapping) -> OrderRequestRow:
    return OrderRequestRow(
        id=row["id"],
        order_id=row["order_id"],
        client_order_id=row["client_order_id"],
        action=row["action"],
        changes={k: row[k] for k in CHANGES if row[k] is not None},
        status=row["status"],
        answer=row["answer"],
        requested_by=row["requested_by"],
        requested_at=utc_datetime(row["requested_at"], "requested_at"),
        answered_at=None
        if row["answered_at"] is None
        else utc_datetime(row["answered_at"], "answered_at"),
    )


__all__ = ["LEASES", "REQUESTS", "OrderRequestRepository", "OrderRequestRow"]
