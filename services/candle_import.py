"""Import a candle frame of any size, all or nothing, never holding the write lock for long.

>>> import_candles(engine, "BTCUSDT", "1m", frame)  # doctest: +SKIP
1000000

A frame of up to ``chunk_rows`` bars is one ``CandleRepository.upsert`` transaction, as before;
so is, on PostgreSQL, new history (no stored bar in the frame's span; abandoned imports are
discarded first, as in step 2): its binary COPY goes straight into candles, one transaction no
longer than the merge below would be, and under MVCC it blocks no reader nor any writer of
other bars. Any other larger frame is staged:

1. the whole frame is checked first (a defect raises ValueError: nothing is written);
2. abandoned imports are discarded and the import registers itself (``candle_imports``);
3. each chunk of ``chunk_rows`` bars is its own short transaction into the import's staging
   table (SQLite: a TEMP table, so staging takes no lock on the database file at all);
4. one transaction copies the staged bars into candles and replaces the series' version;
5. the staging table is dropped.

The guarantee: a reader sees the series before the import or after it, never a part of it:
staged bars are in another table until step 4 commits, and step 4 is one transaction. The
write lock (SQLite) is held only in step 4, for the database's own copy of the staged rows (no
Python per bar), and briefly for the registration (step 2): measured in
docs/architecture.md ("Imports and the write lock"). A failure or a kill anywhere leaves
candles as they were; the staged rows of a dead import go with its connection (SQLite) or are
deleted by the next import (PostgreSQL).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from database.repositories import CandleRepository
from database.repositories import candle_staging as staging

STAGE_CHUNK_ROWS = 100_000
"""Bars per staging transaction; a frame of at most this many bars is written directly."""


def import_candles(
    engine: Engine,
    symbol: str,
    timeframe: str,
    frame: pd.DataFrame,
    *,
    chunk_rows: int = STAGE_CHUNK_ROWS,
) -> int:
    """Store the frame's bars (insert or update) as one visible change; returns the bars given."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r} is invalid: expected an integer >= 1")
    # one connection throughout: on PostgreSQL its backend is the import's owner
    with engine.connect() as connection:
        with Session(bind=connection) as session, session.begin():
            repository = CandleRepository(session)
            ts, columns = repository.checked_arrays(frame)  # ValueError before any write
            if len(ts) <= chunk_rows:
                return repository.upsert(symbol, timeframe, frame)
        with connection.begin():
            for abandoned in staging.abandoned_imports(connection):
                staging.discard(connection, abandoned)
            for orphan in staging.orphaned_staging(connection):
                staging.drop_staging(connection, orphan)
        if connection.dialect.name == "postgresql":
            with Session(bind=connection) as session, session.begin():
                first, last = int(ts[0]), int(ts[-1])
                if not staging.overlaps(session.connection(), symbol, timeframe, first, last):
                    return CandleRepository(session).upsert(symbol, timeframe, frame)
        with connection.begin():
            import_id = staging.start_import(connection, symbol, timeframe)
        try:
            for start in range(0, len(ts), chunk_rows):
                part = slice(start, start + chunk_rows)
                with connection.begin():
                    staging.stage(
                        connection, import_id, ts[part], {c: v[part] for c, v in columns.items()}
                    )
            merging = connection.execution_options(sqlite_begin="IMMEDIATE")
            with Session(bind=merging) as session, session.begin():
                CandleRepository(session).merge_staged(symbol, timeframe, import_id, ts, columns)
        except BaseException:
            if connection.in_transaction():
                connection.rollback()
            with connection.begin():
                staging.discard(connection, import_id)
            raise
        staging.drop_merged(connection, import_id)  # merged and committed: the staged copy goes
    return len(ts)
