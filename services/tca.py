"""Transaction-cost analysis of an account's orders, as ``app.py tca`` prints it (docs/tca.md).

>>> report = TCAService(sessions).paper("demo", by=("venue", "symbol"))
>>> report.orders[["order_id", "arrival_slippage_bps", "is_total_bps"]]

The paper broker's orders and fills (decision time and price: the signal bar's close; arrival:
when the broker received it) become the orders and fills frames of :mod:`analytics.tca`; the
market data are each symbol's finest stored bars over the orders' span (with an hour after,
for markouts). An order sized at its fill (no quantity when placed) is read with its filled
quantity; a rejected order never reached the market and is left out (counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analytics.tca import TCAReport, TCASettings, transaction_costs
from database.repositories.candles import CandleRepository
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

    def paper(
        self,
        account: str,
        *,
        by: Sequence[str] = DIMENSIONS,
        settings: TCASettings | None = None,
    ) -> AccountTCA:
        """TCA of a paper account's orders; UnknownAccountError when there is no such
        account or it has no order."""
        inputs = self.inputs(account)
        report = transaction_costs(
            inputs.orders, inputs.fills, inputs.candles, settings, by=tuple(by)
        )
        return AccountTCA(account, report, inputs.left_out)

    def inputs(self, account: str) -> TCAInputs:
        """The orders, fills and bars behind an account's TCA (also the ML dataset's source);
        UnknownAccountError when there is no such account or it has no order."""
        orders, fills, left_out = self._frames(account)
        return TCAInputs(account, orders, fills, self._candles(orders, fills), left_out)

    def _frames(self, account: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
        with self._sessions() as session:
            repo = TradingRepository(session)
            row = repo.account(account)
            if row is None:
                names = ", ".join(a.name for a in repo.accounts()) or "none"
                raise UnknownAccountError(f"no paper account {account!r} (accounts: {names})")
            assert row.id is not None
            orders = repo.orders(row.id)
            fills = repo.fills(row.id)
            names = {d.id: d.name for d in repo.deployments(account_id=row.id)}
        left_out: dict[str, int] = {}
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
                }
            )
        if not records:
            raise UnknownAccountError(f"paper account {account!r} has no order to analyse")
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
            columns=["order_id", "fill_time", "fill_price", "fill_qty", "fee"],
        )  # fmt: skip
        fill_frame["fill_time"] = pd.to_datetime(fill_frame["fill_time"], utc=True)
        return frame, fill_frame, left_out

    def _candles(self, orders: pd.DataFrame, fills: pd.DataFrame) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        with self._sessions() as session:
            repo = CandleRepository(session)
            for symbol, rows in orders.groupby("symbol"):
                stored = repo.timeframes(str(symbol))
                if not stored:
                    continue
                finest = min(stored, key=lambda t: Timeframe.parse(t).delta)
                bar = Timeframe.parse(finest).delta
                ids = set(rows["order_id"])
                times = fills.loc[fills["order_id"].isin(ids), "fill_time"]
                start = min(rows["decision_time"].min(), rows["arrival_time"].min()) - bar
                end = max(times.max() if len(times) else start, rows["end_time"].max())
                end = (end if pd.notna(end) else rows["arrival_time"].max()) + MARKOUT_PAD
                out[str(symbol)] = repo.frame(str(symbol), finest, start=start, end=end)
        return out


__all__ = ["DIMENSIONS", "AccountTCA", "TCAInputs", "TCAService"]
