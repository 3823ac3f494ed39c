"""candle_series_versions: a data version per candle series (the key of the columnar cache).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20

Every stored series gets a fresh random token here; from now on every write of a series'
bars replaces its token in the same transaction (database/repositories/candles.py).
Frozen once released: use plain SQLAlchemy types here, never classes from database.models.
"""
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    versions = op.create_table(
        "candle_series_versions",
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "length(version) = 32", name=op.f("ck_candle_series_versions_version_is_token")
        ),
        sa.PrimaryKeyConstraint("symbol", "timeframe", name=op.f("pk_candle_series_versions")),
    )
    series = op.get_bind().execute(
        sa.text("SELECT DISTINCT symbol, timeframe FROM candles")
    ).all()
    if series:
        op.bulk_insert(
            versions,
            [
                {"symbol": symbol, "timeframe": timeframe, "version": uuid.uuid4().hex}
                for symbol, timeframe in series
            ],
        )


def downgrade() -> None:
    op.drop_table("candle_series_versions")
