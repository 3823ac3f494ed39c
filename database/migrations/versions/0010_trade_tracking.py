"""trades: a trade id unique per account, the trade's source and order, account-time index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Trade tracking (docs/tracking.md) records executions from several sources into ``trades``: the
paper broker, a freqtrade or Hummingbot database, a CSV file, the API. Their ids are unique
within one account (a bot's trade 17 and another bot's trade 17 are different trades), so the
unique key becomes (account_id, trade_id). Two nullable columns: ``source`` (paper, freqtrade,
hummingbot, csv, api) and ``order_id`` (the order the fill belongs to, for transaction-cost
analysis). An index on (account_id, execution_time) serves an account's trades in time order.

On SQLite the batch operation rebuilds the table and drops its immutability triggers: they are
created again here (the same SQL as 0001). Rows are copied as they are; nothing is lost.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER trades_refuse_update BEFORE UPDATE ON trades
    BEGIN SELECT RAISE(ABORT, 'trades are immutable: a stored trade cannot be updated'); END""",
    """CREATE TRIGGER trades_refuse_delete BEFORE DELETE ON trades
    BEGIN SELECT RAISE(ABORT, 'trades are immutable: a stored trade cannot be deleted'); END""",
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    with op.batch_alter_table("trades") as batch:
        batch.add_column(sa.Column("source", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("order_id", sa.String(length=160), nullable=True))
        batch.drop_constraint(op.f("uq_trades_trade_id"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_trades_account_id_trade_id"), ["account_id", "trade_id"]
        )
        batch.create_index(
            op.f("ix_trades_account_id_execution_time"), ["account_id", "execution_time"]
        )
    if _sqlite():
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    """Back to one trade id per table: refused (naming them) when two accounts share an id."""
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT trade_id FROM trades GROUP BY trade_id HAVING COUNT(*) > 1 LIMIT 5"
            )
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            f"cannot downgrade below 0010: trade ids {shared} are used by several accounts"
        )
    if _sqlite():
        op.execute("DROP TRIGGER IF EXISTS trades_refuse_update")
        op.execute("DROP TRIGGER IF EXISTS trades_refuse_delete")
    with op.batch_alter_table("trades") as batch:
        batch.drop_index(op.f("ix_trades_account_id_execution_time"))
        batch.drop_constraint(op.f("uq_trades_account_id_trade_id"), type_="unique")
        batch.create_unique_constraint(op.f("uq_trades_trade_id"), ["trade_id"])
        batch.drop_column("order_id")
        batch.drop_column("source")
    if _sqlite():
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
