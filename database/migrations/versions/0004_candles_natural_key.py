"""candles keyed by (symbol, timeframe, ts), no surrogate id; candle_imports.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

candles: the natural key (symbol, timeframe, ts) becomes the PRIMARY KEY and the surrogate
``id`` (used by nothing) goes, with its sequence on PostgreSQL: one index per bar instead of
two. SQLite stores the table WITHOUT ROWID (clustered on the key, one b-tree; the file is
about a quarter smaller). Every stored bar is copied as it is.

candle_imports: the imports in progress. A large import writes its bars into a staging table
of its own in chunks, each its own short transaction, then merges them into candles in one
transaction (database/repositories/candle_staging.py); a crashed import's staging table is
dropped by the next import.

Frozen once released: use plain SQLAlchemy types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FINITE = "1e308"
BARS = "symbol, timeframe, ts, open, high, low, close, volume"
CHECKS = (
    ("symbol_not_empty", "length(symbol) > 0"),
    ("timeframe_not_empty", "length(timeframe) > 0"),
    ("low_positive", "low > 0"),
    ("high_ge_low", "high >= low"),
    ("high_finite", f"high < {FINITE}"),
    ("open_in_range", "open >= low AND open <= high"),
    ("close_in_range", "close >= low AND close <= high"),
    ("volume_valid", f"volume >= 0 AND volume < {FINITE}"),
)


def _bar_columns() -> list[sa.Column]:
    return [
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column(
            "ts", sa.BigInteger(), nullable=False, comment="bar open time, epoch milliseconds UTC"
        ),
        *(sa.Column(c, sa.Double(), nullable=False) for c in ("open", "high", "low", "close")),
        sa.Column("volume", sa.Double(), nullable=False),
    ]


def _checks() -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(sql, name=op.f(f"ck_candles_{name}")) for name, sql in CHECKS]


def _rebuild_sqlite(key: list, **table_options: object) -> None:
    """SQLite cannot change a primary key in place: build the new table, copy, swap."""
    columns = _bar_columns()
    if key and key[0] == "id":
        columns.insert(0, sa.Column("id", ID, nullable=False))
        constraints = [
            sa.PrimaryKeyConstraint("id", name=op.f("pk_candles")),
            sa.UniqueConstraint(
                "symbol", "timeframe", "ts", name=op.f("uq_candles_symbol_timeframe_ts")
            ),
        ]
    else:
        constraints = [sa.PrimaryKeyConstraint(*key, name=op.f("pk_candles"))]
    op.create_table("candles_0004", *columns, *constraints, *_checks(), **table_options)
    order = " ORDER BY symbol, timeframe, ts"
    op.execute(f"INSERT INTO candles_0004 ({BARS}) SELECT {BARS} FROM candles{order}")
    op.drop_table("candles")
    op.rename_table("candles_0004", "candles")


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild_sqlite(["symbol", "timeframe", "ts"], sqlite_with_rowid=False)
    else:
        op.drop_constraint(op.f("pk_candles"), "candles", type_="primary")
        op.drop_column("candles", "id")  # and its sequence, which the column owns
        op.drop_constraint(op.f("uq_candles_symbol_timeframe_ts"), "candles", type_="unique")
        op.create_primary_key(op.f("pk_candles"), "candles", ["symbol", "timeframe", "ts"])

    op.create_table(
        "candle_imports",
        sa.Column("import_id", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(import_id) = 32", name=op.f("ck_candle_imports_import_id_is_token")
        ),
        sa.PrimaryKeyConstraint("import_id", name=op.f("pk_candle_imports")),
    )


def downgrade() -> None:
    op.drop_table("candle_imports")
    if op.get_context().dialect.name == "sqlite":
        _rebuild_sqlite(["id"])
        return
    op.drop_constraint(op.f("pk_candles"), "candles", type_="primary")
    op.execute("ALTER TABLE candles ADD COLUMN id BIGSERIAL NOT NULL")  # as 0001 made it
    op.create_primary_key(op.f("pk_candles"), "candles", ["id"])
    op.create_unique_constraint(
        op.f("uq_candles_symbol_timeframe_ts"), "candles", ["symbol", "timeframe", "ts"]
    )
