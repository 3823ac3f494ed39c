"""The orders a file holds, with their fills, for transaction-cost analysis (docs/tca.md
"Sources"): what an importer hands the ``execution_orders`` / ``execution_fills`` tables
beside the fills it hands the tracker.

>>> book = OrderBook("freqtrade")
>>> book.order("table orders, id=1", order_id="ord-1", symbol="BTC/USDT", side="buy", ...)
>>> book.fill("ord-1", time, price=40000.0, qty=0.5, fee=20.0, trade_id="freqtrade:1:ord-1")
>>> batch = book.batch(account="ft-live")
>>> batch.orders, batch.fills          # the frames ExecutionRepository.add stores

An order is stored once with all of its fills, immutable: importing the same file again
stores nothing new (:meth:`ExecutionBatch.without` leaves out the orders already stored), and
an order stored with other values than the file's is named (:meth:`ExecutionBatch.changed`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from database.execution_models import ExecutionOrder
from database.repositories.executions import ORDER_COLUMNS
from tracking.importers.result import ImportProblem

T = TypeVar("T")
# longest text an imported order stores in these fields (String(n) columns)
ORDER_TEXT_LIMITS: dict[str, int] = {
    name: ExecutionOrder.__table__.c[name].type.length  # type: ignore[attr-defined]
    for name in ("order_id", "strategy_id", "symbol", "order_type", "venue", "algo")
}
FILL_FIELDS = ("order_id", "fill_time", "fill_price", "fill_qty", "fee", "trade_id")
# what makes a stored order the file's: every order field and its fills' times, prices and
# quantities (not their fees, as a trade's identity leaves out its commission)
_COMPARED = tuple(c for c in ORDER_COLUMNS if c not in ("order_id", "account_id", "source"))
_FILL_IDENTITY = ("fill_time", "fill_price", "fill_qty")


@dataclass(frozen=True)
class ExecutionBatch:
    """The orders of one file (``orders``: ORDER_COLUMNS, one row per order) and their fills
    (``fills``: FILL_FIELDS), where the file holds each order (``places``, the order's row
    position), what was not taken (``left_out``, orders by reason) and ``notes`` (counted
    facts that change how to read the orders, e.g. an arrival time taken from a fill)."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    places: tuple[str, ...]
    source: str
    left_out: Mapping[str, int] = field(default_factory=dict)
    notes: Mapping[str, int] = field(default_factory=dict)

    def without(self, order_ids: Collection[str]) -> ExecutionBatch:
        """This batch without the orders ``order_ids`` (those stored already) and their fills."""
        keep = ~self.orders["order_id"].isin(list(order_ids)).to_numpy()
        fills = self.fills[~self.fills["order_id"].isin(list(order_ids))]
        places = tuple(p for p, k in zip(self.places, keep.tolist(), strict=True) if k)
        return ExecutionBatch(
            self.orders[keep].reset_index(drop=True), fills.reset_index(drop=True), places,
            self.source, self.left_out, self.notes,
        )  # fmt: skip

    def changed(
        self, stored_orders: pd.DataFrame, stored_fills: pd.DataFrame, file: str
    ) -> list[ImportProblem]:
        """A problem for each order of this batch stored with other values (its fields, or
        its fills' times, prices and quantities) than the file gives: the stored order cannot
        change, so the file is refused rather than silently not taken."""
        if stored_orders.empty:
            return []
        mine = self.orders.set_index("order_id")
        at = dict(zip(self.orders["order_id"], self.places, strict=True))
        problems = []
        for row in stored_orders.itertuples(index=False):
            order_id = row.order_id
            given = mine.loc[order_id]
            differs = [c for c in _COMPARED if not _same(getattr(row, c), given[c])]
            if _fill_identity(stored_fills, order_id) != _fill_identity(self.fills, order_id):
                differs.append("fills")
            if differs:
                problems.append(
                    ImportProblem(
                        file, at[order_id], None,
                        f"order {order_id!r} is stored with other values ({', '.join(differs)})"
                        " than this file gives: a stored order cannot change",
                    )
                )  # fmt: skip
        return problems


def _same(stored: Any, given: Any) -> bool:
    if _missing(stored) or _missing(given):
        return _missing(stored) and _missing(given)
    if isinstance(stored, pd.Timestamp | datetime) or isinstance(given, pd.Timestamp | datetime):
        return pd.Timestamp(stored) == pd.Timestamp(given)
    numbers = float | int | np.floating
    if isinstance(stored, numbers) and isinstance(given, numbers):
        return float(stored) == float(given)
    return stored == given


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _fill_identity(fills: pd.DataFrame, order_id: str) -> list[tuple]:
    mine = fills[fills["order_id"] == order_id]
    times = pd.to_datetime(mine["fill_time"], utc=True).astype("datetime64[us, UTC]")
    prices, quantities = mine["fill_price"].astype(float), mine["fill_qty"].astype(float)
    return sorted(zip(times.tolist(), prices.tolist(), quantities.tolist(), strict=True))


class OrderBook:
    """Collects one file's orders and fills as an importer reads it, then gives the batch."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._orders: list[dict[str, Any]] = []
        self._places: list[str] = []
        self._fills: list[tuple[Any, ...]] = []
        self._ids: set[str] = set()
        self.left_out: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()

    def __contains__(self, order_id: str) -> bool:
        return order_id in self._ids

    def order(self, place: str, **fields: Any) -> None:
        """One order: the ORDER_COLUMNS fields it has (others are empty); ``place`` names
        where the file holds it."""
        unknown = set(fields) - set(ORDER_COLUMNS)
        if unknown:
            raise TypeError(f"not order fields: {sorted(unknown)}")
        self._ids.add(fields["order_id"])
        self._orders.append(fields)
        self._places.append(place)

    def fill(
        self,
        order_id: str,
        time: datetime,
        *,
        price: float,
        qty: float,
        fee: float,
        trade_id: str | None,
    ) -> None:
        self._fills.append((order_id, time, price, qty, fee, trade_id))

    def batch(self, account: str) -> ExecutionBatch:
        """The orders in the order they were given (each of ``account``), their fills."""
        orders = pd.DataFrame({name: [o.get(name) for o in self._orders] for name in ORDER_COLUMNS})
        orders["account_id"] = account
        orders["source"] = self.source
        for name in ("decision_time", "arrival_time", "end_time"):
            orders[name] = pd.to_datetime(orders[name], utc=True)
        for name in ("order_qty", "limit_price", "decision_price", "arrival_price", "bid",
                     "ask", "expected_return_bps"):  # fmt: skip
            orders[name] = pd.to_numeric(orders[name]).astype(float)
        columns = list(zip(*self._fills, strict=True)) if self._fills else [()] * 6
        fills = pd.DataFrame(dict(zip(FILL_FIELDS, map(list, columns), strict=True)))
        fills["fill_time"] = pd.to_datetime(fills["fill_time"], utc=True)
        for name in ("fill_price", "fill_qty", "fee"):
            fills[name] = fills[name].astype(float)
        return ExecutionBatch(
            orders, fills, tuple(self._places), self.source, dict(self.left_out),
            dict(self.notes),
        )  # fmt: skip


def quietly(parse: Callable[[Any], T], value: object) -> T | None:
    """``parse(value)``, None where it raises ValueError: the fields only an order needs never
    refuse a file whose fills read well (the order goes without them, or is left out)."""
    try:
        return parse(value)
    except ValueError:
        return None


def fits(value: str | None, name: str) -> bool:
    """Whether ``value`` fits the stored order's ``name`` column."""
    return value is None or len(value) <= ORDER_TEXT_LIMITS[name]


__all__ = ["FILL_FIELDS", "ORDER_TEXT_LIMITS", "ExecutionBatch", "OrderBook", "fits", "quietly"]
