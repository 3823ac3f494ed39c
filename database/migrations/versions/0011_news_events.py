"""news_events: the user's news calendar, read by the news_event trade label

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

One row per event (time UTC, title, optional symbol; no symbol: every symbol), imported with
``app.py trades news FILE``. Unique on (time, title, symbol) so that a second import of the
same calendar adds nothing. Nothing stored before is touched.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "news_events",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=True),
        sa.CheckConstraint("length(title) > 0", name=op.f("ck_news_events_title_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_events")),
        sa.UniqueConstraint("time", "title", "symbol", name=op.f("uq_news_events_time_title_symbol")),
    )
    op.create_index(op.f("ix_news_events_time"), "news_events", ["time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_news_events_time"), table_name="news_events")
    op.drop_table("news_events")
