"""What the engine changed, written through the repositories; what a restart reads back.

>>> store = TradingStore()
>>> with sessions.begin() as session:
...     store.write(session, outcomes)            # a bar's (or a batch of bars') outcomes
>>> with sessions() as session:
...     orders, positions = store.load_book(session, account_id)

One transaction holds whole bars: their orders, fills (also as executed trades in ``trades``,
the source the tracking issues read), positions, the account, each deployment's state and last
bar, and the signals of its paper run. A crash therefore loses at most the bars after the last
commit, which a restart processes again: client order ids are deterministic (deployment,
bar, purpose) and already stored ones are never placed again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from database.records import TradeRecord
from database.repositories.trading import (
    AccountRow,
    FillRow,
    OrderRow,
    PositionRow,
    TradingRepository,
)
from database.repositories.trading_batch import TradingBatch, write_batch
from tracking.annotator import MarketAnnotator
from tracking.tracker import TradeTracker
from trading.config import CostModel
from trading.engine import BarOutcome
from trading.orders import AccountBook, FillEvent, OrderRequest, PaperOrder, PositionBook

log = logging.getLogger("stratlens.runner")

TRADES_IN_BATCH = 1000  # fills of a write whose trades may join its batch (PostgreSQL)


class TradingStore:
    """Writes :class:`BarOutcome` batches; reads a broker's book back (see the docstring)."""

    def __init__(self, tracker: TradeTracker | None = None) -> None:
        # every fill is recorded as an executed trade through the trade tracker (realised PnL
        # FIFO, the account's cumulative PnL, market context and labels) in the same transaction
        self._tracker = tracker or TradeTracker(annotator=MarketAnnotator())
        self._written: dict[int, dict] = {}  # deployment id -> the state JSON last written
        self._bars: dict[int, int] = {}  # deployment id -> the bar index last written
        self._accounts: dict[int, AccountRow] = {}  # account id -> the books last written

    def _states(
        self, deployed: dict[int, Any], states: dict
    ) -> tuple[list[tuple[int, int, int, dict | None]], list[tuple[int, int]]]:
        """Each deployment's counters and, when it changed since the last write, its state:
        (rows to write, those one bar further with an unchanged state: only advanced)."""
        advanced: list[tuple[int, int]] = []
        rows: list[tuple[int, int, int, dict | None]] = []
        written, bars = self._written, self._bars
        for deployment_id, (i, ts, bar, _) in states.items():
            state = deployed[deployment_id].policy.state()
            unchanged = written.get(deployment_id) == state
            if unchanged and bars.get(deployment_id) == bar - 1:
                advanced.append((i, ts))
            else:
                rows.append((i, ts, bar, None if unchanged else state))
                written[deployment_id] = state
            bars[deployment_id] = bar
        return rows, advanced

    def write(
        self,
        session: Session,
        outcomes: Iterable[BarOutcome],
        *,
        no_flush_wait: bool = False,
        trades_in_batch: bool = False,
    ) -> None:
        """Every outcome's changes in a few statements (on PostgreSQL the orders, fills,
        positions, accounts, deployment states and signals in one round trip, then the
        executed trades). ``no_flush_wait``: PostgreSQL's COMMIT of this transaction
        does not wait for the WAL flush (the live runner's bars, docs/trading.md).
        ``trades_in_batch`` (PostgreSQL, up to :data:`TRADES_IN_BATCH` fills): the executed
        trades go in the same round trip, the trade tracker reading no account it holds
        (TradeTracker.record_in's ``write``); should another writer have stored trades of
        one of those accounts meanwhile, nothing is written and the database error says so
        (``trading_batch.stale_trades``): the caller writes again without it."""
        repo = TradingRepository(session)
        orders: dict[str, tuple[int, PaperOrder]] = {}  # the last state of each order
        fills: list[tuple[int, FillEvent]] = []
        positions: dict[tuple[int, str], PositionBook] = {}
        accounts: dict[int, AccountBook] = {}
        states: dict[int, tuple[int, int, int, dict | None]] = {}
        statuses: dict[int, tuple[str, str | None]] = {}
        signals: list = []
        last_time: datetime | None = None
        outcomes_deployed: dict[int, Any] = {}
        for outcome in outcomes:
            last_time = outcome.time
            for account_id, changed in outcome.orders.items():
                for order in changed:
                    orders[order.client_order_id] = (account_id, order)
            for account_id, made in outcome.fills.items():
                fills.extend((account_id, f) for f in made)
            for account_id, moved in outcome.positions.items():
                for book in moved:
                    positions[(account_id, book.symbol)] = book
            for book in outcome.accounts:
                assert book.id is not None
                accounts[book.id] = book
            for d in outcome.deployments:
                outcomes_deployed[d.id] = d
                if d.last_bar_ts is not None:
                    states[d.id] = (d.id, d.last_bar_ts, d.policy.bar, None)
            for d in outcome.stopped:
                halted = d.error is not None and d.error.startswith("drawdown")
                statuses[d.id] = ("halted" if halted else "error", d.error)
            if outcome.signals:
                signals.extend(s.to_record(d.run_id) for d, s in outcome.signals)
        if last_time is None:
            return
        changed_accounts = []
        for book in accounts.values():
            row = account_row(book)
            if self._accounts.get(row.id) != row:  # an account whose books did not move
                changed_accounts.append(row)  # is not written again
                self._accounts[row.id] = row
        rows, advanced = self._states(outcomes_deployed, states)
        batch = TradingBatch(
            last_time,
            orders=[(a, order_row(o)) for a, o in orders.values()],
            fills=[(a, fill_row(f)) for a, f in fills],
            positions=[(a, position_row(p)) for (a, _), p in positions.items()],
            accounts=changed_accounts,
            states=rows,
            advanced=advanced,
            signals=signals,
            no_flush_wait=no_flush_wait,
            last=not statuses and not fills,  # nothing is written after it
        )
        names = {a: b.name for a, b in accounts.items()}
        records = [trade_record(f, names.get(a) or str(a)) for a, f in fills]
        if (
            records
            and trades_in_batch
            and len(records) <= TRADES_IN_BATCH
            and session.get_bind().dialect.name == "postgresql"
        ):
            batch.last = not statuses

            def write(stored: list[TradeRecord], newest: dict[str, int]) -> dict[str, int]:
                batch.trades, batch.trades_newest = stored, newest
                return write_batch(session, batch)

            self._tracker.record_in(session, records, write=write)
            records = []
        else:
            write_batch(session, batch)
        for deployment_id, (status, error) in statuses.items():
            repo.update_deployment(deployment_id, last_time, status=status, error=error)
        if records:
            self._tracker.record_in(session, records)

    def bar_closed(self, symbol: str, timeframe: str, candle: Any) -> None:
        """A closed bar, stored, that the runner is about to process: the trade tracker's
        labels take it now (TradeTracker.bar_closed), not in the transaction of a fill. A
        failure only leaves the bar to be read by the fill's batch, as before."""
        try:
            self._tracker.bar_closed(symbol, timeframe, candle)
        except Exception:
            log.exception("the trade labels could not take the %s bar of %s", timeframe, symbol)

    def forget_written(self) -> None:
        """Forget what was last written (a write that failed): the next write stores every
        state and account of its outcomes whole."""
        self._written.clear()
        self._bars.clear()
        self._accounts.clear()

    def warm(self, account: str) -> None:
        """Have the trade tracker read the account's stored trades now (a runner starting its
        first deployment), not in the transaction of its first fill (3-20 ms in a candle).
        Only a tracker with sessions of its own reads (TradeTracker.catch_up); a failure
        leaves it to the first fill, as before."""
        try:
            self._tracker.catch_up(account)
        except Exception:
            log.exception("the trades of account %s could not be read ahead", account)

    def load_book(
        self, session: Session, account_id: int
    ) -> tuple[list[PaperOrder], list[PositionBook]]:
        """The account's open orders and positions as the broker keeps them."""
        repo = TradingRepository(session)
        orders = [paper_order(row) for row in repo.orders(account_id, open_only=True)]
        positions = [
            PositionBook(
                p.symbol, p.quantity, p.average_price, p.realised_pnl, p.last_price, p.updated_at
            )
            for p in repo.positions(account_id)
        ]
        return orders, positions


def account_book(row: AccountRow) -> AccountBook:
    return AccountBook(
        row.name, row.cash, row.starting_cash, row.realised_pnl, row.fees, row.peak_equity,
        row.max_drawdown_pct, row.status, row.halt_reason, row.id,
    )  # fmt: skip


def account_row(book: AccountBook) -> AccountRow:
    assert book.id is not None
    assert book.starting_cash is not None
    assert book.peak_equity is not None
    return AccountRow(
        book.id, book.name, book.starting_cash, book.cash, book.realised_pnl, book.fees,
        book.peak_equity, book.max_drawdown_pct, book.status, book.halt_reason,
    )  # fmt: skip


def order_row(order: PaperOrder) -> OrderRow:
    r = order.request
    extra = dict(order.extra)
    extra.update(
        costs=_costs_json(r.costs),
        volume_cap=r.volume_cap,
        anchor=order.anchor,
        triggered=order.triggered,
        fills=order.fills,
        placed_bar=order.placed_bar,
        max_position=r.max_position,
        max_orders_per_minute=r.max_orders_per_minute,
        requested_quantity=r.quantity,
    )
    return OrderRow(
        client_order_id=r.client_order_id,
        symbol=r.symbol,
        side=r.side,
        order_type=r.order_type,
        time_in_force=r.time_in_force,
        status=order.status,
        purpose=r.purpose,
        arrival_time=order.arrival_time,
        updated_at=order.updated_at or order.arrival_time,
        deployment_id=r.deployment_id,
        quantity=order.quantity,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        trail_pct=r.trail_pct,
        reduce_only=r.reduce_only,
        oco_group=r.oco_group,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        fees=order.fees,
        reject_reason=order.reject_reason,
        decision_time=r.decision_time,
        decision_price=r.decision_price,
        arrival_price=order.arrival_price,
        extra=extra,
        id=order.id,
    )


@functools.lru_cache(maxsize=256)
def _costs_json(costs: CostModel) -> dict[str, float]:
    """An order's cost model as stored in its ``extra`` (one dict per cost model, read only)."""
    return asdict(costs)


def paper_order(row: OrderRow) -> PaperOrder:
    """A stored order as the broker keeps it (its cost model is stored with it)."""
    extra = dict(row.extra)
    costs = CostModel(**extra.pop("costs", {}))
    request = OrderRequest(
        row.client_order_id, row.symbol, row.side, row.order_type,
        quantity=extra.pop("requested_quantity", row.quantity), limit_price=row.limit_price,
        stop_price=row.stop_price, trail_pct=row.trail_pct, time_in_force=row.time_in_force,
        reduce_only=row.reduce_only, oco_group=row.oco_group, purpose=row.purpose,
        deployment_id=row.deployment_id, decision_time=row.decision_time,
        decision_price=row.decision_price, costs=costs, volume_cap=extra.pop("volume_cap", None),
        max_position=extra.pop("max_position", None),
        max_orders_per_minute=extra.pop("max_orders_per_minute", None),
    )  # fmt: skip
    order = PaperOrder(
        request, row.status, row.arrival_time, row.arrival_price, row.quantity,
        row.limit_price, row.stop_price, anchor=extra.pop("anchor", None),
        triggered=bool(extra.pop("triggered", False)), filled_quantity=row.filled_quantity,
        average_price=row.average_price, fees=row.fees, fills=int(extra.pop("fills", 0)),
        reject_reason=row.reject_reason, updated_at=row.updated_at,
        placed_bar=extra.pop("placed_bar", None), id=row.id, extra=extra,
    )  # fmt: skip
    return order


def fill_row(fill: FillEvent) -> FillRow:
    return FillRow(
        fill.fill_id, fill.order.client_order_id, fill.symbol, fill.side, fill.price,
        fill.quantity, fill.fee, fill.realised_pnl, fill.time, fill.seq,
        fill.order.request.deployment_id, bar_ts=fill.bar_ts,
    )  # fmt: skip


def position_row(book: PositionBook) -> PositionRow:
    assert book.updated_at is not None
    return PositionRow(
        book.symbol, book.quantity, book.average_price, book.realised_pnl, book.last_price,
        book.updated_at,
    )  # fmt: skip


def trade_record(fill: FillEvent, account: str) -> TradeRecord:
    """A paper fill as an executed trade (the ``trades`` table every source feeds)."""
    deployment = fill.order.request.deployment_id
    return TradeRecord(
        trade_id=f"paper:{account}:{fill.fill_id}",
        account_id=account,
        strategy_id=f"deployment:{deployment}" if deployment is not None else "manual",
        symbol=fill.symbol,
        side=fill.side,  # type: ignore[arg-type]
        price=fill.price,
        volume=fill.quantity,
        execution_time=fill.time,
        commission=fill.fee,
        market_context={"venue": "paper", "trigger": fill.trigger, "base_price": fill.base},
        source="paper",
        order_id=fill.order.client_order_id,
    )


__all__ = [
    "TradingStore",
    "account_book",
    "account_row",
    "fill_row",
    "order_row",
    "paper_order",
    "position_row",
    "trade_record",
]
