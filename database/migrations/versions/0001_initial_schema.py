"""Initial schema: candles, strategy_runs, strategy_signals, trades (immutable).

Revision ID: 0001
Revises:
Create Date: 2026-05-10

Frozen once released: use plain SQLAlchemy types here, never classes from database.models.
On SQLite, a batch operation on ``trades`` rebuilds the table and drops its immutability
triggers: recreate them in the same revision.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)
FINITE = "1e308"


def _check(table: str, name: str, sql: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _finite(column: str) -> str:
    return f"{column} > -{FINITE} AND {column} < {FINITE}"


SQLITE_TRIGGERS = (
    """CREATE TRIGGER trades_refuse_update BEFORE UPDATE ON trades
    BEGIN SELECT RAISE(ABORT, 'trades are immutable: a stored trade cannot be updated'); END""",
    """CREATE TRIGGER trades_refuse_delete BEFORE DELETE ON trades
    BEGIN SELECT RAISE(ABORT, 'trades are immutable: a stored trade cannot be deleted'); END""",
)

POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION trades_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            RAISE EXCEPTION 'trades are immutable: TRUNCATE refused'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RAISE EXCEPTION 'trades are immutable: % of trade % refused', TG_OP, OLD.trade_id
            USING ERRCODE = 'restrict_violation';
    END
    $$""",
    """CREATE TRIGGER trades_refuse_update_delete BEFORE UPDATE OR DELETE ON trades
    FOR EACH ROW EXECUTE FUNCTION trades_refuse_change()""",
    """CREATE TRIGGER trades_refuse_truncate BEFORE TRUNCATE ON trades
    FOR EACH STATEMENT EXECUTE FUNCTION trades_refuse_change()""",
)


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("id", ID, nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column(
            "ts", sa.BigInteger(), nullable=False, comment="bar open time, epoch milliseconds UTC"
        ),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candles")),
        sa.UniqueConstraint(
            "symbol", "timeframe", "ts", name=op.f("uq_candles_symbol_timeframe_ts")
        ),
        _check("candles", "symbol_not_empty", "length(symbol) > 0"),
        _check("candles", "timeframe_not_empty", "length(timeframe) > 0"),
        _check("candles", "low_positive", "low > 0"),
        _check("candles", "high_ge_low", "high >= low"),
        _check("candles", "high_finite", f"high < {FINITE}"),
        _check("candles", "open_in_range", "open >= low AND open <= high"),
        _check("candles", "close_in_range", "close >= low AND close <= high"),
        _check("candles", "volume_valid", f"volume >= 0 AND volume < {FINITE}"),
    )

    op.create_table(
        "strategy_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("strategy_name", sa.String(128), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_runs")),
        _check("strategy_runs", "mode_valid", "mode IN ('backtest', 'live', 'paper')"),
        _check(
            "strategy_runs", "status_valid", "status IN ('running', 'finished', 'failed')"
        ),
        _check(
            "strategy_runs",
            "finished_matches_status",
            "(status = 'running' AND finished_at IS NULL)"
            " OR (status <> 'running' AND finished_at IS NOT NULL)",
        ),
        _check(
            "strategy_runs",
            "finished_after_start",
            "finished_at IS NULL OR finished_at >= started_at",
        ),
    )
    op.create_index(
        op.f("ix_strategy_runs_strategy_name_started_at"),
        "strategy_runs",
        ["strategy_name", "started_at"],
    )

    op.create_table(
        "strategy_signals",
        sa.Column("id", ID, nullable=False),
        sa.Column("strategy_name", sa.String(128), nullable=False),
        sa.Column("strategy_config", JSON, nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(16), nullable=False),
        sa.Column("timestamp", UTC_DATETIME, nullable=False),
        sa.Column("signal_type", sa.String(16), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("signal_metadata", JSON, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_signals")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["strategy_runs.id"],
            name=op.f("fk_strategy_signals_run_id_strategy_runs"),
            ondelete="CASCADE",
        ),
        _check(
            "strategy_signals",
            "signal_type_valid",
            "signal_type IN ('entry_long', 'exit_long', 'entry_short', 'exit_short')",
        ),
        _check("strategy_signals", "price_valid", f"price > 0 AND price < {FINITE}"),
        _check("strategy_signals", "confidence_valid", "confidence >= 0 AND confidence <= 1"),
    )
    op.create_index(
        op.f("ix_strategy_signals_strategy_name_symbol_timeframe_timestamp"),
        "strategy_signals",
        ["strategy_name", "symbol", "timeframe", "timestamp"],
    )
    op.create_index(op.f("ix_strategy_signals_run_id"), "strategy_signals", ["run_id"])

    op.create_table(
        "trades",
        sa.Column("id", ID, nullable=False),
        sa.Column("trade_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("strategy_id", sa.String(128), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("commission", sa.Double(), nullable=False),
        sa.Column("execution_time", UTC_DATETIME, nullable=False),
        sa.Column("market_context", JSON, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("pnl", sa.Double(), nullable=True),
        sa.Column("cumulative_pnl", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
        sa.UniqueConstraint("trade_id", name=op.f("uq_trades_trade_id")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["strategy_runs.id"], name=op.f("fk_trades_run_id_strategy_runs")
        ),
        _check("trades", "trade_id_not_empty", "length(trade_id) > 0"),
        _check("trades", "side_valid", "side IN ('buy', 'sell')"),
        _check("trades", "price_valid", f"price > 0 AND price < {FINITE}"),
        _check("trades", "volume_valid", f"volume > 0 AND volume < {FINITE}"),
        _check("trades", "commission_finite", _finite("commission")),
        _check("trades", "pnl_finite", f"pnl IS NULL OR ({_finite('pnl')})"),
        _check(
            "trades",
            "cumulative_pnl_finite",
            f"cumulative_pnl IS NULL OR ({_finite('cumulative_pnl')})",
        ),
    )
    op.create_index(
        op.f("ix_trades_symbol_execution_time"), "trades", ["symbol", "execution_time"]
    )
    op.create_index(
        op.f("ix_trades_strategy_id_execution_time"), "trades", ["strategy_id", "execution_time"]
    )
    op.create_index(op.f("ix_trades_run_id"), "trades", ["run_id"])

    dialect = op.get_context().dialect.name
    for statement in POSTGRESQL_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trades_refuse_truncate ON trades")
        op.execute("DROP TRIGGER trades_refuse_update_delete ON trades")
        op.execute("DROP FUNCTION trades_refuse_change()")
    else:
        op.execute("DROP TRIGGER trades_refuse_delete")
        op.execute("DROP TRIGGER trades_refuse_update")
    op.drop_table("trades")
    op.drop_table("strategy_signals")
    op.drop_table("strategy_runs")
    op.drop_table("candles")
