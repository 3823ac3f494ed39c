"""order_requests and runner_leases: a page's cancel or modify reaches the runner holding the order

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Two new tables (database/trading_models.py): ``runner_leases`` holds one row, ``trading``, that
the running trading runner renews (its owner and heartbeat); ``order_requests`` queues a
cancel or modify asked by a process that does not hold the order (a page served apart from
``app.py runner``), which the runner applies through its live broker and answers. The lease row
is inserted here so that a page and a starting runner always lock the same row. Nothing stored
before is touched.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FINITE_MAX = "1e308"  # database.models.FINITE_MAX


def upgrade() -> None:
    op.create_table(
        "runner_leases",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(owner IS NULL) = (heartbeat_at IS NULL)",
            name=op.f("ck_runner_leases_held_with_heartbeat"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_runner_leases")),
    )
    op.execute("INSERT INTO runner_leases (name) VALUES ('trading')")
    op.create_table(
        "order_requests",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("order_id", ID_TYPE, nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=True),
        sa.Column("limit_price", sa.Double(), nullable=True),
        sa.Column("stop_price", sa.Double(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "action IN ('cancel', 'modify')", name=op.f("ck_order_requests_action_valid")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'applied', 'refused')",
            name=op.f("ck_order_requests_status_valid"),
        ),
        sa.CheckConstraint(
            f"quantity IS NULL OR (quantity > 0 AND quantity < {FINITE_MAX})",
            name=op.f("ck_order_requests_quantity_valid"),
        ),
        sa.CheckConstraint(
            f"limit_price IS NULL OR (limit_price > 0 AND limit_price < {FINITE_MAX})",
            name=op.f("ck_order_requests_limit_price_valid"),
        ),
        sa.CheckConstraint(
            f"stop_price IS NULL OR (stop_price > 0 AND stop_price < {FINITE_MAX})",
            name=op.f("ck_order_requests_stop_price_valid"),
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (answered_at IS NULL)",
            name=op.f("ck_order_requests_answered_when_done"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_requests_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_requests")),
    )
    op.create_index(
        op.f("ix_order_requests_status_id"), "order_requests", ["status", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_order_requests_status_id"), table_name="order_requests")
    op.drop_table("order_requests")
    op.drop_table("runner_leases")
