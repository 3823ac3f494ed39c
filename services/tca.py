"""Transaction-cost analysis of an account's orders, as ``app.py tca`` prints it (docs/tca.md).

>>> outcome = TCAService(sessions).account("demo", by=("venue", "symbol"))
>>> outcome.report.orders[["order_id", "arrival_slippage_bps", "is_bps"]]

Any account: a paper account's orders come from the paper broker's tables, an imported
account's (freqtrade, Hummingbot, a CSV of orders and fills: ``app.py trades import``) from
the execution tables (:class:`~database.repositories.executions.ExecutionRepository`); an
account name with both gets both. They become the orders and fills frames of
:mod:`analytics.tca`. The paper broker's decision time and price are the signal bar's close,
its arrival when the broker received it; an order sized at its fill (no quantity when placed)
is read with its filled quantity; a rejected order never reached the market and is left out
(counted). The market data are each symbol's finest stored bars over the orders' span (with
two hours after, for markouts); a symbol without stored bars gets no candles, so its orders'
market metrics are n/a with the reason (docs/tca.md#na).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session, sessionmaker

from analytics.tca import TCAReport, TCASettings, transaction_costs
from analytics.tca.conventions import FILL_COLUMNS
from database.repositories.candles import CandleRepository
from database.repositories.executions import ExecutionRepository
from database.repositories.trading import TradingRepository
from market.timeframes import Timeframe
from services.tracking import UnknownAccountError

DIMENSIONS = ("venue", "algo", "symbol", "side", "strategy")
_DONE = ("filled", "cancelled", "expired")
MARKOUT_PAD = pd.Timedelta(hours=2)  # bars read past the last fill (the 60-minute markout)


@dataclass(frozen=True)
class TCAInputs:
    """An account's orders and fills as :mod:`analytics.tca` reads them, with the market data
    (each symbol's finest stored bars over the orders' span) and what was left out, by reason."""

    account: str
    orders: pd.DataFrame
    fills: pd.DataFrame
    candles: dict[str, pd.DataFrame]
    left_out: dict[str, int]


@dataclass(frozen=True)
class AccountTCA:
    account: str
    report: TCAReport
    left_out: dict[str, int]  # orders not analysed, by reason


class TCAService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def account(
        self,
        account: str,
        *,
        by: Sequence[str] = DIMENSIONS,
        settings: TCASettings | None = None,
    ) -> AccountTCA:
        """TCA of an account's orders (a paper account's, an imported account's, or both);
        UnknownAccountError when the account has no order."""
        inputs = self.inputs(account)
        report = transaction_costs(
            inputs.orders, inputs.fills, inputs.candles, settings, by=tuple(by)
        )
        return AccountTCA(account, report, inputs.left_out)

    paper = account  # its name from when only paper accounts had orders

    def inputs(self, account: str) -> TCAInputs:
        """The orders, fills and bars behind an account's TCA (also the ML dataset's source);
        UnknownAccountError when the account has no order."""
        orders, fills, left_out = self._frames(account)
        return TCAInputs(account, orders, fills, self._candles(orders, fills), left_out)

    def _frames(self, account: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
        left_out: dict[str, int] = {}
        with self._sessions() as session:
            paper = self._paper_frames(session, account, left_out)
            repo = ExecutionRepository(session)
            # through the file cache: this session only reads (only committed rows cached)
            imported = repo.orders(account, cached=True)
            imported_fills = repo.fills(account, cached=True)[list(FILL_COLUMNS)]
            if paper is None and imported.empty:
                paper_names = ", ".join(a.name for a in TradingRepository(session).accounts())
                imported_names = ", ".join(a for a, _, _ in repo.accounts())
                raise UnknownAccountError(
                    f"account {account!r} has no order to analyse (paper accounts:"
                    f" {paper_names or 'none'}; accounts with imported orders:"
                    f" {imported_names or 'none'})"
                )
        if paper is None:
            return imported, imported_fills, left_out
        if imported.empty:
            return paper[0], paper[1], left_out
        orders = pd.concat([paper[0], imported], ignore_index=True)
        return orders, pd.concat([paper[1], imported_fills], ignore_index=True), left_out

    def _paper_frames(
        self, session: Session, account: str, left_out: dict[str, int]
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The paper account's orders and fills; None when there is no such paper account or
        it has no order to analyse (those left out counted in ``left_out``)."""
        repo = TradingRepository(session)
        row = repo.account(account)
        if row is None:
            return None
        assert row.id is not None
        orders = repo.orders(row.id)
        fills = repo.fills(row.id)
        names = {d.id: d.name for d in repo.deployments(account_id=row.id)}
        records = []
        for order in orders:
            if order.status == "rejected":
                left_out["rejected (never reached the market)"] = (
                    left_out.get("rejected (never reached the market)", 0) + 1
                )
                continue
            quantity = order.quantity or order.filled_quantity
            if not quantity:
                left_out["no quantity (sized at a fill that never came)"] = (
                    left_out.get("no quantity (sized at a fill that never came)", 0) + 1
                )
                continue
            records.append(
                {
                    "order_id": order.client_order_id,
                    "account_id": account,
                    "strategy_id": names.get(order.deployment_id, "manual"),
                    "symbol": order.symbol,
                    "side": order.side,
                    "order_qty": float(quantity),
                    "order_type": order.order_type,
                    "limit_price": order.limit_price,
                    "decision_time": order.decision_time,
                    "decision_price": order.decision_price,
                    "arrival_time": order.arrival_time,
                    "arrival_price": order.arrival_price,
                    "end_time": order.updated_at if order.status in _DONE else None,
                    "venue": "paper",
                    "algo": order.purpose,
                    "source": "paper",
                }
            )
        if not records:
            return None
        frame = pd.DataFrame(records)
        for column in ("decision_time", "arrival_time", "end_time"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        kept = set(frame["order_id"])
        fill_frame = pd.DataFrame(
            [
                {"order_id": f.client_order_id, "fill_time": f.time, "fill_price": f.price,
                 "fill_qty": f.quantity, "fee": f.fee}
                for f in fills
                if f.client_order_id in kept
            ],
            columns=list(FILL_COLUMNS),
        )  # fmt: skip
        fill_frame["fill_time"] = pd.to_datetime(fill_frame["fill_time"], utc=True)
        return frame, fill_frame

    def _candles(
        self, orders: pd.DataFrame, fills: pd.DataFrame, fill_times: FillTimes | None = None
    ) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        fill_times = fill_times or _fill_times_by_symbol(orders, fills)
        with self._sessions() as session:
            repo = CandleRepository(session)
            # only the columns read below: grouping sorts every column it carries
            needed = orders[["symbol", "order_id", "decision_time", "arrival_time", "end_time"]]
            for symbol, rows in needed.groupby("symbol"):
                stored = repo.timeframes(str(symbol))
                if not stored:
                    continue
                finest = min(stored, key=lambda t: Timeframe.parse(t).delta)
                bar = Timeframe.parse(finest).delta
                times = fill_times(symbol, rows)
                # every instant an order needs a bar at (a decision or an end may be unknown)
                instants = pd.concat(
                    [pd.to_datetime(c, utc=True) for c in (
                        rows["decision_time"], rows["arrival_time"], rows["end_time"], times
                    )],
                    ignore_index=True,
                ).dropna()  # fmt: skip
                start, end = instants.min() - bar, instants.max() + MARKOUT_PAD
                out[str(symbol)] = repo.frame(str(symbol), finest, start=start, end=end)
        return out


FillTimes = Callable[[str, pd.DataFrame], pd.Series]  # (symbol, its orders) -> fill times


def _fill_times_by_symbol(orders: pd.DataFrame, fills: pd.DataFrame) -> FillTimes:
    """``times(symbol, its orders)``: the fill times of those orders. One pass over the fills
    when order ids are unique (an order's fills have its symbol; the ids hashed by Arrow),
    else a lookup per symbol."""
    ids = _texts(orders["order_id"])
    if pc.count_distinct(ids, mode="all").as_py() != len(ids):
        return _fill_times_by_lookup(fills)
    where = pc.index_in(_texts(fills["order_id"]), value_set=ids)
    at = where.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes, found = pd.factorize(orders["symbol"])
    symbol_of_fill = np.where(at >= 0, codes[np.maximum(at, 0)], -1)
    times = fills["fill_time"]
    groups = {symbol: times[symbol_of_fill == k] for k, symbol in enumerate(found)}
    empty = times.iloc[:0]
    return lambda symbol, _rows: groups.get(symbol, empty)


def _texts(column: pd.Series) -> pa.Array:
    """A text column as an Arrow string array (an Arrow-backed one without a copy)."""
    values = column.array
    if isinstance(values, pd.arrays.ArrowStringArray):
        return pa.array(values, type=pa.string())
    return pa.array(column.to_numpy(dtype=object), type=pa.string())


def _fill_times_by_lookup(fills: pd.DataFrame) -> FillTimes:
    """``times(symbol, its orders)`` by looking their ids up in every fill."""
    return lambda _symbol, rows: fills.loc[
        fills["order_id"].isin(set(rows["order_id"])), "fill_time"
    ]


__all__ = ["DIMENSIONS", "AccountTCA", "TCAInputs", "TCAService"]
