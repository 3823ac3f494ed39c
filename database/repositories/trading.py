"""TradingRepository: paper accounts, deployments, orders, fills and positions.

>>> with factory.begin() as session:
...     repo = TradingRepository(session)
...     account = repo.create_account("demo", cash=10_000.0, now=now)
...     repo.save_orders(account.id, [order_row, ...]); repo.add_fills(account.id, [fill_row])

Rows come in and go out as the plain records below (no ORM object leaves database/); the
runner and the broker (trading/) convert them to their own live objects. Never commits: the
runner writes a bar's orders, fills, positions, account and deployment states in one
transaction, so what is stored is always a whole bar's outcome. Fills are immutable; an order
is found again by its ``client_order_id`` (unique), which is how a restart never places an
order twice.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from database.errors import RepositoryError
from database.records import utc_datetime
from database.repositories.trading_batch import TradingBatch, write_batch
from database.trading_models import (
    DEPLOYMENT_STATUSES,
    OPEN_ORDER_STATUSES,
    Account,
    Deployment,
    Fill,
    Order,
    Position,
)
from database.trading_records import AccountRow, DeploymentRow, FillRow, OrderRow, PositionRow

ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
DEPLOYMENTS: Table = Deployment.__table__  # type: ignore[assignment]
ORDERS: Table = Order.__table__  # type: ignore[assignment]
FILLS: Table = Fill.__table__  # type: ignore[assignment]
POSITIONS: Table = Position.__table__  # type: ignore[assignment]


class TradingStoreError(RepositoryError, ValueError):
    """A paper-trading record that cannot be stored as asked (the message says why)."""


_ORDER_FIELDS = tuple(f for f in OrderRow.__dataclass_fields__ if f not in ("id",))


class TradingRepository:
    """Paper trading's rows (see the module docstring)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def create_account(
        self, name: str, cash: float, now: datetime, max_drawdown_pct: float | None = None
    ) -> AccountRow:
        if not isinstance(name, str) or not name.strip():
            raise TradingStoreError(f"account name={name!r} is invalid: expected a non-empty name")
        if self.account(name) is not None:
            raise TradingStoreError(f"account {name!r} exists already: choose another name")
        if not (isinstance(cash, int | float) and 0 < cash < float("inf")):
            raise TradingStoreError(f"cash={cash!r} is invalid: expected an amount > 0")
        if max_drawdown_pct is not None and not 0 < max_drawdown_pct < 1:
            raise TradingStoreError(
                f"max_drawdown_pct={max_drawdown_pct!r} is invalid: expected a fraction in (0, 1)"
            )
        when = utc_datetime(now, "now")
        account = Account(
            name=name, venue="paper", starting_cash=float(cash), cash=float(cash),
            realised_pnl=0.0, fees=0.0, peak_equity=float(cash),
            max_drawdown_pct=max_drawdown_pct, status="active", created_at=when, updated_at=when,
        )  # fmt: skip
        self._session.add(account)
        self._session.flush()
        return _account(account)

    def account(self, name: str) -> AccountRow | None:
        row = self._session.scalars(select(Account).where(Account.name == name)).first()
        return None if row is None else _account(row)

    def account_by_id(self, account_id: int) -> AccountRow | None:
        row = self._session.get(Account, account_id)
        return None if row is None else _account(row)

    def accounts(self) -> list[AccountRow]:
        return [_account(a) for a in self._session.scalars(select(Account).order_by(Account.id))]

    def save_account(self, row: AccountRow, now: datetime) -> None:
        self.save_accounts([row], now)

    def save_accounts(self, rows: Sequence[AccountRow], now: datetime) -> None:
        """The books of several accounts in one statement (:func:`write_batch`'s)."""
        write_batch(self._session, TradingBatch(now, accounts=rows))

    # -- deployments -----------------------------------------------------------------------
    def create_deployment(
        self,
        name: str,
        account_id: int,
        strategy_name: str,
        strategy_params: Mapping[str, Any],
        symbol: str,
        timeframe: str,
        settings: Mapping[str, Any],
        now: datetime,
    ) -> DeploymentRow:
        if not isinstance(name, str) or not name.strip():
            raise TradingStoreError(f"deployment name={name!r} is invalid: expected a name")
        if self._session.scalar(select(DEPLOYMENTS.c.id).where(DEPLOYMENTS.c.name == name)):
            raise TradingStoreError(f"deployment {name!r} exists already: choose another name")
        if self._session.get(Account, account_id) is None:
            raise TradingStoreError(f"no account with id {account_id}")
        when = utc_datetime(now, "now")
        row = Deployment(
            name=name, account_id=account_id, strategy_name=strategy_name,
            strategy_params=dict(strategy_params), symbol=symbol, timeframe=timeframe,
            settings=dict(settings), status="stopped", state={}, created_at=when,
            updated_at=when,
        )  # fmt: skip
        self._session.add(row)
        self._session.flush()
        return _deployment(row)

    def deployment(self, name: str) -> DeploymentRow | None:
        row = self._session.scalars(select(Deployment).where(Deployment.name == name)).first()
        return None if row is None else _deployment(row)

    def deployments(
        self, *, status: str | Sequence[str] | None = None, account_id: int | None = None
    ) -> list[DeploymentRow]:
        query = select(Deployment).order_by(Deployment.id)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            query = query.where(Deployment.status.in_(wanted))
        else:
            query = query.where(Deployment.status != "removed")
        if account_id is not None:
            query = query.where(Deployment.account_id == account_id)
        return [_deployment(d) for d in self._session.scalars(query)]

    def update_deployment(self, deployment_id: int, now: datetime, **values: Any) -> None:
        allowed = {"status", "error", "run_id", "last_bar_ts", "state"}
        unknown = set(values) - allowed
        if unknown:
            raise TradingStoreError(f"cannot update deployment field(s) {sorted(unknown)}")
        if "status" in values and values["status"] not in DEPLOYMENT_STATUSES:
            raise TradingStoreError(
                f"status={values['status']!r} is invalid: expected one of"
                f" {', '.join(DEPLOYMENT_STATUSES)}"
            )
        self._session.execute(
            update(DEPLOYMENTS)
            .where(DEPLOYMENTS.c.id == deployment_id)
            .values(updated_at=utc_datetime(now, "now"), **values)
        )

    def save_states(
        self,
        states: Sequence[tuple[int, int, int, Mapping[str, Any] | None]],
        now: datetime,
        advanced: Sequence[tuple[int, int]] = (),
    ) -> None:
        """Each (deployment id, last bar ts, bar index, state or None when unchanged), and
        each (deployment id, last bar ts) of ``advanced``: one bar further with its state
        unchanged (bar index + 1); :func:`write_batch`'s statements (PostgreSQL: one round
        trip)."""
        write_batch(self._session, TradingBatch(now, states=states, advanced=advanced))

    def remove_deployment(self, deployment_id: int, now: datetime) -> str:
        """Delete a deployment that never placed an order; one that did is kept as
        ``removed`` (its orders and fills stay). Returns what happened."""
        used = self._session.scalar(
            select(func.count()).select_from(ORDERS).where(ORDERS.c.deployment_id == deployment_id)
        )
        if used:
            self.update_deployment(deployment_id, now, status="removed")
            return "removed (its orders and fills are kept)"
        self._session.execute(delete(DEPLOYMENTS).where(DEPLOYMENTS.c.id == deployment_id))
        return "deleted"

    # -- orders, fills, positions ------------------------------------------------------------
    def save_orders(self, account_id: int, orders: Iterable[OrderRow]) -> dict[str, int]:
        """Insert new orders and update known ones (by client order id); returns their ids."""
        return self.save_orders_of([(account_id, o) for o in orders])

    def save_orders_of(self, orders: Sequence[tuple[int, OrderRow]]) -> dict[str, int]:
        """(account id, order) pairs of any accounts, in one upsert by client order id (new
        orders inserted, stored ones updated: a restart never stores an order twice);
        returns every order's id by client order id."""
        if not orders:
            return {}
        connection = self._session.connection()
        latest = {o.client_order_id: (a, o) for a, o in orders}  # one row per order
        stored = connection.execute(
            _upsert(connection, ORDERS),
            [
                {**_order_values(o), "account_id": a, "created_at": o.arrival_time}
                for a, o in latest.values()
            ],
        )
        return {row[0]: row[1] for row in stored}

    def add_fills(self, account_id: int, fills: Iterable[FillRow]) -> int:
        return self.add_fills_of([(account_id, f) for f in fills])

    def add_fills_of(
        self, fills: Sequence[tuple[int, FillRow]], known_ids: Mapping[str, int] | None = None
    ) -> int:
        """(account id, fill) pairs in one insert; the orders must be stored already
        (``known_ids``: their ids by client order id, when the caller has them)."""
        if not fills:
            return 0
        ids = known_ids or self._order_ids([f.client_order_id for _, f in fills])
        missing = sorted({f.client_order_id for _, f in fills} - set(ids))
        if missing:
            raise TradingStoreError(f"fills of unknown orders {missing}: store the orders first")
        self._session.connection().execute(
            insert(FILLS),
            [
                {
                    "fill_id": f.fill_id,
                    "order_id": ids[f.client_order_id],
                    "account_id": a,
                    "deployment_id": f.deployment_id,
                    "symbol": f.symbol,
                    "side": f.side,
                    "price": f.price,
                    "quantity": f.quantity,
                    "fee": f.fee,
                    "realised_pnl": f.realised_pnl,
                    "venue": f.venue,
                    "time": utc_datetime(f.time, "time"),
                    "seq": f.seq,
                    "bar_ts": f.bar_ts,
                }
                for a, f in fills
            ],
        )
        return len(fills)

    def save_positions(self, account_id: int, positions: Iterable[PositionRow]) -> None:
        self.save_positions_of([(account_id, p) for p in positions])

    def save_positions_of(self, positions: Sequence[tuple[int, PositionRow]]) -> None:
        """(account id, position) pairs in one upsert: known ones updated, new ones
        inserted (no read first)."""
        if not positions:
            return
        latest = {(a, p.symbol): p for a, p in positions}
        connection = self._session.connection()
        connection.execute(  # RETURNING: one multi-row statement on PostgreSQL too
            _upsert(connection, POSITIONS),
            [
                {
                    "account_id": a,
                    "symbol": p.symbol,
                    "quantity": p.quantity,
                    "average_price": p.average_price,
                    "realised_pnl": p.realised_pnl,
                    "last_price": p.last_price,
                    "updated_at": utc_datetime(p.updated_at, "updated_at"),
                }
                for (a, _), p in latest.items()
            ],
        )

    def orders(
        self, account_id: int, *, open_only: bool = False, deployment_id: int | None = None
    ) -> list[OrderRow]:
        query = select(ORDERS).where(ORDERS.c.account_id == account_id).order_by(ORDERS.c.id)
        if open_only:
            query = query.where(ORDERS.c.status.in_(OPEN_ORDER_STATUSES))
        if deployment_id is not None:
            query = query.where(ORDERS.c.deployment_id == deployment_id)
        return [_order(row) for row in self._session.execute(query).mappings()]

    def order(self, client_order_id: str) -> tuple[int, OrderRow] | None:
        row = (
            self._session.execute(select(ORDERS).where(ORDERS.c.client_order_id == client_order_id))
            .mappings()
            .first()
        )
        return None if row is None else (row["account_id"], _order(row))

    def fills(
        self,
        account_id: int,
        *,
        deployment_id: int | None = None,
        symbol: str | None = None,
        last: int | None = None,
    ) -> list[FillRow]:
        """The account's fills in the order they happened (of one deployment or symbol when
        given); ``last``: only the newest that many (a page's bounded list)."""
        query = (
            select(FILLS, ORDERS.c.client_order_id, ORDERS.c.purpose)
            .join(ORDERS, ORDERS.c.id == FILLS.c.order_id)
            .where(FILLS.c.account_id == account_id)
        )
        if deployment_id is not None:
            query = query.where(FILLS.c.deployment_id == deployment_id)
        if symbol is not None:
            query = query.where(FILLS.c.symbol == symbol)
        if last is not None:
            query = query.order_by(FILLS.c.id.desc()).limit(last)
        else:
            query = query.order_by(FILLS.c.id)
        rows = [
            FillRow(
                r["fill_id"],
                r["client_order_id"],
                r["symbol"],
                r["side"],
                r["price"],
                r["quantity"],
                r["fee"],
                r["realised_pnl"],
                r["time"],
                r["seq"],
                r["deployment_id"],
                r["venue"],
                r["bar_ts"],
                r["purpose"],
            )
            for r in self._session.execute(query).mappings()
        ]
        return rows[::-1] if last is not None else rows

    def positions(self, account_id: int) -> list[PositionRow]:
        query = select(POSITIONS).where(POSITIONS.c.account_id == account_id)
        return [
            PositionRow(
                r["symbol"],
                r["quantity"],
                r["average_price"],
                r["realised_pnl"],
                r["last_price"],
                r["updated_at"],
            )
            for r in self._session.execute(query.order_by(POSITIONS.c.symbol)).mappings()
        ]

    def _order_ids(self, client_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(client_ids), 500):
            part = client_ids[start : start + 500]
            query = select(ORDERS.c.client_order_id, ORDERS.c.id).where(
                ORDERS.c.client_order_id.in_(part)
            )
            found.update(dict(self._session.connection().execute(query).all()))
        return found


_ORDER_MUTABLE = (
    "status", "quantity", "limit_price", "stop_price", "filled_quantity", "average_price",
    "fees", "reject_reason", "updated_at", "extra",
)  # fmt: skip
_POSITION_MUTABLE = ("quantity", "average_price", "realised_pnl", "last_price", "updated_at")
_UPSERT_KEYS = {
    "orders": (ORDERS, ("client_order_id",), _ORDER_MUTABLE),
    "positions": (POSITIONS, ("account_id", "symbol"), _POSITION_MUTABLE),
}


def _upsert(connection: Connection, table: Table) -> Any:
    """INSERT ... ON CONFLICT (its unique key) DO UPDATE SET its mutable columns (PostgreSQL
    and SQLite) RETURNING the id; executed with many rows it is one statement (SQLAlchemy's
    insertmanyvalues). Built once per dialect and table."""
    return _upsert_for(connection.dialect.name, table.name)


@functools.cache
def _upsert_for(dialect_name: str, table_name: str) -> Any:
    table, key, mutable = _UPSERT_KEYS[table_name]
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={c: statement.excluded[c] for c in mutable}
    ).returning(*(table.c[c] for c in key), table.c.id)


def _order_values(o: OrderRow) -> dict[str, Any]:
    values = {name: getattr(o, name) for name in _ORDER_FIELDS}
    values["extra"] = dict(o.extra)
    for name in ("arrival_time", "updated_at", "decision_time"):
        if values[name] is not None:
            values[name] = utc_datetime(values[name], name)
    return values


def _order(row: Mapping[str, Any]) -> OrderRow:
    return OrderRow(**{name: row[name] for name in _ORDER_FIELDS}, id=row["id"])


def _account(a: Account) -> AccountRow:
    return AccountRow(
        a.id, a.name, a.starting_cash, a.cash, a.realised_pnl, a.fees, a.peak_equity,
        a.max_drawdown_pct, a.status, a.halt_reason, a.venue,
    )  # fmt: skip


def _deployment(d: Deployment) -> DeploymentRow:
    return DeploymentRow(
        d.id, d.name, d.account_id, d.strategy_name, dict(d.strategy_params), d.symbol,
        d.timeframe, dict(d.settings), d.status, d.error, d.run_id, d.last_bar_ts,
        dict(d.state or {}),
        d.bar_index,
    )  # fmt: skip


__all__ = [
    "AccountRow",
    "DeploymentRow",
    "FillRow",
    "OrderRow",
    "PositionRow",
    "TradingRepository",
    "TradingStoreError",
]
