"""What an import of a bot's database stores beside its fills: the orders behind them, for
transaction-cost analysis (services.tracking's imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from analytics.label_config import LabelConfig
from database.repositories.executions import ExecutionRepository
from tracking.importers import TradeImportError
from tracking.importers.executions import ExecutionBatch
from tracking.tracker import TradeTracker


def new_orders(session: Session, account: str, batch: ExecutionBatch, file: str) -> ExecutionBatch:
    """The orders of ``batch`` the account does not have yet; TradeImportError naming each
    order stored with other values than the file's (a stored order cannot change)."""
    repo = ExecutionRepository(session)
    known = repo.stored_order_ids(account, batch.orders["order_id"].tolist())
    if known:
        changed = batch.changed(
            repo.orders(account, order_ids=known), repo.fills(account, order_ids=known), file
        )
        if changed:
            raise TradeImportError(file, changed)
    return batch.without(known)


def import_columns(
    sessions: sessionmaker[Session],
    tracker: TradeTracker,
    config: LabelConfig | None,
    path: str | Path,
    account: str,
) -> tuple[str, int, int] | None:
    """A plain CSV of fills recorded a column at a time (tracking.bulk_import: the rows
    ``tracker`` would store, its annotator's rules ``config``; the tracker's errors for a
    fill stored with other values or out of order), under the tracker's lock; the tracker
    reads the account again when next used. (The reader's summary, the fills stored, those
    already stored), or None when that does not apply (the file is not plain or has a
    problem, ``tracker`` holds the account, no ``config``): nothing was written."""
    from database.gc_pause import collector_paused
    from tracking.bulk_import import NotPlain, import_parts
    from tracking.importers.csv_fills import read_fill_parts

    if config is None or not isinstance(account, str) or not account.strip():
        return None
    parts = read_fill_parts(path, account)  # the head at once, the whole as it is checked
    if parts.head is None and parts.whole.result() is None:
        return None
    # the collector off until the file's columns are let go: turned on while they are held,
    # its next young collection walks every element of their lists (~0.1 s per 1,000,000)
    with collector_paused(), tracker.exclusive():
        if tracker.holds(account):
            return None
        try:
            with sessions.begin() as session:
                table, stored, already = import_parts(session, parts, account, config)
        except NotPlain:  # rolled back: nothing stored
            return None
        finally:
            tracker.forget([account])
        summary = table.summary()
        del parts, table
    return summary, stored, already


def orders_line(orders: dict[str, Any], dry_run: bool) -> str:
    verb = "would store" if dry_run else "stored"
    text = (
        f"orders for transaction-cost analysis: {verb} {orders['stored']} new,"
        f" {orders['already_stored']} already stored"
    )
    left_out = orders["left_out"]
    if left_out:
        reasons = "; ".join(f"{n} {reason}" for reason, n in sorted(left_out.items()))
        text += f", {sum(left_out.values())} left out ({reasons})"
    for note, n in sorted(orders["notes"].items()):
        text += f"\nnote: {n} {note}"
    return text


__all__ = ["import_columns", "new_orders", "orders_line"]
