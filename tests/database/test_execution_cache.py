"""The imported orders' columnar file cache on SQLite and PostgreSQL: a cached read equals the
database's, a file whose counts match is the answer (only newer rows are read after it), a
damaged file is ignored and rewritten."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
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
