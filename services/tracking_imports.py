"""What an import of a bot's database stores beside its fills: the orders behind them, for
transaction-cost analysis (services.tracking's imports)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from database.repositories.executions import ExecutionRepository
from tracking.importers import TradeImportError
from tracking.importers.executions import ExecutionBatch


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


__all__ = ["new_orders", "orders_line"]
