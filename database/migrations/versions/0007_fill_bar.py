"""fills.bar_ts: the open time of the bar a fill happened on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

A fill's ``time`` is when the runner took it (the wall clock, for transaction-cost analysis);
on a replayed feed that is years after the bar it filled on. The chart's executions layer
draws a fill on its bar, so the bar is stored beside it (epoch ms, the broker's
``FillEvent.bar_ts``). Nullable: fills stored before this revision have none (the chart
then places them by ``time``). A new nullable column: nothing stored is rewritten.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bar_ts", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_column("bar_ts")
