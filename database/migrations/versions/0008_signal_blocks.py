"""strategy_signal_blocks: a run's signals stored as one columnar block

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

A new table only (database/models.py, StrategySignalBlock; the format in
database/repositories/signal_blocks.py): a run saved from a SignalBlock (a backtest's signals)
stores them as one Arrow IPC stream beside its run instead of a row each. Nothing stored before
is touched: earlier runs keep their rows and read as before. On PostgreSQL the payload is
STORAGE EXTERNAL (numbers that do not compress are not tried, as in 0003).

Downgrade expands every block back into rows of ``strategy_signals`` (config and metadata keys
on the run, typed metadata as 0003 stores it), so no signal is lost, then drops the table.

Frozen once released: plain SQL and types here, never classes from database.models.
"""

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SIGNAL_TYPES = ("entry_long", "exit_long", "entry_short", "exit_short")


def upgrade() -> None:
    op.create_table(
        "strategy_signal_blocks",
        sa.Column("run_id", ID_TYPE, nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("signal_count", sa.Integer(), nullable=False),
        sa.Column("first_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("format = 1", name=op.f("ck_strategy_signal_blocks_format_known")),
        sa.CheckConstraint(
            "signal_count > 0", name=op.f("ck_strategy_signal_blocks_signal_count_positive")
        ),
        sa.CheckConstraint(
            "first_ts <= last_ts", name=op.f("ck_strategy_signal_blocks_span_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["strategy_runs.id"],
            name=op.f("fk_strategy_signal_blocks_run_id_strategy_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_strategy_signal_blocks")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE strategy_signal_blocks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    blocks = bind.execute(
        sa.text(
            "SELECT b.run_id, b.data, r.strategy_name, r.symbol, r.timeframe "
            "FROM strategy_signal_blocks b JOIN strategy_runs r ON r.id = b.run_id "
            "ORDER BY b.run_id"
        )
    ).all()
    insert = sa.text(
        "INSERT INTO strategy_signals (strategy_name, strategy_config, symbol, timeframe, "
        "timestamp, signal_type, price, confidence, signal_metadata, run_id, "
        "signal_metadata_values) VALUES (:strategy_name, NULL, :symbol, :timeframe, "
        ":timestamp, :signal_type, :price, :confidence, NULL, :run_id, :values)"
    )
    for run_id, data, strategy_name, symbol, timeframe in blocks:
        table = pa.ipc.open_stream(pa.py_buffer(bytes(data))).read_all()
        stamps = table.column("timestamp").to_pandas()
        codes = table.column("signal_type").combine_chunks().indices.to_numpy()
        names = [n for n in table.column_names if n.startswith("m")]
        typed = (
            np.column_stack([table.column(n).to_numpy() for n in names]).astype("<f8")
            if names
            else None
        )
        rows = [
            {
                "strategy_name": strategy_name,
                "symbol": symbol,
                "timeframe": timeframe,
                "timestamp": stamp.to_pydatetime()
                if postgresql
                else stamp.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "signal_type": SIGNAL_TYPES[code],
                "price": price,
                "confidence": confidence,
                "run_id": run_id,
                "values": None if typed is None else typed[k].tobytes(),
            }
            for k, (stamp, code, price, confidence) in enumerate(
                zip(
                    stamps,
                    codes.tolist(),
                    table.column("price").to_pylist(),
                    table.column("confidence").to_pylist(),
                    strict=True,
                )
            )
        ]
        bind.execute(insert, rows)
    op.drop_table("strategy_signal_blocks")
