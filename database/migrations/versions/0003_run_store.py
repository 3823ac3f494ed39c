"""Run store: a run's config once on the run, typed signal rows, run integrity per statement.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-20

``strategy_signals``:

- ``strategy_config`` may be NULL: the signal's config is its run's (stored once on the run:
  ``strategy_runs.signal_config`` (new) when a run's signals share a config other than the
  run's own, e.g. the strategy's params of a backtest run whose config adds its settings;
  else ``strategy_runs.config``).
  Existing rows whose config equals their run's become NULL, as do ``{}`` configs of signals
  without a run; every other config stays as it was. Read back, NULL is the run's config
  (``{}`` without a run): the values read are the same as before.
- ``signal_metadata`` may be NULL: a signal without metadata (``{}`` rows become NULL, read
  back as ``{}``).
- Both are plain JSON on PostgreSQL (text, checked but not parsed into JSONB: nothing queries
  inside them, and JSONB's parse was a third of a bulk write's server time).
- ``signal_metadata_values`` (new, NULL for every existing row): a signal's metadata stored
  typed, its float64 values little-endian in the order of its run's ``signal_metadata_keys``
  (new column of ``strategy_runs``), then ``signal_metadata`` is NULL. Existing metadata stays
  JSON; the downgrade writes typed metadata back as the JSON ``json.dumps`` gives.
- ``strategy_run_results`` (new): a finished backtest run's trade list and equity curve as
  Arrow IPC streams (format 1), one row per run, deleted with it (FOREIGN KEY ON DELETE
  CASCADE: one row per run costs nothing to check); on PostgreSQL the payloads are STORAGE
  EXTERNAL (never compressed: pglz spent ~200 ms on a 6.5 MB result that does not compress).
- The FOREIGN KEY ``run_id -> strategy_runs.id`` (ON DELETE CASCADE) becomes triggers: on
  PostgreSQL its per-row check doubled the server time of a run's COPY; a statement trigger
  checks (and key-share locks) the runs a statement's new rows name in one join. The same
  rules hold on both backends: a signal naming an unknown run is refused (IntegrityError), a
  deleted run's signals are deleted with it, a run's id cannot change.

Frozen once released: plain SQLAlchemy types here, never classes from database.models. On
SQLite a batch operation on ``strategy_signals`` or ``strategy_runs`` rebuilds the table and
drops the triggers below: recreate them in the same revision (as this one does).
"""

import json
import struct
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAME = "fk_strategy_signals_run_id_strategy_runs"
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

SQLITE_TRIGGERS = (
    """CREATE TRIGGER strategy_signals_check_run_insert BEFORE INSERT ON strategy_signals
    WHEN NEW.run_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM strategy_runs WHERE id = NEW.run_id)
    BEGIN SELECT RAISE(ABORT, 'strategy_signals.run_id names no strategy run'); END""",
    """CREATE TRIGGER strategy_signals_check_run_update BEFORE UPDATE OF run_id
    ON strategy_signals
    WHEN NEW.run_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM strategy_runs WHERE id = NEW.run_id)
    BEGIN SELECT RAISE(ABORT, 'strategy_signals.run_id names no strategy run'); END""",
    """CREATE TRIGGER strategy_runs_delete_signals AFTER DELETE ON strategy_runs
    BEGIN DELETE FROM strategy_signals WHERE run_id = OLD.id; END""",
    """CREATE TRIGGER strategy_runs_keep_id BEFORE UPDATE OF id ON strategy_runs
    WHEN NEW.id <> OLD.id
    BEGIN SELECT RAISE(ABORT, 'a strategy run''s id cannot change'); END""",
)
SQLITE_DROP = (
    "DROP TRIGGER strategy_runs_keep_id",
    "DROP TRIGGER strategy_runs_delete_signals",
    "DROP TRIGGER strategy_signals_check_run_update",
    "DROP TRIGGER strategy_signals_check_run_insert",
)

POSTGRESQL_TRIGGERS = (
    """CREATE FUNCTION strategy_signals_check_runs() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        missing bigint;
    BEGIN
        -- what a FOREIGN KEY does per row, once per statement: key-share lock the runs named
        -- (a concurrent delete waits for this transaction), then look for one not there
        PERFORM 1 FROM strategy_runs
            WHERE id IN (SELECT DISTINCT run_id FROM added) FOR KEY SHARE;
        SELECT a.run_id INTO missing FROM added a
            WHERE a.run_id IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM strategy_runs r WHERE r.id = a.run_id)
            LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'strategy_signals.run_id % names no strategy run', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END
    $$""",
    """CREATE TRIGGER strategy_signals_check_runs_insert AFTER INSERT ON strategy_signals
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION strategy_signals_check_runs()""",
    """CREATE TRIGGER strategy_signals_check_runs_update AFTER UPDATE ON strategy_signals
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION strategy_signals_check_runs()""",
    """CREATE FUNCTION strategy_runs_delete_signals() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM strategy_signals WHERE run_id IN (SELECT id FROM gone);
        RETURN NULL;
    END
    $$""",
    """CREATE TRIGGER strategy_runs_delete_signals AFTER DELETE ON strategy_runs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION strategy_runs_delete_signals()""",
    """CREATE FUNCTION strategy_runs_keep_id() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the id of strategy run % cannot change', OLD.id
            USING ERRCODE = 'restrict_violation';
    END
    $$""",
    """CREATE TRIGGER strategy_runs_keep_id BEFORE UPDATE OF id ON strategy_runs
    FOR EACH ROW WHEN (NEW.id <> OLD.id) EXECUTE FUNCTION strategy_runs_keep_id()""",
)
POSTGRESQL_DROP = (
    "DROP TRIGGER strategy_runs_keep_id ON strategy_runs",
    "DROP FUNCTION strategy_runs_keep_id()",
    "DROP TRIGGER strategy_runs_delete_signals ON strategy_runs",
    "DROP FUNCTION strategy_runs_delete_signals()",
    "DROP TRIGGER strategy_signals_check_runs_update ON strategy_signals",
    "DROP TRIGGER strategy_signals_check_runs_insert ON strategy_signals",
    "DROP FUNCTION strategy_signals_check_runs()",
)

# a config equal to the run's is the run's; {} of a signal without a run is what NULL reads as
# (SQLite stores JSON as the text json.dumps gave: a run's signals got the run's very text)
_SQLITE_SHARED_CONFIG = """UPDATE strategy_signals SET strategy_config = NULL
    WHERE (run_id IS NULL AND strategy_config = '{}')
        OR strategy_config = (SELECT config FROM strategy_runs r WHERE r.id = run_id)"""
# json has no equality operator: compare as jsonb
_POSTGRESQL_SHARED_CONFIG = """UPDATE strategy_signals SET strategy_config = NULL
    WHERE (run_id IS NULL AND strategy_config::jsonb = '{}'::jsonb)
        OR strategy_config::jsonb = (SELECT config FROM strategy_runs r WHERE r.id = run_id)"""
# NULL is the config the run's signals share (signal_config), else the run's own
_RUN_CONFIG = (
    "(SELECT COALESCE(signal_config, config) FROM strategy_runs r WHERE r.id = run_id)"
)


def _create_results() -> None:
    op.create_table(
        "strategy_run_results",
        sa.Column("run_id", ID_TYPE, nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("trades", sa.LargeBinary(), nullable=False),
        sa.Column("equity", sa.LargeBinary(), nullable=False),
        sa.Column("warmup_bars", sa.Integer(), nullable=False),
        sa.Column("drawdown_halt", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("format = 1", name=op.f("ck_strategy_run_results_format_known")),
        sa.CheckConstraint("warmup_bars >= 0", name=op.f("ck_strategy_run_results_warmup_bars_valid")),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["strategy_runs.id"],
            name=op.f("fk_strategy_run_results_run_id_strategy_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_strategy_run_results")),
    )


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    _create_results()
    # ADD COLUMN: no table rebuild on SQLite (strategy_runs keeps its triggers)
    op.add_column("strategy_runs", sa.Column("signal_metadata_keys", sa.JSON(), nullable=True))
    op.add_column("strategy_runs", sa.Column("signal_config", JSON_TYPE, nullable=True))
    if dialect == "postgresql":
        # the payloads are numbers that do not compress: store them as they are
        op.execute(
            "ALTER TABLE strategy_run_results ALTER COLUMN trades SET STORAGE EXTERNAL, "
            "ALTER COLUMN equity SET STORAGE EXTERNAL"
        )
        op.add_column(
            "strategy_signals", sa.Column("signal_metadata_values", sa.LargeBinary(), nullable=True)
        )
        op.drop_constraint(FK_NAME, "strategy_signals", type_="foreignkey")
        for column in ("strategy_config", "signal_metadata"):
            op.alter_column(
                "strategy_signals",
                column,
                existing_type=postgresql.JSONB(),
                type_=sa.JSON(),
                nullable=True,
                postgresql_using=f"{column}::json",
            )
        op.execute(_POSTGRESQL_SHARED_CONFIG)
        op.execute(
            "UPDATE strategy_signals SET signal_metadata = NULL "
            "WHERE signal_metadata::jsonb = '{}'::jsonb"
        )
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)
        return
    with op.batch_alter_table("strategy_signals") as batch:
        batch.drop_constraint(FK_NAME, type_="foreignkey")
        for column in ("strategy_config", "signal_metadata"):
            batch.alter_column(column, existing_type=sa.JSON(), nullable=True)
        batch.add_column(sa.Column("signal_metadata_values", sa.LargeBinary(), nullable=True))
    op.execute(_SQLITE_SHARED_CONFIG)
    op.execute("UPDATE strategy_signals SET signal_metadata = NULL WHERE signal_metadata = '{}'")
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def _typed_metadata_to_json() -> None:
    """Typed metadata back to the JSON text ``json.dumps`` gives (what 0001 stored)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.id, r.signal_metadata_keys, s.signal_metadata_values "
            "FROM strategy_signals s JOIN strategy_runs r ON r.id = s.run_id "
            "WHERE s.signal_metadata_values IS NOT NULL"
        )
    ).all()
    updates = []
    for row_id, keys, values in rows:
        names = json.loads(keys) if isinstance(keys, str) else keys
        numbers = struct.unpack(f"<{len(names)}d", bytes(values))
        updates.append({"id": row_id, "text": json.dumps(dict(zip(names, numbers, strict=True)))})
    if updates:
        bind.execute(
            sa.text("UPDATE strategy_signals SET signal_metadata = :text WHERE id = :id"), updates
        )


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    _typed_metadata_to_json()
    for statement in POSTGRESQL_DROP if dialect == "postgresql" else SQLITE_DROP:
        op.execute(statement)
    op.drop_table("strategy_run_results")
    # back to a config and metadata on every row, and the FOREIGN KEY (signals of runs that
    # no longer exist cannot be kept under it: there are none, the triggers saw to that)
    run_config = f"CAST({_RUN_CONFIG} AS json)" if dialect == "postgresql" else _RUN_CONFIG
    op.execute(
        f"UPDATE strategy_signals SET strategy_config = COALESCE({run_config}, '{{}}') "
        "WHERE strategy_config IS NULL"
    )
    op.execute("UPDATE strategy_signals SET signal_metadata = '{}' WHERE signal_metadata IS NULL")
    if dialect == "postgresql":
        for column in ("strategy_config", "signal_metadata"):
            op.alter_column(
                "strategy_signals",
                column,
                existing_type=sa.JSON(),
                type_=postgresql.JSONB(),
                nullable=False,
                postgresql_using=f"{column}::jsonb",
            )
        op.create_foreign_key(
            FK_NAME, "strategy_signals", "strategy_runs", ["run_id"], ["id"], ondelete="CASCADE"
        )
        op.drop_column("strategy_signals", "signal_metadata_values")
        op.drop_column("strategy_runs", "signal_metadata_keys")
        op.drop_column("strategy_runs", "signal_config")
        return
    with op.batch_alter_table("strategy_runs") as batch:
        batch.drop_column("signal_metadata_keys")
        batch.drop_column("signal_config")
    with op.batch_alter_table("strategy_signals") as batch:
        batch.drop_column("signal_metadata_values")
        for column in ("strategy_config", "signal_metadata"):
            batch.alter_column(column, existing_type=sa.JSON(), nullable=False)
        batch.create_foreign_key(FK_NAME, "strategy_runs", ["run_id"], ["id"], ondelete="CASCADE")
