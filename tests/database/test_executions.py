"""ExecutionRepository on SQLite and PostgreSQL: imported orders stored once with their fills,
read back column-wise as analytics.tca's frames, immutable at every level (repository, ORM,
raw SQL), and every constraint held by the database itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.exc import IntegrityError

from database.errors import DuplicateOrderError, TradeImmutableError
from database.execution_models import ExecutionFill, ExecutionOrder
from database.repositories.executions import (
    FILL_COLUMNS,
    FILLS,
    ORDER_COLUMNS,
    ORDERS,
    ExecutionRepository,
)

T0 = pd.Timestamp("2024-01-02 10:00:00", tz="UTC")


def orders_frame(*ids: str, **columns: list) -> pd.DataFrame:
    n = len(ids)
    frame = pd.DataFrame(
        {
            "order_id": list(ids),
            "strategy_id": ["ema"] * n,
            "symbol": ["BTC/USDT"] * n,
            "side": ["buy", "sell", "buy", "sell"][:n] if n <= 4 else ["buy"] * n,
            "order_qty": [2.0] * n,
            "order_type": ["limit"] * n,
            "limit_price": [100.0] + [np.nan] * (n - 1),
            "decision_time": [T0 + pd.Timedelta(minutes=10 * k) for k in range(n)],
            "decision_price": [99.5] * n,
            "arrival_time": [T0 + pd.Timedelta(minutes=10 * k, seconds=2) for k in range(n)],
            "arrival_price": [np.nan] * n,
            "end_time": [pd.NaT] * n,
            "venue": ["binance"] * n,
            "algo": [None] * n,
            "bid": [99.0] + [np.nan] * (n - 1),
            "ask": [99.2] + [np.nan] * (n - 1),
            "expected_return_bps": [12.5] + [np.nan] * (n - 1),
            "source": ["orders-csv"] * n,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def fills_frame(rows: list[tuple]) -> pd.DataFrame:
    """(order_id, seconds after T0, price, qty, fee, trade_id) per fill."""
    return pd.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "fill_time": [T0 + pd.Timedelta(seconds=r[1]) for r in rows],
            "fill_price": [r[2] for r in rows],
            "fill_qty": [r[3] for r in rows],
            "fee": [r[4] for r in rows],
            "trade_id": [r[5] for r in rows],
        }
    )


FILLS_OF_A_AND_B = [
    # o-a's second fill comes first in the frame: seq follows time, not the frame's order
    ("o-a", 30, 100.2, 1.5, 0.15, "t-a2"),
    ("o-a", 5, 100.0, 0.5, 0.05, "t-a1"),
    ("o-b", 605, 101.0, 2.0, -0.02, "t-b1"),
]


def test_orders_and_fills_round_trip_as_the_tca_frames(session):
    repo = ExecutionRepository(session)
    orders = orders_frame("o-b", "o-a", "o-c")
    # o-b arrives after o-a: the read comes in arrival order
    orders["arrival_time"] = [T0 + pd.Timedelta(seconds=s) for s in (602, 2, 1202)]
    orders["decision_time"] = [T0 + pd.Timedelta(seconds=s) for s in (600, 0, 1200)]
    orders["end_time"] = [pd.NaT, pd.NaT, T0 + pd.Timedelta(seconds=1500)]  # o-c: unfilled

    assert repo.add("acc", orders, fills_frame(FILLS_OF_A_AND_B)) == (3, 3)

    read = repo.orders("acc")
    assert list(read.columns) == list(ORDER_COLUMNS)
    assert read["order_id"].tolist() == ["o-a", "o-b", "o-c"]
    assert read["account_id"].tolist() == ["acc"] * 3
    expected = orders.set_index("order_id").loc[["o-a", "o-b", "o-c"]].reset_index()
    for name in ("decision_time", "arrival_time", "end_time"):
        assert read[name].dt.tz is not None
        pd.testing.assert_series_equal(
            read[name].astype("datetime64[ns, UTC]"),
            expected[name].astype("datetime64[ns, UTC]"),
            check_names=False,
        )
    for name in ("order_qty", "limit_price", "decision_price", "arrival_price", "bid", "ask",
                 "expected_return_bps"):  # fmt: skip
        np.testing.assert_array_equal(read[name].to_numpy(), expected[name].to_numpy(float))
    assert read["algo"].tolist() == [None, None, None]
    assert read["venue"].tolist() == ["binance"] * 3
    assert read["side"].tolist() == ["sell", "buy", "buy"]

    fills = repo.fills("acc")
    assert list(fills.columns) == list(FILL_COLUMNS)
    assert fills[["order_id", "seq", "trade_id"]].values.tolist() == [
        ["o-a", 0, "t-a1"],
        ["o-a", 1, "t-a2"],
        ["o-b", 0, "t-b1"],
    ]
    assert fills["fill_time"].tolist() == [T0 + pd.Timedelta(seconds=s) for s in (5, 30, 605)]
    assert fills["fill_price"].tolist() == [100.0, 100.2, 101.0]
    assert fills["fee"].tolist() == [0.05, 0.15, -0.02]
    assert repo.fills("acc", order_ids=["o-b"])["trade_id"].tolist() == ["t-b1"]
    assert repo.orders("acc", order_ids=["o-c", "o-a"])["order_id"].tolist() == ["o-a", "o-c"]
    assert repo.orders("other").empty
    assert list(repo.fills("other").columns) == list(FILL_COLUMNS)
    assert repo.accounts() == [("acc", 3, "orders-csv")]


def test_the_same_order_id_in_two_accounts_is_two_orders(session):
    repo = ExecutionRepository(session)
    repo.add("a", orders_frame("o-1"), fills_frame([("o-1", 5, 100.0, 1.0, 0.0, None)]))
    repo.add("b", orders_frame("o-1"), fills_frame([("o-1", 5, 100.0, 2.0, 0.0, None)]))

    assert repo.fills("a")["fill_qty"].tolist() == [1.0]
    assert repo.fills("b")["fill_qty"].tolist() == [2.0]
    assert [a for a, _, _ in repo.accounts()] == ["a", "b"]


def test_repeated_or_stored_order_ids_write_nothing(session):
    repo = ExecutionRepository(session)
    with pytest.raises(DuplicateOrderError, match=r"within the batch: 'o-1' \(account 'acc'\)"):
        repo.add("acc", orders_frame("o-1", "o-2", "o-1"), fills_frame([]))
    assert repo.orders("acc").empty

    repo.add("acc", orders_frame("o-1"), fills_frame([("o-1", 5, 100.0, 1.0, 0.0, None)]))
    with pytest.raises(DuplicateOrderError, match="already stored: 'o-1'") as caught:
        repo.add("acc", orders_frame("o-2", "o-1"), fills_frame([]))
    assert caught.value.order_ids == ("o-1",)
    assert repo.orders("acc")["order_id"].tolist() == ["o-1"]
    assert len(repo.fills("acc")) == 1


def test_fills_of_orders_not_in_the_batch_and_wrong_frames_are_refused(session):
    repo = ExecutionRepository(session)
    with pytest.raises(ValueError, match=r"fills of order\(s\) \['o-9'\] that are not"):
        repo.add("acc", orders_frame("o-1"), fills_frame([("o-9", 5, 100.0, 1.0, 0.0, None)]))
    with pytest.raises(ValueError, match=r"orders of account\(s\) \['x'\]"):
        repo.add("acc", orders_frame("o-1", account_id=["x"]), fills_frame([]))
    with pytest.raises(ValueError, match=r"orders: missing column\(s\) \['side'\]"):
        repo.add("acc", orders_frame("o-1").drop(columns="side"), fills_frame([]))
    with pytest.raises(ValueError, match="account=''"):
        repo.add("", orders_frame("o-1"), fills_frame([]))
    assert repo.orders("acc").empty


def test_many_orders_are_written_one_statement_per_chunk(session):
    repo = ExecutionRepository(session, chunk_rows=400)
    ids = [f"o-{k:04d}" for k in range(1000)]
    orders = orders_frame(*ids)
    fills = fills_frame([(i, 5, 100.0, 1.0, 0.01, None) for i in ids for _ in range(2)])
    inserts: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert repo.add("acc", orders, fills) == (1000, 2000)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    # 1000 orders in 3 chunks and 2000 fills in 5: on SQLite one multi-row INSERT each (up to
    # 500 rows a statement), on PostgreSQL a COPY each (no INSERT): never a statement per row
    assert len(inserts) == (8 if engine.dialect.name == "sqlite" else 0)
    assert all(s.count("?") >= 400 for s in inserts)
    assert len(repo.orders("acc")) == 1000
    assert repo.fills("acc").groupby("order_id")["seq"].apply(list).eq([[0, 1]] * 1000).all()


def test_the_repository_refuses_update_and_delete(session):
    repo = ExecutionRepository(session)
    with pytest.raises(TradeImmutableError):
        repo.update("o-1", order_qty=1.0)
    with pytest.raises(TradeImmutableError):
        repo.delete("o-1")


@pytest.fixture
def stored(session_factory) -> None:
    with session_factory.begin() as session:
        ExecutionRepository(session).add(
            "acc", orders_frame("o-1"), fills_frame([("o-1", 5, 100.0, 1.0, 0.1, "t-1")])
        )


@pytest.mark.parametrize(
    "statement",
    [
        update(ExecutionOrder).values(order_qty=1.0),
        delete(ExecutionFill),
        update(ORDERS).values(order_qty=1.0),
        delete(FILLS).where(FILLS.c.order_id == "o-1"),
    ],
    ids=["orm update", "orm delete", "core update", "core delete"],
)
def test_session_execute_refuses_changes(session_factory, stored, statement):
    with session_factory() as session, pytest.raises(TradeImmutableError):
        session.execute(statement)


def test_the_orm_refuses_changing_a_loaded_order_or_fill(session_factory, stored):
    with session_factory() as session:
        session.scalars(select(ExecutionOrder)).one().order_qty = 3.0
        with pytest.raises(TradeImmutableError):
            session.flush()
    with session_factory() as session:
        session.delete(session.scalars(select(ExecutionFill)).one())
        with pytest.raises(TradeImmutableError):
            session.flush()
    with session_factory.begin() as session:  # dirty without a net change: allowed
        loaded = session.scalars(select(ExecutionOrder)).one()
        loaded.order_qty = loaded.order_qty
    with session_factory() as session:
        assert ExecutionRepository(session).orders("acc")["order_qty"].tolist() == [2.0]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE execution_orders SET order_qty = 1",
        "DELETE FROM execution_orders",
        "UPDATE execution_fills SET fill_price = 1",
        "DELETE FROM execution_fills",
    ],
)
def test_raw_sql_cannot_change_stored_orders_or_fills(engine, stored, sql):
    with pytest.raises(IntegrityError, match="immutable"), engine.begin() as connection:
        connection.execute(text(sql))
    if engine.dialect.name == "postgresql":  # SQLite has no TRUNCATE
        with pytest.raises(IntegrityError, match="immutable"), engine.begin() as connection:
            connection.execute(text("TRUNCATE execution_orders, execution_fills"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM execution_fills")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM execution_orders")).scalar() == 1


GOOD_ORDER = {
    "account_id": "acc", "order_id": "o-x", "source": "orders-csv", "strategy_id": "s",
    "symbol": "BTC", "side": "buy", "order_qty": 1.0, "arrival_time": "2024-01-02 10:00:00",
    "decision_time": "2024-01-02 09:59:00", "end_time": None, "bid": 99.0, "ask": 100.0,
    "limit_price": None, "expected_return_bps": None,
}  # fmt: skip
BAD_ORDERS = {
    "side hold": {"side": "hold"},
    "zero quantity": {"order_qty": 0.0},
    "infinite quantity": {"order_qty": math.inf},
    "negative limit": {"limit_price": -1.0},
    "ask below bid": {"ask": 98.0},
    "arrival before decision": {"decision_time": "2024-01-02 10:00:01"},
    "end before arrival": {"end_time": "2024-01-02 09:00:00"},
    "empty order id": {"order_id": ""},
    "infinite expected return": {"expected_return_bps": math.inf},
}
INSERT_ORDER = text(
    "INSERT INTO execution_orders (account_id, order_id, source, strategy_id, symbol, side, "
    "order_qty, arrival_time, decision_time, end_time, bid, ask, limit_price, "
    "expected_return_bps) VALUES (:account_id, :order_id, :source, :strategy_id, :symbol, "
    ":side, :order_qty, :arrival_time, :decision_time, :end_time, :bid, :ask, :limit_price, "
    ":expected_return_bps)"
)
INSERT_FILL = text(
    "INSERT INTO execution_fills (account_id, order_id, seq, fill_time, fill_price, fill_qty, "
    "fee) VALUES (:account_id, :order_id, :seq, '2024-01-02 10:00:05', :price, :qty, :fee)"
)


def test_raw_sql_cannot_store_a_corrupt_order_or_fill(engine):
    with engine.begin() as connection:
        connection.execute(INSERT_ORDER, GOOD_ORDER)  # the baseline row is accepted
    accepted = []
    for name, change in BAD_ORDERS.items():
        try:
            with engine.begin() as connection:
                connection.execute(INSERT_ORDER, {**GOOD_ORDER, "order_id": f"o-{name}", **change})
        except IntegrityError:
            continue
        accepted.append(name)
    assert accepted == []

    good_fill = {"account_id": "acc", "order_id": "o-x", "seq": 0, "price": 1.0, "qty": 1.0,
                 "fee": 0.0}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(INSERT_FILL, good_fill)
    bad_fills = {
        "unknown order": {"order_id": "o-none"},
        "other account's order": {"account_id": "other"},
        "same seq twice": {},
        "zero price": {"seq": 1, "price": 0.0},
        "negative quantity": {"seq": 1, "qty": -1.0},
        "infinite fee": {"seq": 1, "fee": math.inf},
        "negative seq": {"seq": -1},
    }
    for name, change in bad_fills.items():
        try:
            with engine.begin() as connection:
                connection.execute(INSERT_FILL, {**good_fill, **change})
        except IntegrityError:
            continue
        accepted.append(name)
    assert accepted == []
