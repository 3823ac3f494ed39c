"""The orders and fills frames checked and read into arrays (docs/tca.md#inputs).

>>> inputs = read_inputs(orders, fills)   # raises TCAInputError listing every bad row

Every problem names its frame, its row (the frame's index label) and its column; all of them
are listed at once (the first :data:`SHOWN` in the message, the rest counted). Times are read
as UTC (a naive time is UTC) into int64 nanoseconds, :data:`NAT` where missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.tca._kernels import time_order
from analytics.tca.conventions import (
    FILL_COLUMNS,
    OPTIONAL_ORDER_COLUMNS,
    ORDER_COLUMNS,
    QTY_TOLERANCE,
)

NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds
SHOWN = 50


class TCAInputError(ValueError):
    """Orders or fills the analysis refuses; ``problems`` holds one line per bad cell."""

    def __init__(self, problems: list[str], total: int) -> None:
        self.problems = problems
        self.total = total
        more = f"\n... and {total - len(problems)} more" if total > len(problems) else ""
        noun = "problem" if total == 1 else "problems"
        super().__init__(f"TCA input rejected ({total} {noun})\n" + "\n".join(problems) + more)


class _Problems:
    """Collects problems; the text of only the first :data:`SHOWN` is built."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.total = 0

    def add(
        self,
        frame: pd.DataFrame,
        name: str,
        mask: np.ndarray,
        column: str,
        text: Callable[[int], str],
    ) -> None:
        rows = np.flatnonzero(mask)
        self.total += len(rows)
        for k in rows[: max(SHOWN - len(self.lines), 0)]:
            self.lines.append(
                f"{name} row {_label(frame.index[k])!r}, column {column!r}: {text(k)}"
            )

    def raise_if_any(self) -> None:
        if self.total:
            raise TCAInputError(self.lines, self.total)


@dataclass(frozen=True)
class Inputs:
    """Orders (n rows, in the frame's order) and fills (m rows) as arrays."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    side: np.ndarray  # int64, +1 buy, -1 sell
    order_qty: np.ndarray
    decision_price: np.ndarray  # NaN: not given
    arrival_price: np.ndarray  # NaN: not given (taken from the bars)
    limit_price: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    expected_return_bps: np.ndarray
    decision_ns: np.ndarray  # NAT: not given
    arrival_ns: np.ndarray
    end_ns: np.ndarray  # NAT: not given (the last fill ends the order)
    fill_order: np.ndarray  # per fill: the position of its order
    fill_ns: np.ndarray
    fill_time_order: np.ndarray  # the fills' positions in time order (ties: frame order)
    fill_price: np.ndarray
    fill_qty: np.ndarray
    fill_fee: np.ndarray

    @property
    def n(self) -> int:
        return len(self.side)


def to_ns(values: pd.Series | pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ns UTC with :data:`NAT` for missing, mask of values that are not times)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        times = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
        return times.as_unit("ns").asi8, np.zeros(len(values), bool)
    times = pd.DatetimeIndex(pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601"))
    given = ~pd.isna(np.asarray(values, dtype=object))
    return times.as_unit("ns").asi8, given & times.isna()


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, mask of given cells that are not numbers)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(values), bool)
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return out, ~pd.isna(np.asarray(values, dtype=object)) & np.isnan(out)


def _missing_columns(frame: pd.DataFrame, name: str, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TCAInputError([f"{name}: missing column(s) {missing}"], 1)


def _number_column(
    frame: pd.DataFrame,
    name: str,
    column: str,
    problems: _Problems,
    *,
    required: bool,
    positive: bool,
) -> np.ndarray:
    """A numeric column, NaN where empty; a bad cell is a problem (an empty one when
    ``required``, one <= 0 when ``positive``, text, infinity)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values, text = _numbers(frame[column])
    cells = frame[column]
    problems.add(frame, name, text, column, lambda k: f"{cells.iloc[k]!r} is not a number")
    problems.add(
        frame, name, np.isinf(values), column, lambda k: f"{_num(values[k])} is not a finite number"
    )
    if required:
        problems.add(frame, name, np.isnan(values) & ~text, column, lambda k: "empty")
    if positive:
        problems.add(
            frame, name, values <= 0, column, lambda k: f"{_num(values[k])} is not positive (> 0)"
        )
    return values


def _time_column(
    frame: pd.DataFrame, name: str, column: str, problems: _Problems, *, required: bool
) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), NAT, np.int64)
    ns, bad = to_ns(frame[column])
    cells = frame[column]
    problems.add(frame, name, bad, column, lambda k: f"{cells.iloc[k]!r} is not a time")
    if required:
        problems.add(frame, name, (ns == NAT) & ~bad, column, lambda k: "empty")
    return ns


def _label(value: object) -> object:
    """A row label as the caller wrote it (numpy's scalars as Python's)."""
    return value.item() if isinstance(value, np.generic) else value


def _num(value: float) -> str:
    return repr(float(value))


def _stamp(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def order_positions(orders: pd.DataFrame, fills: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(per order, the position of the first order with its id, -1 for an empty id; per fill,
    the position of its order, the first with its id, -1 for none), from one factorisation
    of both frames' ids."""
    n = len(orders)
    ids = pd.concat([orders["order_id"], fills["order_id"]], ignore_index=True)
    codes = ids.factorize()[0]
    first = np.full(codes.max(initial=-1) + 1, -1, np.int64)
    given = np.flatnonzero(codes[:n] >= 0)[::-1]
    first[codes[:n][given]] = given  # written last to first: the first row stays
    of_order = np.where(codes[:n] >= 0, first[codes[:n]], -1)
    of_fill = np.where(codes[n:] >= 0, first[codes[n:]], -1)
    return of_order, of_fill


def _check_orders(
    orders: pd.DataFrame, first: np.ndarray, problems: _Problems
) -> dict[str, np.ndarray]:
    name = "orders"
    for column in ("order_id", "account_id", "symbol"):
        problems.add(orders, name, orders[column].isna().to_numpy(), column, lambda k: "empty")
    repeated = (first >= 0) & (first != np.arange(len(first)))
    problems.add(
        orders, name, repeated, "order_id",
        lambda k: f"repeats row {_label(orders.index[first[k]])!r}",
    )  # fmt: skip
    sides = orders["side"]
    buy = sides.eq("buy").to_numpy(dtype=bool, na_value=False)
    sell = sides.eq("sell").to_numpy(dtype=bool, na_value=False)
    problems.add(
        orders, name, ~(buy | sell), "side", lambda k: f"{sides.iloc[k]!r}: expected buy or sell"
    )
    out: dict[str, np.ndarray] = {"side": np.where(sell, -1, 1).astype(np.int64)}
    out["order_qty"] = _number_column(
        orders, name, "order_qty", problems, required=True, positive=True
    )
    for column in ("decision_price", "limit_price", "arrival_price", "bid", "ask"):
        out[column] = _number_column(orders, name, column, problems, required=False, positive=True)
    out["expected_return_bps"] = _number_column(
        orders, name, "expected_return_bps", problems, required=False, positive=False
    )
    out["decision_ns"] = _time_column(orders, name, "decision_time", problems, required=False)
    arrival = out["arrival_ns"] = _time_column(
        orders, name, "arrival_time", problems, required=True
    )
    decision, end = (
        out["decision_ns"],
        _time_column(orders, name, "end_time", problems, required=False),
    )
    out["end_ns"] = end
    known = (arrival != NAT) & (decision != NAT)
    problems.add(
        orders, name, known & (arrival < decision), "arrival_time",
        lambda k: f"{_stamp(arrival[k])} is before the decision_time {_stamp(decision[k])}",
    )  # fmt: skip
    known = (arrival != NAT) & (end != NAT)
    problems.add(
        orders, name, known & (end < arrival), "end_time",
        lambda k: f"{_stamp(end[k])} is before the arrival_time {_stamp(arrival[k])}",
    )  # fmt: skip
    bid, ask = out["bid"], out["ask"]
    problems.add(
        orders, name, ask < bid, "ask", lambda k: f"{_num(ask[k])} is below the bid {_num(bid[k])}"
    )
    return out


def _check_fills(
    fills: pd.DataFrame,
    orders: pd.DataFrame,
    fill_order: np.ndarray,
    cols: dict[str, np.ndarray],
    problems: _Problems,
) -> dict[str, np.ndarray]:
    name = "fills"
    unknown = fill_order < 0
    fill_ids = fills["order_id"]
    problems.add(
        fills, name, unknown, "order_id", lambda k: f"{fill_ids.iloc[k]!r} is not an order given"
    )
    ns = _time_column(fills, name, "fill_time", problems, required=True)
    price = _number_column(fills, name, "fill_price", problems, required=True, positive=True)
    qty = _number_column(fills, name, "fill_qty", problems, required=True, positive=True)
    fee = _number_column(fills, name, "fee", problems, required=True, positive=False)
    known = ~unknown & (ns != NAT)
    of = np.where(known, fill_order, 0)
    arrival, end = cols["arrival_ns"][of], cols["end_ns"][of]
    problems.add(
        fills, name, known & (arrival != NAT) & (ns < arrival), "fill_time",
        lambda k: f"{_stamp(ns[k])} is before its order's arrival_time {_stamp(arrival[k])}",
    )  # fmt: skip
    problems.add(
        fills, name, known & (end != NAT) & (ns > end), "fill_time",
        lambda k: f"{_stamp(ns[k])} is after its order's end_time {_stamp(end[k])}",
    )  # fmt: skip
    _check_overfills(fills, orders, fill_order, ns, qty, cols["order_qty"], problems)
    return {"fill_order": fill_order, "fill_ns": ns, "fill_price": price, "fill_qty": qty,
            "fill_fee": fee}  # fmt: skip


def _check_overfills(
    fills: pd.DataFrame,
    orders: pd.DataFrame,
    fill_order: np.ndarray,
    ns: np.ndarray,
    qty: np.ndarray,
    order_qty: np.ndarray,
    problems: _Problems,
) -> None:
    """Names, per order filled above its order_qty, the fill (in time order) that passed it."""
    usable = (fill_order >= 0) & np.isfinite(qty) & (qty > 0)
    usable &= np.isfinite(order_qty[np.where(usable, fill_order, 0)])  # bad ones named already
    usable &= order_qty[np.where(usable, fill_order, 0)] > 0
    filled = np.bincount(fill_order[usable], qty[usable], minlength=len(order_qty))
    over = filled > order_qty * (1 + QTY_TOLERANCE)
    if not over.any():
        return
    rows = np.flatnonzero(usable & over[np.where(usable, fill_order, 0)])
    rows = rows[np.lexsort((ns[rows], fill_order[rows]))]
    running = pd.Series(qty[rows]).groupby(fill_order[rows]).cumsum().to_numpy()
    passed = rows[running > order_qty[fill_order[rows]] * (1 + QTY_TOLERANCE)]
    first_passed = ~pd.Series(fill_order[passed]).duplicated().to_numpy()
    mask = np.zeros(len(fills), bool)
    mask[passed[first_passed]] = True
    oid = orders["order_id"]
    problems.add(
        fills, "fills", mask, "fill_qty",
        lambda k: f"order {oid.iloc[fill_order[k]]!r} filled {_num(filled[fill_order[k]])} here "
        f"and before, above its order_qty {_num(order_qty[fill_order[k]])}",
    )  # fmt: skip


def read_inputs(orders: pd.DataFrame, fills: pd.DataFrame) -> Inputs:
    """The checked arrays of ``orders`` and ``fills`` (docs/tca.md#inputs); raises
    :class:`TCAInputError` listing every problem."""
    _missing_columns(orders, "orders", ORDER_COLUMNS)
    _missing_columns(fills, "fills", FILL_COLUMNS)
    problems = _Problems()
    first, fill_order = order_positions(orders, fills)
    cols = _check_orders(orders, first, problems)
    cols.update(_check_fills(fills, orders, fill_order, cols, problems))
    problems.raise_if_any()
    ns = cols["fill_ns"]
    in_order = bool(np.all(ns[1:] >= ns[:-1]))
    cols["fill_time_order"] = np.arange(len(ns)) if in_order else time_order(ns)
    return Inputs(orders=orders, fills=fills, **cols)


__all__ = ["NAT", "OPTIONAL_ORDER_COLUMNS", "Inputs", "TCAInputError", "read_inputs", "to_ns"]
