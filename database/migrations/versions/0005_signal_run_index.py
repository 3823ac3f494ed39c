"""strategy_signals: the series index only for signals without a run; the run check in one pass.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Storing a run of 72,000 signals spent about half its database time on two things:

- ``ix_strategy_signals_strategy_name_symbol_timeframe_timestamp`` put a run's signals among
  the entries of every earlier run of the same series at the same times, so one run's bulk
  write touched nearly every leaf page of that index, more with every run stored. Nothing in
  the product finds a run's signals by series: they are read by run (``run_id``: the signal
  queries of a run, retention, a run's delete). The index keeps its name and columns but
  holds only the signals without a run (``WHERE run_id IS NULL``, a partial index on both
  databases): those are written a few at a time and are found by series and time. A query by
  series over runs' signals scans the table instead (docs/architecture.md, the run store).
- PostgreSQL's run check (0003, a statement trigger) read the statement's new rows twice: a
  DISTINCT of their run ids, then an anti-join of every row against ``strategy_runs``. It now
  reads them once (the distinct run ids), then key-share locks and counts those runs; only
  when one is missing does it look for which, for the message. Same rule, same error.

Only an index and a function change: every row stays as it is, and the SQLite triggers of
0003 stay (no table rebuild). Frozen once released: plain SQL here, never database.models.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIES = "ix_strategy_signals_strategy_name_symbol_timeframe_timestamp"
SERIES_COLUMNS = "strategy_name, symbol, timeframe, timestamp"

CHECK_RUNS = """CREATE OR REPLACE FUNCTION strategy_signals_check_runs() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        named bigint[];
        present bigint;
        missing bigint;
    BEGIN
        -- what a FOREIGN KEY does per row, once per statement: one pass over the new rows
        -- for their runs, then key-share lock those runs (a concurrent delete waits for this
        -- transaction) and count them
        SELECT array_agg(DISTINCT run_id) INTO named FROM added WHERE run_id IS NOT NULL;
        IF named IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT count(*) INTO present
            FROM (SELECT 1 FROM strategy_runs WHERE id = ANY (named) FOR KEY SHARE) AS locked;
        IF present < cardinality(named) THEN
            SELECT run INTO missing FROM unnest(named) AS run
                WHERE NOT EXISTS (SELECT 1 FROM strategy_runs r WHERE r.id = run)
                ORDER BY run LIMIT 1;
            RAISE EXCEPTION 'strategy_signals.run_id % names no strategy run', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END
    $$"""

CHECK_RUNS_0003 = """CREATE OR REPLACE FUNCTION strategy_signals_check_runs() RETURNS trigger
    LANGUAGE plpgsql AS $$
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
    $$"""


def upgrade() -> None:
    op.execute(f"DROP INDEX {SERIES}")
    op.execute(
        f"CREATE INDEX {SERIES} ON strategy_signals ({SERIES_COLUMNS}) WHERE run_id IS NULL"
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(CHECK_RUNS)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CHECK_RUNS_0003)
    op.execute(f"DROP INDEX {SERIES}")
    op.execute(f"CREATE INDEX {SERIES} ON strategy_signals ({SERIES_COLUMNS})")
