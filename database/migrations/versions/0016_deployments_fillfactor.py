"""deployments: room on each page for a row's next versions (PostgreSQL fillfactor 40)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

The live runner updates each running deployment's row on every closed candle (its last bar,
bar index and time; its state when it changed): ~70 rows of ~1 KB a candle with 200
deployments. Packed full (fillfactor 100), a page has no room for a row's new version: about
a quarter of those updates were not HOT (a new version on another page, an entry in each of
the table's four indexes) and the table grew to ~15 MB for 200 rows within 900 candles. With
60 % of each page left free the new versions stay on their page (HOT, pruned there): the
runner's ``UPDATE deployments`` per candle took 0.36 ms of server time instead of 0.86 ms
(bench/runner.py's 200 deployments, EXPLAIN ANALYZE; p99 0.79 against 3.5 ms). A storage
parameter only, for the pages written from now on: every row stays as it is. SQLite has no
such parameter: nothing changes there. The downgrade resets it.

Frozen once released: plain SQL here, never classes from database.models.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 40


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE deployments SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deployments RESET (fillfactor)")
