"""The imported orders' bulk paths on SQLite and PostgreSQL against the SQLAlchemy ones they
replaced: ExecutionRepository.add (driver-level: multi-row INSERTs / a text COPY) stores what
an executemany of Core inserts stored, a batch the database refuses stores nothing, and the
column-wise read (DBAPI cursor / COPY to CSV, no Row per row) gives the frames the query of
Rows gave: same columns, dtypes, order, NaN / NaT / None and empty texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import String, func, insert, select, type_coerce
from sqlalchemy.exc import IntegrityError

from database.repositories.executions import (
    FILL_COLUMNS,
    FILLS,
    ORDER_COLUMNS,
    ORDERS,
    ExecutionRepository,
)

T0 = pd.Timestamp("2024-03-04 09:30:00.123456", tz="UTC")
TIMES = {"decision_time", "arrival_time", "end_time", "fill_time"}
ORDER_NUMBERS = {"order_qty", "limit_price", "decision_price", "arrival_price", "bid", "ask",
                 "expected_return_bps"}  # fmt: skip
FILL_NUMBERS = {"fill_price", "fill_qty", "fee"}


def awkward_book(n: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n orders with every kind of value: NaN, NaT, None, empty and escaped texts, unicode,
    floats needing 17 digits, microsecond times, fills out of time order."""
    rng = np.random.default_rng(seed)
    texts = ["binance", "", None, "tab\there", "new\nline", "back\\slash", "ünï €", "\\N", "x,y"]
    arrival = T0 + pd.to_timedelta(rng.integers(0, 10**12, n), unit="us")
    orders = pd.DataFrame(
        {
            "order_id": [f"o-{k}" for k in range(n)],
            "strategy_id": rng.choice(["ema", "rsi", "mean rev"], n),
            "symbol": rng.choice(["BTC/USDT", "ETH/USDT", "AAPL"], n),
            "side": rng.choice(["buy", "sell"], n),
            "order_qty": rng.random(n) * 10 + 1e-9,
            "order_type": rng.choice(np.array(["limit", "market", None], dtype=object), n),
            "limit_price": np.where(rng.random(n) < 0.5, np.nan, 100 / 3 + rng.random(n)),
            "decision_time": pd.Series(arrival - pd.Timedelta(seconds=2)).where(
                rng.random(n) < 0.8
            ),
            "decision_price": rng.random(n) * 1e5 + 0.1,
            "arrival_time": arrival,
            "arrival_price": np.where(rng.random(n) < 0.3, np.nan, rng.random(n) + 0.5),
            "end_time": pd.Series(arrival + pd.Timedelta(minutes=3)).where(rng.random(n) < 0.4),
            "venue": [texts[k] for k in rng.integers(0, len(texts), n)],
            "algo": [texts[k] for k in rng.integers(0, len(texts), n)],
            "bid": np.where(rng.random(n) < 0.5, np.nan, 99.0),
            "ask": np.where(rng.random(n) < 0.5, np.nan, 99.5),
            "expected_return_bps": np.where(rng.random(n) < 0.5, np.nan, -rng.random(n) / 7),
            "source": "orders-csv",
        }
    )
    rows = rng.integers(0, n, 2 * n)
    fills = pd.DataFrame(
        {
            "order_id": orders["order_id"].to_numpy()[rows],
            "fill_time": arrival[rows] + pd.to_timedelta(rng.integers(1, 10**8, 2 * n), "us"),
            "fill_price": rng.random(2 * n) * 100 + 1,
            "fill_qty": rng.random(2 * n) + 0.01,
            "fee": rng.standard_normal(2 * n) / 3,
            "trade_id": [None if k % 3 else f"t-{k}" for k in range(2 * n)],
        }
    )
    return orders, fills


def old_add(session, account: str, orders: pd.DataFrame, fills: pd.DataFrame) -> None:
    """How ExecutionRepository.add stored a batch before: dict rows, Core executemany."""

    def values(frame, name):
        if name not in frame.columns:
            return [None] * len(frame)
        column = frame[name]
        if name in TIMES:
            times = pd.Series(pd.to_datetime(column, utc=True, format="ISO8601")).dt.as_unit("us")
            return [None if t is pd.NaT else t.to_pydatetime() for t in times.astype(object)]
        if name in ORDER_NUMBERS | FILL_NUMBERS:
            numbers = pd.to_numeric(column).to_numpy(dtype=float, na_value=np.nan)
            return [None if v != v else v for v in numbers.tolist()]
        return [None if v is None or (isinstance(v, float) and v != v) else v for v in column]

    def rows(columns):
        return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]

    order_rows = rows(
        {"account_id": [account] * len(orders)}
        | {name: values(orders, name) for name in ORDER_COLUMNS if name != "account_id"}
    )
    times = pd.to_datetime(fills["fill_time"], utc=True, format="ISO8601").to_numpy()
    fills = fills.iloc[np.argsort(times, kind="stable")]
    fill_rows = rows(
        {"account_id": [account] * len(fills)}
        | {name: values(fills, name) for name in FILL_COLUMNS if name != "seq"}
        | {"seq": fills.groupby("order_id", sort=False).cumcount().tolist()}
    )
    session.execute(insert(ORDERS), order_rows)
    if fill_rows:
        session.execute(insert(FILLS), fill_rows)


def old_frame(session, table, account, names, numbers, clock, order_ids=None) -> pd.DataFrame:
    """How the repository read an account's rows before: a query of SQLAlchemy Rows."""
    selected = [
        type_coerce(table.c[n], String).label(n) if n in TIMES else table.c[n] for n in names
    ]
    statement = select(*selected, table.c.id).where(table.c.account_id == account)
    if order_ids is None:
        rows = session.execute(statement.order_by(table.c[clock], table.c.id)).all()
    else:
        rows = session.execute(statement.where(table.c.order_id.in_(order_ids))).all()
    values = list(zip(*rows, strict=True)) if rows else [() for _ in (*names, "id")]
    frame = pd.DataFrame(
        {
            name: np.asarray(column, dtype=float) if name in numbers else list(column)
            for name, column in zip((*names, "id"), values, strict=True)
        }
    )
    for name in TIMES & set(names):
        frame[name] = pd.Series(
            pd.to_datetime(frame[name].to_numpy(), utc=True, format="ISO8601"),
            index=frame.index,
        )
    if order_ids is not None:
        frame = frame.sort_values([clock, "id"], kind="stable")
    frame = frame.drop(columns="id").reset_index(drop=True)
    if "seq" in frame:
        frame["seq"] = frame["seq"].astype(np.int64)
    return frame


def old_orders(session, account, order_ids=None):
    return old_frame(
        session, ORDERS, account, ORDER_COLUMNS, ORDER_NUMBERS, "arrival_time", order_ids
    )


def old_fills(session, account, order_ids=None):
    return old_frame(session, FILLS, account, FILL_COLUMNS, FILL_NUMBERS, "fill_time", order_ids)


def test_the_bulk_write_stores_what_the_executemany_stored(session):
    orders, fills = awkward_book(1_300)
    repo = ExecutionRepository(session, chunk_rows=500)  # orders in 3 chunks, fills in 6

    assert repo.add("fast", orders, fills) == (1_300, 2_600)
    old_add(session, "old", orders, fills)

    fast, old = old_orders(session, "fast"), old_orders(session, "old")
    assert (fast["account_id"] == "fast").all()
    assert (old["account_id"] == "old").all()
    pd.testing.assert_frame_equal(fast.drop(columns="account_id"), old.drop(columns="account_id"))
    pd.testing.assert_frame_equal(old_fills(session, "fast"), old_fills(session, "old"))
    stored = old_orders(session, "fast")
    assert set(stored["venue"].dropna()) == {"binance", "", "tab\there", "new\nline",
                                             "back\\slash", "ünï €", "\\N", "x,y"}  # fmt: skip
    assert stored["venue"].isna().sum() == (orders["venue"].isna()).sum()
    assert stored["end_time"].isna().sum() == orders["end_time"].isna().sum() > 0


def test_the_column_wise_read_gives_the_frames_the_rows_gave(session):
    orders, fills = awkward_book(1_200, seed=5)
    repo = ExecutionRepository(session)
    repo.add("acc", orders, fills)
    old_add(
        session, "legacy", orders.iloc[:50], fills[fills["order_id"].isin(orders["order_id"][:50])]
    )

    for account in ("acc", "legacy", "nobody"):
        pd.testing.assert_frame_equal(repo.orders(account), old_orders(session, account))
        pd.testing.assert_frame_equal(repo.fills(account), old_fills(session, account))
    for some in (["o-7", "o-1100", "o-3", "o-unknown"], [f"o-{k}" for k in range(0, 1200, 2)]):
        pd.testing.assert_frame_equal(
            repo.orders("acc", order_ids=some), old_orders(session, "acc", some)
        )
        pd.testing.assert_frame_equal(
            repo.fills("acc", order_ids=some), old_fills(session, "acc", some)
        )


@pytest.mark.parametrize(
    ("frame", "row", "column", "value"),
    [
        ("orders", 1_100, "order_qty", -1.0),  # in the last chunk: the first two went in
        ("orders", 3, "side", "hold"),
        ("orders", 700, "bid", np.inf),
        ("fills", 2_000, "fill_price", 0.0),
    ],
)
def test_a_batch_the_database_refuses_stores_nothing(session_factory, frame, row, column, value):
    orders, fills = awkward_book(1_200, seed=9)
    kept = awkward_book(10, seed=1)
    with session_factory() as session, session.begin():
        ExecutionRepository(session).add("acc", *kept)
    bad = {"orders": orders, "fills": fills}
    bad[frame].loc[row, column] = value
    errors = []
    for account, write in (("fast", None), ("old", old_add)):

        def store(session, account=account, write=write):
            if write is None:
                ExecutionRepository(session, chunk_rows=500).add(account, *bad.values())
            else:
                write(session, account, *bad.values())

        # the transaction rolls back as the error leaves it, then the error is caught
        with session_factory() as s, pytest.raises(IntegrityError) as caught, s.begin():
            store(s)
        errors.append(type(caught.value.orig).__name__)
    assert errors[0] == errors[1]  # the driver's same error class as the executemany's
    with session_factory() as session:
        counts = dict(
            session.execute(
                select(ORDERS.c.account_id, func.count()).group_by(ORDERS.c.account_id)
            ).all()
        )
        assert counts == {"acc": 10}
        assert session.scalar(select(func.count()).select_from(FILLS)) == 20
        pd.testing.assert_frame_equal(
            ExecutionRepository(session).orders("acc"), old_orders(session, "acc")
        )


def test_stored_times_parsed_by_arrow_equal_pandas_parse():
    """SQLite's stored time texts through Arrow's parse equal the former pandas parse
    (``_utc``): random instants (microseconds, before 1970, leap days), NULLs, and texts of
    another shape, which go to pandas; given as texts or as an Arrow array of them."""
    import numpy as np
    import pyarrow as pa

    from database.repositories._arrow_reads import _utc, stored_times

    rng = np.random.default_rng(21)
    micros = rng.integers(-(10**15), 4 * 10**15, 5_000)
    texts = pd.to_datetime(micros, unit="us").strftime("%Y-%m-%d %H:%M:%S.%f").tolist()
    texts[::7] = [None] * len(texts[::7])
    for case in (texts, [None, None], [], ["2024-02-29 12:00:00", None],
                 ["2024-02-29T12:00:00.000001", "2024-02-29 12:00:00.5"]):  # fmt: skip
        expected = _utc(np.array(case, dtype=object))
        for given in (case, pa.array(case, pa.string()), pa.array(case, pa.large_string())):
            got = stored_times(given)
            assert got.dtype == expected.dtype
            assert got.equals(expected)


def test_the_sort_check_gives_the_stable_sorts_order():
    """``_sort_order`` is None exactly when the stable sort by (time, id) keeps the rows as
    they are, else that sort's order: times sorted, with ties, NaT, shuffled."""
    import numpy as np

    from database.repositories.executions import _sort_order

    rng = np.random.default_rng(22)
    for case in range(40):
        n = int(rng.integers(0, 60))
        clock = np.sort(rng.integers(0, 8, n)) * 10**9
        clock[: int(rng.integers(0, 3))] = np.iinfo(np.int64).min  # NaT first
        ids = np.arange(1, n + 1)
        if case % 2:
            rows = rng.permutation(n)
            clock, ids = clock[rows], ids[rows]
        order = np.lexsort((ids, clock))
        got = _sort_order(clock, ids)
        if (order == np.arange(n)).all():
            assert got is None
        else:
            np.testing.assert_array_equal(got, order)
