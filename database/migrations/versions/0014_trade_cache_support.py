"""database_identity and an (account_id, id) index on trades: the trade cache's footing

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

``database_identity`` holds one random token made when the schema is built: a columnar
cache of an account's trades (database/repositories/_trade_cache.py) is keyed by it, so a
database rebuilt at the same path or URL never meets the files of the one it replaced. The
index on trades (account_id, id) finds an account's rows stored after a given row without
reading the others. Nothing stored before is touched.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    identity = op.create_table(
        "database_identity",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.CheckConstraint("length(token) = 32", name=op.f("ck_database_identity_token_hex")),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_database_identity")),
    )
    op.bulk_insert(identity, [{"token": uuid.uuid4().hex}])
    op.create_index(op.f("ix_trades_account_id_id"), "trades", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_trades_account_id_id"), table_name="trades")
    op.drop_table("database_identity")
