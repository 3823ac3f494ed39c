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
        change, so the file is refused rather than silently not taken. Compared a column at
        a time (a second import of a large file compares every order)."""
        if stored_orders.empty:
            return []
        ids = stored_orders["order_id"].tolist()
        position = pd.Index(self.orders["order_id"]).get_indexer(ids)
        given = self.orders.iloc[position].reset_index(drop=True)
        stored = stored_orders.reset_index(drop=True)
        differs: dict[str, list[str]] = {order_id: [] for order_id in ids}
        for column in _COMPARED:
            for k in np.flatnonzero(~_same(stored[column], given[column])).tolist():
                differs[ids[k]].append(column)
        for order_id in _fills_differ(stored_fills, self.fills, ids):
            differs[order_id].append("fills")
        return [
            ImportProblem(
                file, self.places[position[k]], None,
                f"order {order_id!r} is stored with other values ({', '.join(differs[order_id])})"
                " than this file gives: a stored order cannot change",
            )
            for k, order_id in enumerate(ids)
            if differs[order_id]
        ]  # fmt: skip


def _same(stored: pd.Series, given: pd.Series) -> np.ndarray:
    """Per row, whether the two values are the same (both empty counts as the same)."""
    empty_a, empty_b = stored.isna().to_numpy(), given.isna().to_numpy()
    if isinstance(stored.dtype, pd.DatetimeTZDtype) or isinstance(given.dtype, pd.DatetimeTZDtype):
        a, b = _ns(stored), _ns(given)
    elif pd.api.types.is_numeric_dtype(stored) and pd.api.types.is_numeric_dtype(given):
        a, b = stored.to_numpy(dtype=float), given.to_numpy(dtype=float)
    else:
        a, b = stored.astype(object).to_numpy(), given.astype(object).to_numpy()
    with np.errstate(invalid="ignore"):
        equal = np.asarray(a == b, dtype=bool)
    return (empty_a & empty_b) | (~empty_a & ~empty_b & equal)


def _fills_differ(stored: pd.DataFrame, given: pd.DataFrame, ids: list[str]) -> list[str]:
    """The orders of ``ids`` whose fills (times, prices, quantities) are not the same."""
    a, b = _fill_keys(stored, ids), _fill_keys(given, ids)
    counts = a["order_id"].value_counts().reindex(ids, fill_value=0)
    other = counts != b["order_id"].value_counts().reindex(ids, fill_value=0)
    differ = set(counts.index[other.to_numpy()])
    a = a[~a["order_id"].isin(differ)].reset_index(drop=True)
    b = b[~b["order_id"].isin(differ)].reset_index(drop=True)
    # same orders, same counts, both sorted: row k of one is row k of the other
    same = (a[["time", "price", "qty"]].to_numpy() == b[["time", "price", "qty"]].to_numpy()).all(1)
    differ.update(a.loc[~same, "order_id"])
    return [order_id for order_id in ids if order_id in differ]


def _ns(times: pd.Series) -> np.ndarray:
    """UTC times as int64 nanoseconds (NaT as int64's minimum)."""
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns").asi8


def _fill_keys(fills: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    mine = fills[fills["order_id"].isin(ids)]
    keys = pd.DataFrame(
        {
            "order_id": mine["order_id"].astype(object).to_numpy(),
            # to the microsecond, as stored
            "time": (_ns(mine["fill_time"]) // 1000).astype(float),
            "price": mine["fill_price"].to_numpy(dtype=float),
            "qty": mine["fill_qty"].to_numpy(dtype=float),
        }
    )
    return keys.sort_values(["order_id", "time", "price", "qty"], kind="stable")


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
