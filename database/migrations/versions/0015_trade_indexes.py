"""trades: only the indexes a query uses (bulk imports write ~1.5x faster)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

Every read of trades names its account and goes by row id (the fills frame, the rows after a
row, the trade pages, an account's newest row, its count) through the (account_id, id)
index; the unique (account_id, trade_id) key finds stored ids. Three indexes served no query
any more and cost each insert a B-tree write: (symbol, execution_time), (strategy_id,
execution_time) and (account_id, execution_time) are dropped (TradeRepository.list still
answers those filters, through the account's index or a scan: no caller outside the tests).
The run_id index, which a run's "has trades" check and its delete use, keeps its name and
column but holds only the trades of a run (``WHERE run_id IS NOT NULL``): imported and
streamed fills have none, so they no longer write it. Only indexes change: every row stays
as it is. The downgrade builds the dropped indexes again.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = (
    ("ix_trades_symbol_execution_time", ["symbol", "execution_time"]),
    ("ix_trades_strategy_id_execution_time", ["strategy_id", "execution_time"]),
    ("ix_trades_account_id_execution_time", ["account_id", "execution_time"]),
)
_RUN_INDEX = "ix_trades_run_id"
_WITH_RUN = "run_id IS NOT NULL"


def upgrade() -> None:
    for name, _columns in _DROPPED:
        op.drop_index(name, table_name="trades")
    op.drop_index(_RUN_INDEX, table_name="trades")
    op.create_index(
        _RUN_INDEX,
        "trades",
        ["run_id"],
        sqlite_where=sa.text(_WITH_RUN),
        postgresql_where=sa.text(_WITH_RUN),
    )


def downgrade() -> None:
    op.drop_index(_RUN_INDEX, table_name="trades")
    op.create_index(_RUN_INDEX, "trades", ["run_id"])
    for name, columns in _DROPPED:
        op.create_index(name, "trades", columns)
