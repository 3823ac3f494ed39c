"""TCAService.inputs and the decision dataset on SQLite and PostgreSQL, read column-wise: the
orders, fills and bars equal what the Row-by-Row read and the per-symbol fill lookup gave,
and so does the dataset built from them."""

from __future__ import annotations

import pandas as pd

from analytics.dataset import decision_dataset
from database.repositories.candles import CandleRepository
from database.repositories.executions import ExecutionRepository
from services.execution_ml import ExecutionMLService
from services.tca import TCAService, _fill_times_by_lookup
from tests.analytics.execution_book import impact_book
from tests.database.test_execution_io import awkward_book, old_fills, old_orders


def old_candles(sessions, orders, fills) -> dict[str, pd.DataFrame]:
    """TCAService's bars as it read them before: the fills of each symbol's orders by isin."""
    return TCAService(sessions)._candles(orders, fills, _fill_times_by_lookup(fills))


def test_inputs_and_dataset_equal_the_row_by_row_read(session_factory, tmp_path):
    book = impact_book(orders=3_000, symbols=3, bars=4_000, a=2.0, b=0.8, noise_bps=3.0)
    odd, odd_fills = awkward_book(40)  # NaN, NaT, None and odd texts; symbols without bars
    with session_factory() as session, session.begin():
        repo = ExecutionRepository(session)
        repo.add("synthetic", book.orders.assign(source="bench"), book.fills)
        repo.add("odd", odd, odd_fills)
        candles = CandleRepository(session)
        for symbol, frame in book.candles.items():
            candles.upsert(symbol, "1m", frame)
        candles.upsert("BTC/USDT", "1m", book.candles["S0"])

    for account in ("synthetic", "odd"):
        inputs = TCAService(session_factory).inputs(account)
        with session_factory() as session:
            orders, fills = old_orders(session, account), old_fills(session, account)
            fills = fills[["order_id", "fill_time", "fill_price", "fill_qty", "fee"]]
            bars = old_candles(session_factory, orders, fills)
        pd.testing.assert_frame_equal(inputs.orders, orders)
        pd.testing.assert_frame_equal(inputs.fills, fills)
        assert list(inputs.candles) == list(bars)
        for symbol, frame in bars.items():
            pd.testing.assert_frame_equal(inputs.candles[symbol], frame)

    service = ExecutionMLService(session_factory, tmp_path)
    frame, inputs = service.dataset("synthetic")
    assert len(frame) == 3_000
    with session_factory() as session:
        orders = old_orders(session, "synthetic")
        fills = old_fills(session, "synthetic")[list(inputs.fills.columns)]
        bars = service._with_warmup(old_candles(session_factory, orders, fills))
    pd.testing.assert_frame_equal(frame, decision_dataset(orders, fills, bars))
