"""execution_orders, execution_fills: imported orders and their fills, for TCA

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Transaction-cost analysis (docs/tca.md) of accounts that are not paper accounts: the orders of
a freqtrade database, a Hummingbot database or a CSV of orders and fills, keyed by the account
name the trades of tracking use and the source's order id (unique per account), with their
fills (the order's k-th in ``seq``, the trade each was recorded as in ``trade_id``).
database/execution_models.py explains each column. Immutable like ``trades``: triggers refuse
an update or a delete (and a TRUNCATE on PostgreSQL). New tables only: nothing stored before
is touched.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FINITE = "1e308"
TABLES = ("execution_orders", "execution_fills")


def _sqlite_triggers(table: str) -> tuple[str, ...]:
    return (
        f"""CREATE TRIGGER {table}_refuse_update BEFORE UPDATE ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} rows are immutable: not updated'); END""",
        f"""CREATE TRIGGER {table}_refuse_delete BEFORE DELETE ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} rows are immutable: not deleted'); END""",
    )


POSTGRESQL_FUNCTION = """CREATE FUNCTION executions_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            RAISE EXCEPTION '% rows are immutable: TRUNCATE refused', TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END IF;
        RAISE EXCEPTION '% rows are immutable: % of order % refused', TG_TABLE_NAME, TG_OP,
            OLD.order_id USING ERRCODE = 'restrict_violation';
    END
    $$"""


def _postgresql_triggers(table: str) -> tuple[str, ...]:
    return (
        f"""CREATE TRIGGER {table}_refuse_update_delete BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION executions_refuse_change()""",
        f"""CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION executions_refuse_change()""",
    )


def _positive_or_null(column: str) -> str:
    return f"{column} IS NULL OR ({column} > 0 AND {column} < {FINITE})"


def upgrade() -> None:
    ck = "ck_execution_orders_"
    op.create_table(
        "execution_orders",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=160), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("strategy_id", sa.String(length=128), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("order_qty", sa.Double(), nullable=False),
        sa.Column("order_type", sa.String(length=64), nullable=True),
        sa.Column("limit_price", sa.Double(), nullable=True),
        sa.Column("decision_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_price", sa.Double(), nullable=True),
        sa.Column("arrival_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrival_price", sa.Double(), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("venue", sa.String(length=64), nullable=True),
        sa.Column("algo", sa.String(length=64), nullable=True),
        sa.Column("bid", sa.Double(), nullable=True),
        sa.Column("ask", sa.Double(), nullable=True),
        sa.Column("expected_return_bps", sa.Double(), nullable=True),
        sa.CheckConstraint("length(account_id) > 0", name=op.f(f"{ck}account_id_not_empty")),
        sa.CheckConstraint("length(order_id) > 0", name=op.f(f"{ck}order_id_not_empty")),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f(f"{ck}side_valid")),
        sa.CheckConstraint(
            f"order_qty > 0 AND order_qty < {FINITE}", name=op.f(f"{ck}order_qty_valid")
        ),
        sa.CheckConstraint(_positive_or_null("limit_price"), name=op.f(f"{ck}limit_price_valid")),
        sa.CheckConstraint(
            _positive_or_null("decision_price"), name=op.f(f"{ck}decision_price_valid")
        ),
        sa.CheckConstraint(
            _positive_or_null("arrival_price"), name=op.f(f"{ck}arrival_price_valid")
        ),
        sa.CheckConstraint(_positive_or_null("bid"), name=op.f(f"{ck}bid_valid")),
        sa.CheckConstraint(_positive_or_null("ask"), name=op.f(f"{ck}ask_valid")),
        sa.CheckConstraint(
            "bid IS NULL OR ask IS NULL OR ask >= bid", name=op.f(f"{ck}ask_not_below_bid")
        ),
        sa.CheckConstraint(
            f"expected_return_bps IS NULL OR (expected_return_bps > -{FINITE} AND "
            f"expected_return_bps < {FINITE})",
            name=op.f(f"{ck}expected_return_finite"),
        ),
        sa.CheckConstraint(
            "decision_time IS NULL OR arrival_time >= decision_time",
            name=op.f(f"{ck}arrival_not_before_decision"),
        ),
        sa.CheckConstraint(
            "end_time IS NULL OR end_time >= arrival_time", name=op.f(f"{ck}end_not_before_arrival")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_orders")),
        sa.UniqueConstraint(
            "account_id", "order_id", name=op.f("uq_execution_orders_account_id_order_id")
        ),
    )
    op.create_index(
        op.f("ix_execution_orders_account_id_arrival_time"),
        "execution_orders",
        ["account_id", "arrival_time"],
    )
    ck = "ck_execution_fills_"
    op.create_table(
        "execution_fills",
        sa.Column("id", ID_TYPE, nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=160), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("fill_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fill_price", sa.Double(), nullable=False),
        sa.Column("fill_qty", sa.Double(), nullable=False),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("trade_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint("seq >= 0", name=op.f(f"{ck}seq_valid")),
        sa.CheckConstraint(
            f"fill_price > 0 AND fill_price < {FINITE}", name=op.f(f"{ck}price_valid")
        ),
        sa.CheckConstraint(f"fill_qty > 0 AND fill_qty < {FINITE}", name=op.f(f"{ck}qty_valid")),
        sa.CheckConstraint(f"fee > -{FINITE} AND fee < {FINITE}", name=op.f(f"{ck}fee_finite")),
        sa.ForeignKeyConstraint(
            ["account_id", "order_id"],
            ["execution_orders.account_id", "execution_orders.order_id"],
            name=op.f("fk_execution_fills_account_id_execution_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_fills")),
        sa.UniqueConstraint(
            "account_id", "order_id", "seq", name=op.f("uq_execution_fills_account_id_order_id_seq")
        ),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for table in TABLES:
            for statement in _postgresql_triggers(table):
                op.execute(statement)
    else:
        for table in TABLES:
            for statement in _sqlite_triggers(table):
                op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for table in reversed(TABLES):
        if postgresql:
            op.execute(f"DROP TRIGGER {table}_refuse_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_refuse_update_delete ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_refuse_delete")
            op.execute(f"DROP TRIGGER {table}_refuse_update")
    if postgresql:
        op.execute("DROP FUNCTION executions_refuse_change()")
    op.drop_table("execution_fills")
    op.drop_index(
        op.f("ix_execution_orders_account_id_arrival_time"), table_name="execution_orders"
    )
    op.drop_table("execution_orders")
