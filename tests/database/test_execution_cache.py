"""The imported orders' columnar file cache on SQLite and PostgreSQL: a cached read equals the
database's, a file whose counts match is the answer (only newer rows are read after it), a
damaged file is ignored and rewritten."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from sqlalchemy import select

from database.models import DatabaseIdentity
from database.repositories._execution_cache import execution_cache_for
from database.repositories.executions import ExecutionRepository
from tests.database.test_execution_io import awkward_book


def store(session_factory, orders, fills) -> None:
    with session_factory() as session, session.begin():
        ExecutionRepository(session).add("acc", orders, fills)


def reads(session_factory) -> tuple[pd.DataFrame, ...]:
    """(orders, fills) through the cache, then straight from the database."""
    with session_factory() as session:
        repo = ExecutionRepository(session)
        return (repo.orders("acc", cached=True), repo.fills("acc", cached=True),
                repo.orders("acc"), repo.fills("acc"))  # fmt: skip


def cache_file(session_factory, table: str):
    with session_factory() as session:
        token = session.scalar(select(DatabaseIdentity.token))
        cache = execution_cache_for(session.connection().engine.url)
    return cache.path(table, "acc", token)


def test_cached_reads_equal_the_database_and_grow_with_it(session_factory):
    orders, fills = awkward_book(900, seed=11)
    first = orders["order_id"].isin(orders["order_id"][:600])
    store(session_factory, orders[first], fills[fills["order_id"].isin(orders["order_id"][first])])

    cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
    pd.testing.assert_frame_equal(cached_orders, db_orders)
    pd.testing.assert_frame_equal(cached_fills, db_fills)
    path = cache_file(session_factory, "execution_orders")
    assert feather.read_table(path).num_rows == 600

    # a file whose counts match is the answer: a value changed in it comes back
    table = feather.read_table(path)
    k = table.schema.get_field_index("order_qty")
    changed = pa.array([123456.0, *table.column(k).to_pylist()[1:]])
    feather.write_feather(table.set_column(k, "order_qty", changed), path)
    assert 123456.0 in reads(session_factory)[0]["order_qty"].tolist()

    # newer rows: read from the database after the file's rows (the changed value stays)
    store(
        session_factory, orders[~first], fills[~fills["order_id"].isin(orders["order_id"][first])]
    )
    cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
    assert len(cached_orders) == len(db_orders) == 900
    assert 123456.0 in cached_orders["order_qty"].tolist()
    pd.testing.assert_frame_equal(cached_fills, db_fills)
    assert feather.read_table(path).num_rows == 900
    restored = cached_orders["order_qty"].where(cached_orders["order_qty"] != 123456.0)
    assert restored.isna().sum() == 1
    pd.testing.assert_frame_equal(
        cached_orders.drop(columns="order_qty"), db_orders.drop(columns="order_qty")
    )


def test_a_damaged_file_is_ignored_and_rewritten(session_factory):
    store(session_factory, *awkward_book(300, seed=12))
    reads(session_factory)
    for table in ("execution_orders", "execution_fills"):
        cache_file(session_factory, table).write_bytes(b"not an arrow file")

    cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
    pd.testing.assert_frame_equal(cached_orders, db_orders)
    pd.testing.assert_frame_equal(cached_fills, db_fills)
    assert feather.read_table(cache_file(session_factory, "execution_fills")).num_rows == 600


def test_on_sqlite_a_file_noting_the_tables_last_id_is_current_without_a_count(session_factory):
    """SQLite serialises writes: while the table's last row id is the one the file noted
    before its rows were read, no row can have come since, and no count is asked; a row of
    another account (a higher last id) or of this one sends the read back to the counts."""
    from sqlalchemy import event

    with session_factory() as session:
        engine = session.connection().engine
    orders, fills = awkward_book(300, seed=12)
    half = orders["order_id"].isin(orders["order_id"][:200])
    store(session_factory, orders[half], fills[fills["order_id"].isin(orders["order_id"][half])])
    reads(session_factory)  # writes the files
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
        counted = [s for s in statements if "count(" in s]
        if engine.dialect.name == "sqlite":
            assert counted == [s for s in counted if "execution" not in s]  # none of ours
        else:
            assert len([s for s in counted if "execution_" in s]) == 2  # orders and fills
        pd.testing.assert_frame_equal(cached_orders, db_orders)

        other = orders[~half].assign(account_id="other")
        with session_factory() as session, session.begin():  # another account's rows
            ExecutionRepository(session).add(
                "other", other, fills[fills["order_id"].isin(other["order_id"])]
            )
        statements.clear()
        cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
        assert any("count(" in s and "execution_orders" in s for s in statements)
        pd.testing.assert_frame_equal(cached_orders, db_orders)
        pd.testing.assert_frame_equal(cached_fills, db_fills)
        assert len(cached_orders) == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)


# --- the file an import writes ---------------------------------------------------------------


def sorted_file(path) -> pa.Table:
    """A cache file's table in row-id order (a read keeps the database's order)."""
    return feather.read_table(path).sort_by("id")


def assert_same_file(written, read) -> None:
    """Two cache files hold the same columns (names, types, values bit for bit: NaN where
    NaN, 0.0 not -0.0) and the same metadata."""
    assert written.schema.metadata == read.schema.metadata
    assert written.schema.names == read.schema.names
    for name in read.schema.names:
        a, b = written.column(name).combine_chunks(), read.column(name).combine_chunks()
        assert a.type == b.type, name
        if pa.types.is_floating(a.type):
            x, y = a.to_numpy(), b.to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            known = ~np.isnan(x)
            assert np.array_equal(x[known].view(np.int64), y[known].view(np.int64)), name
        else:
            assert a.equals(b), name


def files(session_factory) -> dict[str, pa.Table]:
    return {t: sorted_file(cache_file(session_factory, t)) for t in TABLES}


TABLES = ("execution_orders", "execution_fills")


def test_an_import_writes_the_file_a_read_writes(session_factory):
    """After ``add`` commits, the account's files are there before any read, equal column
    for column to the ones a read from the database writes; the reads through them equal
    the database's."""
    orders, fills = awkward_book(700, seed=21)
    store(session_factory, orders, fills)
    written = files(session_factory)
    cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
    pd.testing.assert_frame_equal(cached_orders, db_orders)
    pd.testing.assert_frame_equal(cached_fills, db_fills)
    assert len(cached_orders) == 700

    for table in TABLES:  # the files as a read from the database writes them
        cache_file(session_factory, table).unlink()
    reads(session_factory)
    for table, read in files(session_factory).items():
        assert read.num_rows == written[table].num_rows > 0
        assert_same_file(written[table], read)


def test_a_second_import_extends_the_file(session_factory):
    orders, fills = awkward_book(600, seed=22)
    first = orders["order_id"].isin(orders["order_id"][:250])
    store(session_factory, orders[first], fills[fills["order_id"].isin(orders["order_id"][first])])
    reads(session_factory)
    store(
        session_factory, orders[~first], fills[~fills["order_id"].isin(orders["order_id"][first])]
    )
    written = files(session_factory)
    assert written["execution_orders"].num_rows == 600
    for table in TABLES:
        cache_file(session_factory, table).unlink()
    cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
    for table, read in files(session_factory).items():
        assert_same_file(written[table], read)
    pd.testing.assert_frame_equal(cached_orders, db_orders)
    pd.testing.assert_frame_equal(cached_fills, db_fills)


def test_an_import_writes_nothing_it_cannot_prove(session_factory):
    """No file when the account had rows the cache does not hold, when a stored value may
    come back otherwise (-0.0 is 0.0 on SQLite) or when the transaction rolls back; the
    reads stay the database's."""
    orders, fills = awkward_book(300, seed=23)
    half = orders["order_id"].isin(orders["order_id"][:100])
    store(session_factory, orders[half], fills[fills["order_id"].isin(orders["order_id"][half])])
    for table in TABLES:  # rows of the account no file holds
        cache_file(session_factory, table).unlink()
    rest = orders[~half].copy()
    rest_fills = fills[~fills["order_id"].isin(orders["order_id"][half])]
    some = rest_fills["order_id"].isin(rest["order_id"][:100])
    store(session_factory, rest[:100], rest_fills[some])
    assert not any(cache_file(session_factory, t).exists() for t in TABLES)

    reads(session_factory)  # the files from the database: 200 orders
    last = rest[100:].copy()
    last["expected_return_bps"] = -0.0
    store(session_factory, last, rest_fills[rest_fills["order_id"].isin(last["order_id"])])
    assert sorted_file(cache_file(session_factory, "execution_orders")).num_rows == 200
    cached_orders, _, db_orders, _ = reads(session_factory)
    pd.testing.assert_frame_equal(cached_orders, db_orders)
    assert len(cached_orders) == 300

    more, more_fills = awkward_book(5, seed=24)
    more["order_id"] = "new-" + more["order_id"]
    more_fills["order_id"] = "new-" + more_fills["order_id"]

    def rolled_back() -> None:
        with session_factory() as session, session.begin():
            ExecutionRepository(session).add("acc", more, more_fills)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):  # rolled back: the file stays as it was
        rolled_back()
    assert sorted_file(cache_file(session_factory, "execution_orders")).num_rows == 300
    cached_orders, _, db_orders, _ = reads(session_factory)
    pd.testing.assert_frame_equal(cached_orders, db_orders)


def test_rows_committed_before_the_import_writes_its_file_write_nothing(session_factory):
    """Another writer's rows of the account, committed between the import's commit and its
    ids read back: the ids are not the batch's alone, no file is written, the reads are the
    database's."""
    from sqlalchemy import event

    orders, fills = awkward_book(200, seed=25)
    mine = orders["order_id"].isin(orders["order_id"][:150])
    theirs = orders[~mine]

    def other_writer(_session) -> None:
        with session_factory() as other, other.begin():
            ExecutionRepository(other).add(
                "acc", theirs, fills[fills["order_id"].isin(theirs["order_id"])]
            )

    with session_factory() as session:
        event.listen(session, "after_commit", other_writer)  # heard before the import's
        with session.begin():
            ExecutionRepository(session).add(
                "acc", orders[mine], fills[fills["order_id"].isin(orders["order_id"][mine])]
            )
    assert not any(cache_file(session_factory, t).exists() for t in TABLES)
    cached_orders, cached_fills, db_orders, db_fills = reads(session_factory)
    assert len(db_orders) == 200
    pd.testing.assert_frame_equal(cached_orders, db_orders)
    pd.testing.assert_frame_equal(cached_fills, db_fills)
