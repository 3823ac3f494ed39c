"""market_bars: a bar's part of the trades' market contexts, stored once

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05

A fill's market context read against a closed bar is ~680 bytes of JSON, and all of it but
the fill's session, price level and two distances is the bar's: every fill of that bar (of
every account) repeated it. From now on the tracker stores the bar's part once, as a row of
``market_bars`` keyed by the digest of its text (BLAKE2b, 128 bits, hex: the same bar read
the same way is the same row, whichever writer or process stores it), and each trade's
context holds its own part and that key (docs/tracking.md, "The trade record"). Rows already
stored stay as they are and read as before. The table is immutable as trades are: triggers
refuse an update or a delete (and a TRUNCATE on PostgreSQL). The downgrade refuses while
a stored trade's context names a bar (dropping the table would lose that part of it; the
trades are immutable, so it cannot be written back into them).

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER market_bars_refuse_update BEFORE UPDATE ON market_bars
    BEGIN SELECT RAISE(ABORT, 'market bars are immutable: a stored bar cannot be updated'); END""",
    """CREATE TRIGGER market_bars_refuse_delete BEFORE DELETE ON market_bars
    BEGIN SELECT RAISE(ABORT, 'market bars are immutable: a stored bar cannot be deleted'); END""",
)
POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION market_bars_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'market bars are immutable: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$""",
    """CREATE TRIGGER market_bars_refuse_update_delete BEFORE UPDATE OR DELETE ON market_bars
    FOR EACH ROW EXECUTE FUNCTION market_bars_refuse_change()""",
    """CREATE TRIGGER market_bars_refuse_truncate BEFORE TRUNCATE ON market_bars
    FOR EACH STATEMENT EXECUTE FUNCTION market_bars_refuse_change()""",
)


def upgrade() -> None:
    key = sa.String(length=32).with_variant(sa.String(length=32, collation="C"), "postgresql")
    op.create_table(
        "market_bars",
        sa.Column("key", key, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.CheckConstraint("length(key) = 32", name=op.f("ck_market_bars_key_hex")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_market_bars")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    named = (
        "SELECT 1 FROM trades WHERE market_context ->> '_compact' = '2' LIMIT 1"
        if postgresql
        else "SELECT 1 FROM trades WHERE json_extract(market_context, '$._compact') = 2 LIMIT 1"
    )
    if op.get_bind().exec_driver_sql(named).first() is not None:
        raise RuntimeError(
            "downgrade below 0018 refused: stored trades' market contexts name bars kept in"
            " market_bars (their bar's part would be lost; trades are immutable)"
        )
    if postgresql:
        op.execute("DROP TABLE market_bars")
        op.execute("DROP FUNCTION market_bars_refuse_change()")
    else:
        op.drop_table("market_bars")  # its triggers go with it
