"""Transaction-cost analysis (analytics/tca, docs/tca.md): every metric on orders worked by
hand (the expected numbers are written out, not computed by the code under test), signs for a
buy and a sell, Perold's parts adding up to the total, impact adding up to the slippage, n/a
cases with their reasons, every bad input named by row and column, aggregates against a hand
computation, decision quality per round trip; and the vectorised path equal to a plain
per-order pandas implementation (``naive_order_tca``, below; bench/tca.py times it) on a random
frame of a few thousand orders."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.round_trips import round_trips
from analytics.tca import (
    TCAInputError,
    TCASettings,
    aggregate_tca,
    decision_quality,
    fill_markouts,
    order_tca,
    transaction_costs,
)
from analytics.tca._kernels import time_order, value_order

T0 = pd.Timestamp("2024-01-02 10:00", tz="UTC")
REL = 1e-9


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def minute_bars(n: int = 120, volume: float = 10.0) -> pd.DataFrame:
    """Minute m (from 10:00): open 99.92 + 0.1m, high 100.08 + 0.1m, low 99.90 + 0.1m, close
    100.02 + 0.1m, so the typical price (h + l + c) / 3 is 100 + 0.1m; volume 10, 30 at m2."""
    m = np.arange(n)
    vol = np.full(n, volume)
    if n > 2:
        vol[2] = 3 * volume
    return pd.DataFrame(
        {"open": 99.92 + 0.1 * m, "high": 100.08 + 0.1 * m, "low": 99.90 + 0.1 * m,
         "close": 100.02 + 0.1 * m, "volume": vol},
        index=pd.date_range(T0, periods=n, freq="1min"),
    )  # fmt: skip


def order(order_id: str, **fields) -> dict:
    row = {
        "order_id": order_id, "account_id": "acc", "strategy_id": "s1", "symbol": "X",
        "side": "buy", "order_qty": 10.0, "order_type": "market", "limit_price": np.nan,
        "decision_time": T0, "decision_price": 100.0, "arrival_time": T0, "venue": "V1",
        "algo": "twap", "arrival_price": np.nan, "end_time": pd.NaT, "bid": np.nan,
        "ask": np.nan, "expected_return_bps": np.nan,
    }  # fmt: skip
    row.update(fields)
    return row


def fill(order_id: str, time: pd.Timestamp, price: float, qty: float, fee: float = 0.0) -> dict:
    return {"order_id": order_id, "fill_time": time, "fill_price": price, "fill_qty": qty,
            "fee": fee}  # fmt: skip


def frames(orders: list[dict], fills: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    fill_frame = pd.DataFrame(fills, columns=["order_id", "fill_time", "fill_price", "fill_qty",
                                              "fee"])  # fmt: skip
    return pd.DataFrame(orders), fill_frame


# -- hand-worked orders ----------------------------------------------------------------------

# A: buy 10, limit 101, decided 09:59:50 at 100.00, arrived 10:00:30 (no arrival price: the
# open of the 10:01 bar, 100.02), quote 100.00/100.10, filled 4 @ 100.15 (10:01:10) and
# 4 @ 100.25 (10:02:20), fees 0.04 each, cancelled 10:04:00 with 2 left.
ORDER_A = order(
    "A", order_type="limit", limit_price=101.0, decision_time=at(-10 / 60), arrival_time=at(0.5),
    end_time=at(4), bid=100.00, ask=100.10,
)  # fmt: skip
FILLS_A = [fill("A", at(1 + 10 / 60), 100.15, 4, 0.04), fill("A", at(2 + 20 / 60), 100.25, 4, 0.04)]
# B: sell 10 decided and arrived 10:10:00, decision price 101.00, arrival price given 100.98,
# filled 10 @ 100.90 at 10:11:00, fee 0.10.
ORDER_B = order(
    "B", side="sell", decision_time=at(10), decision_price=101.0, arrival_time=at(10),
    arrival_price=100.98, venue="V2", algo="pov",
)  # fmt: skip
FILLS_B = [fill("B", at(11), 100.90, 10, 0.10)]


@pytest.fixture
def hand() -> pd.DataFrame:
    orders, fills = frames([ORDER_A, ORDER_B], FILLS_A + FILLS_B)
    return order_tca(orders, fills, {"X": minute_bars()}).set_index("order_id")


def test_a_buy_worked_by_hand(hand):
    a = hand.loc["A"]
    assert a.filled_qty == 8.0
    assert a.fill_rate == pytest.approx(0.8)
    assert a.avg_fill_price == pytest.approx(100.20, rel=REL)  # (4 x 100.15 + 4 x 100.25) / 8
    assert a.fees == pytest.approx(0.08, rel=REL)
    assert a.arrival_price == pytest.approx(100.02, rel=REL)  # open of the 10:01 bar
    assert a.arrival_price_source == "bar"
    assert a.latency_s == 40.0
    assert a.execution_time_s == 110.0  # 10:00:30 -> 10:02:20
    assert a.arrival_slippage_bps == pytest.approx(0.18 / 100.02 * 1e4, rel=REL)  # 17.9964
    # Perold on the paper portfolio 10 x 100.00 = 1000: delay 8 x 0.02 = 0.16, trading
    # 8 x (100.20 - 100.02) = 1.44, opportunity 2 x (100.42 - 100.00) = 0.84 (the close of the
    # 10:04 bar, which holds the end), fees 0.08: 25.2 bps in all
    assert a.end_price == pytest.approx(100.42, rel=REL)
    assert a.is_delay_bps == pytest.approx(1.6, rel=REL)
    assert a.is_trading_bps == pytest.approx(14.4, rel=REL)
    assert a.is_opportunity_bps == pytest.approx(8.4, rel=REL)
    assert a.is_fees_bps == pytest.approx(0.8, rel=REL)
    assert a.is_bps == pytest.approx(25.2, rel=REL)
    # bars opening in [10:00:30, 10:02:20]: 10:01 (typical 100.1, volume 10), 10:02 (100.2, 30)
    assert a.vwap == pytest.approx(4007.0 / 40.0, rel=REL)  # 100.175
    assert a.twap == pytest.approx(100.15, rel=REL)
    assert a.vs_vwap_bps == pytest.approx(0.025 / 100.175 * 1e4, rel=REL)  # 2.4956
    assert a.vs_twap_bps == pytest.approx(0.05 / 100.15 * 1e4, rel=REL)  # 4.9925
    # markouts: closes of the bars holding each fill time + h; equal quantities, plain mean
    m1 = (0.07 / 100.15 + 0.07 / 100.25) / 2 * 1e4  # 100.22 at 10:02:10, 100.32 at 10:03:20
    m5 = (0.47 / 100.15 + 0.47 / 100.25) / 2 * 1e4  # 100.62 at 10:06:10, 100.72 at 10:07:20
    m60 = (5.97 / 100.15 + 5.97 / 100.25) / 2 * 1e4  # 106.12 at 11:01:10, 106.22 at 11:02:20
    assert a.markout_1m_bps == pytest.approx(m1, rel=REL)
    assert a.markout_5m_bps == pytest.approx(m5, rel=REL)
    assert a.markout_60m_bps == pytest.approx(m60, rel=REL)
    # impact at 5 minutes: the close holding 10:07:20 is 100.72
    assert a.permanent_impact_bps == pytest.approx(0.70 / 100.02 * 1e4, rel=REL)  # 69.986
    assert a.temporary_impact_bps == pytest.approx(-0.52 / 100.02 * 1e4, rel=REL)  # -51.99
    assert a.price_improvement_bps == pytest.approx(0.80 / 101.0 * 1e4, rel=REL)  # 79.208
    assert a.spread_cost_bps == pytest.approx(0.15 / 100.05 * 1e4, rel=REL)  # mid 100.05
    assert a.spread_capture_pct == pytest.approx(-100.0, rel=REL)  # (100.10 - 100.20) / 0.10
    # score: 100 x 0.8 x (0.5 - 17.9964 / 50)
    assert a.quality_score == pytest.approx(80 * (0.5 - 0.18 / 100.02 * 1e4 / 50), rel=REL)
    assert a.reason == ""


def test_a_sell_worked_by_hand_costs_are_positive_when_the_sell_gets_less(hand):
    b = hand.loc["B"]
    assert b.arrival_price_source == "order"
    assert b.arrival_slippage_bps == pytest.approx(0.08 / 100.98 * 1e4, rel=REL)  # 7.9223
    # paper 10 x 101 = 1010: delay 10 x 0.02 = 0.2, trading 10 x 0.08 = 0.8, fees 0.1
    assert b.is_delay_bps == pytest.approx(0.2 / 1010 * 1e4, rel=REL)
    assert b.is_trading_bps == pytest.approx(0.8 / 1010 * 1e4, rel=REL)
    assert b.is_opportunity_bps == 0.0
    assert b.is_fees_bps == pytest.approx(0.1 / 1010 * 1e4, rel=REL)
    assert b.is_bps == pytest.approx(1.1 / 1010 * 1e4, rel=REL)  # 10.891
    assert math.isnan(b.end_price)  # filled in full: no bar needed at its end
    # bars 10:10 and 10:11: typical 101.0 and 101.1, volume 10 each
    assert b.vwap == pytest.approx(101.05, rel=REL)
    assert b.vs_vwap_bps == pytest.approx(0.15 / 101.05 * 1e4, rel=REL)
    # the price rose after the sale (10:12 close 101.22): an adverse, negative markout
    assert b.markout_1m_bps == pytest.approx(-0.32 / 100.90 * 1e4, rel=REL)  # -31.714
    # 10:16 close 101.62: the price rose from the arrival, against a sell: permanent < 0
    assert b.permanent_impact_bps == pytest.approx(-0.64 / 100.98 * 1e4, rel=REL)
    assert b.temporary_impact_bps == pytest.approx(0.72 / 100.98 * 1e4, rel=REL)
    assert b.fill_rate == 1.0
    assert b.quality_score == pytest.approx(100 * (0.5 - 0.08 / 100.98 * 1e4 / 50), rel=REL)
    assert math.isnan(b.price_improvement_bps)
    assert math.isnan(b.spread_cost_bps)
    assert math.isnan(b.spread_capture_pct)
    assert b.reason == (
        "price improvement: not a limit order (no limit price); "
        "spread: bid and ask at arrival not known"
    )


def test_signs_mirror_between_a_buy_and_a_sell():
    # the same prices: a buy paying 100.10 against 100.00 costs what a sell receiving 99.90 does
    orders, fills = frames(
        [order("b", arrival_price=100.0, limit_price=100.2, bid=99.95, ask=100.05),
         order("s", side="sell", arrival_price=100.0, limit_price=99.8, bid=99.95, ask=100.05)],
        [fill("b", at(1), 100.10, 10), fill("s", at(1), 99.90, 10)],
    )  # fmt: skip
    out = order_tca(orders, fills, {"X": minute_bars()}).set_index("order_id")
    for column in ("arrival_slippage_bps", "is_bps", "is_trading_bps", "spread_cost_bps",
                   "spread_capture_pct"):  # fmt: skip
        assert out.at["b", column] == pytest.approx(out.at["s", column], rel=1e-12), column
    assert out.at["b", "arrival_slippage_bps"] == pytest.approx(10.0, rel=REL)  # a cost
    assert out.at["b", "price_improvement_bps"] == pytest.approx(0.1 / 100.2 * 1e4, rel=REL)
    assert out.at["s", "price_improvement_bps"] == pytest.approx(0.1 / 99.8 * 1e4, rel=REL)
    assert out.at["b", "spread_capture_pct"] == pytest.approx(-50.0, rel=REL)  # 0.05 past ask
    # the price rises after both: good for the buy, bad for the sell
    assert out.at["b", "markout_1m_bps"] > 0 > out.at["s", "markout_1m_bps"]


def test_an_order_with_no_fill_costs_its_opportunity():
    # buy 5 decided at 102.00, expired 10:30:30 unfilled: 5 x (103.02 - 102.00) = 5.1 over
    # the paper 510 = 100 bps, all of it opportunity
    orders, fills = frames(
        [order("C", order_qty=5.0, decision_time=at(20), decision_price=102.0,
               arrival_time=at(20 + 5 / 60), end_time=at(30.5))], [])  # fmt: skip
    c = order_tca(orders, fills, {"X": minute_bars()}).iloc[0]
    assert c.end_price == pytest.approx(103.02, rel=REL)
    assert c.is_opportunity_bps == pytest.approx(100.0, rel=REL)
    assert c.is_bps == pytest.approx(100.0, rel=REL)
    assert (c.is_delay_bps, c.is_trading_bps, c.is_fees_bps) == (0.0, 0.0, 0.0)
    assert (c.fill_rate, c.quality_score, c.fills) == (0.0, 0.0, 0)
    for column in ("arrival_slippage_bps", "vwap", "vs_twap_bps", "markout_5m_bps",
                   "permanent_impact_bps", "execution_time_s"):  # fmt: skip
        assert math.isnan(c[column]), column
    assert c.arrival_price == pytest.approx(101.92 + 0.1, rel=REL)  # the 10:21 bar's open
    assert "no fills" in c.reason
    assert "order end" not in c.reason


def test_perold_parts_sum_to_the_total_and_impact_to_the_slippage(hand):
    parts = hand[["is_delay_bps", "is_trading_bps", "is_opportunity_bps", "is_fees_bps"]]
    np.testing.assert_allclose(parts.sum(axis=1), hand["is_bps"], rtol=1e-12)
    np.testing.assert_allclose(
        hand["permanent_impact_bps"] + hand["temporary_impact_bps"],
        hand["arrival_slippage_bps"], rtol=1e-12,
    )  # fmt: skip


def test_fill_markouts_per_fill():
    orders, fills = frames([ORDER_A, ORDER_B], FILLS_A + FILLS_B)
    out = fill_markouts(orders, fills, {"X": minute_bars()})
    assert list(out["side"]) == ["buy", "buy", "sell"]
    np.testing.assert_allclose(
        out["markout_1m_bps"], [0.07 / 100.15 * 1e4, 0.07 / 100.25 * 1e4, -0.32 / 100.90 * 1e4],
        rtol=REL,
    )  # fmt: skip
    custom = fill_markouts(orders, fills, {"X": minute_bars()},
                           TCASettings(markout_horizons=(pd.Timedelta("30s"),)))  # fmt: skip
    assert list(custom.columns[-1:]) == ["markout_30s_bps"]
    # 10:01:40 is held by the 10:01 bar (close 100.12)
    assert custom["markout_30s_bps"].iloc[0] == pytest.approx(-0.03 / 100.15 * 1e4, rel=REL)


# -- n/a with reasons ------------------------------------------------------------------------


def na_case(orders: list[dict], fills: list[dict], candles, **settings) -> pd.Series:
    o, f = frames(orders, fills)
    return order_tca(o, f, candles, TCASettings(**settings)).iloc[0]


def test_no_candles_for_the_symbol():
    row = na_case([order("D", symbol="Z", arrival_price=50.0)], [fill("D", at(1), 50.5, 10)], {})
    assert row.arrival_slippage_bps == pytest.approx(100.0, rel=REL)  # its own arrival price
    for column in ("vwap", "markout_1m_bps", "permanent_impact_bps"):
        assert math.isnan(row[column])
    assert row.reason.startswith("market data: no candles for the symbol")


def test_an_arrival_after_the_data_and_a_gap_too_long():
    after = na_case([order("E", arrival_time=at(200), decision_time=at(200))],
                    [fill("E", at(201), 100, 10)], {"X": minute_bars()})  # fmt: skip
    assert math.isnan(after.arrival_price)
    assert math.isnan(after.arrival_slippage_bps)
    assert math.isnan(after.quality_score)
    assert "arrival price: not given and no bar opens at or after the arrival" in after.reason
    assert "markout 1m: no bar holds a fill's time + 1m" in after.reason
    assert "impact: no bar holds the last fill + 5m" in after.reason
    # bars on day 1 and ten days later: the next bar is beyond max_bar_wait (4 days)
    gap = pd.concat([minute_bars(5), minute_bars(5).set_axis(
        pd.date_range(T0 + pd.Timedelta(days=10), periods=5, freq="1min"))])  # fmt: skip
    late = na_case([order("G", arrival_time=at(30), decision_time=at(30))], [], {"X": gap})
    assert math.isnan(late.arrival_price)
    assert "first bar after the arrival opens more than 4 days 00:00:00 later" in late.reason
    unlimited = na_case([order("G", arrival_time=at(30), decision_time=at(30))], [], {"X": gap},
                        max_bar_wait=None)  # fmt: skip
    assert unlimited.arrival_price == pytest.approx(99.92, rel=REL)


def test_vwap_without_volume_and_an_interval_without_a_bar():
    quiet = minute_bars(volume=0.0)
    row = na_case([order("Q", arrival_time=at(0.5))], [fill("Q", at(2.5), 100.3, 10)],
                  {"X": quiet})  # fmt: skip
    assert math.isnan(row.vwap)
    assert row.twap == pytest.approx(100.15, rel=REL)  # 10:01 and 10:02
    assert "VWAP: no volume in [arrival, last fill]" in row.reason
    within = na_case([order("W", arrival_time=at(40 + 10 / 60))],
                     [fill("W", at(40 + 50 / 60), 104.0, 10)], {"X": minute_bars()})  # fmt: skip
    assert math.isnan(within.vwap)
    assert math.isnan(within.twap)
    assert "VWAP/TWAP: no bar opens in [arrival, last fill]" in within.reason


def test_no_decision_price_time_or_end():
    row = na_case(
        [order("N", decision_price=np.nan, decision_time=pd.NaT, arrival_time=at(1))],
        [fill("N", at(2), 100.2, 4)], {"X": minute_bars()},
    )  # fmt: skip
    assert math.isnan(row.is_bps)
    assert math.isnan(row.latency_s)
    assert "decision price: not given" in row.reason
    assert "decision time: not given" in row.reason
    no_end = na_case([order("U", arrival_time=at(1))], [], {"X": minute_bars()})
    assert math.isnan(no_end.is_opportunity_bps)
    assert math.isnan(no_end.is_bps)
    assert "order end: no end_time and no fill" in no_end.reason
    past = na_case([order("P", arrival_time=at(1), end_time=at(500))], [], {"X": minute_bars()})
    assert "order end: no bar holds it" in past.reason


def test_zero_spread_leaves_the_capture_undefined():
    row = na_case([order("Z", bid=100.0, ask=100.0, arrival_price=100.0)],
                  [fill("Z", at(1), 100.05, 10)], {"X": minute_bars()})  # fmt: skip
    assert row.spread_cost_bps == pytest.approx(5.0, rel=REL)
    assert math.isnan(row.spread_capture_pct)
    assert "spread capture: zero quoted spread" in row.reason


# -- bad input -------------------------------------------------------------------------------


def rejected(orders: list[dict], fills: list[dict], order_index=None, fill_index=None) -> str:
    o, f = frames(orders, fills)
    if order_index is not None:
        o.index = order_index
    if fill_index is not None:
        f.index = fill_index
    with pytest.raises(TCAInputError) as caught:
        order_tca(o, f, {"X": minute_bars()})
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def test_a_fill_of_an_unknown_order_is_named():
    text = rejected([order("A")], [fill("A", at(1), 100, 1), fill("nope", at(1), 100, 1)],
                    fill_index=["f1", "f2"])  # fmt: skip
    assert "fills row 'f2', column 'order_id': 'nope' is not an order given" in text


def test_fills_above_the_order_quantity_name_the_fill_that_passes_it():
    text = rejected(
        [order("A", order_qty=10.0)],
        [fill("A", at(3), 100, 4), fill("A", at(1), 100, 5), fill("A", at(2), 100, 3)],
    )  # fmt: skip
    # in time order: 5 (row 1), 3 (row 2): 8, then 4 (row 0): 12 > 10
    assert "fills row 0, column 'fill_qty': order 'A' filled 12.0 here and before" in text
    assert "(1 problem)" in text


def test_a_fill_before_the_arrival_or_after_the_end_is_named():
    text = rejected([order("A", arrival_time=at(5), end_time=at(8))],
                    [fill("A", at(4), 100, 1), fill("A", at(9), 100, 1)])  # fmt: skip
    assert "fills row 0, column 'fill_time': 2024-01-02T10:04:00+00:00 is before its order's " \
        "arrival_time 2024-01-02T10:05:00+00:00" in text  # fmt: skip
    assert "fills row 1, column 'fill_time': 2024-01-02T10:09:00+00:00 is after its order's " \
        "end_time" in text  # fmt: skip


@pytest.mark.parametrize(
    ("where", "column", "value"),
    [
        ("orders", "decision_price", 0.0),
        ("orders", "arrival_price", -1.0),
        ("orders", "limit_price", 0.0),
        ("orders", "bid", -2.0),
        ("orders", "order_qty", 0.0),
        ("fills", "fill_price", 0.0),
        ("fills", "fill_price", -100.0),
        ("fills", "fill_qty", -1.0),
    ],
)
def test_prices_and_quantities_not_positive_are_named(where, column, value):
    orders, fills = [order("A"), order("B")], [fill("A", at(1), 100, 1), fill("B", at(1), 100, 1)]
    (orders if where == "orders" else fills)[1][column] = value
    text = rejected(orders, fills, ["o1", "o2"], ["f1", "f2"])
    row = "o2" if where == "orders" else "f2"
    assert f"{where} row '{row}', column '{column}': {value!r} is not positive (> 0)" in text


def test_a_side_other_than_buy_or_sell_and_every_problem_at_once():
    text = rejected(
        [order("A", side="hold"), order("B", side="BUY"), order("A")],
        [fill("B", at(1), 100, 1), fill("B", at(1), "abc", 1)],
        order_index=[10, 11, 12],
    )  # fmt: skip
    assert "TCA input rejected (4 problems)" in text
    assert "orders row 10, column 'side': 'hold': expected buy or sell" in text
    assert "orders row 11, column 'side': 'BUY': expected buy or sell" in text
    assert "orders row 12, column 'order_id': repeats row 10" in text
    assert "fills row 1, column 'fill_price': 'abc' is not a number" in text


def test_other_inconsistent_orders_are_named():
    text = rejected(
        [order("A", decision_time=at(2), arrival_time=at(1)), order("B", bid=100.2, ask=100.1),
         order("C", arrival_time=pd.NaT), order("D", arrival_time=at(3), end_time=at(2))],
        [],
    )  # fmt: skip
    assert "orders row 0, column 'arrival_time': 2024-01-02T10:01:00+00:00 is before the " \
        "decision_time" in text  # fmt: skip
    assert "orders row 1, column 'ask': 100.1 is below the bid 100.2" in text
    assert "orders row 2, column 'arrival_time': empty" in text
    assert "orders row 3, column 'end_time'" in text


def test_a_missing_column_is_named():
    orders, fills = frames([order("A")], [])
    with pytest.raises(TCAInputError, match=r"fills: missing column\(s\) \['fee'\]"):
        order_tca(orders, fills.drop(columns="fee"), {})
    with pytest.raises(TCAInputError, match=r"orders: missing column\(s\) \['venue'\]"):
        order_tca(orders.drop(columns="venue"), fills, {})


def test_the_message_lists_fifty_problems_and_counts_the_rest():
    orders = [order(f"o{k}", side="x") for k in range(70)]
    text = rejected(orders, [])
    assert "TCA input rejected (70 problems)" in text
    assert text.count("expected buy or sell") == 50
    assert text.endswith("... and 20 more")


# -- aggregates ------------------------------------------------------------------------------


def test_aggregates_against_a_hand_computation():
    per_order = pd.DataFrame(
        {
            "venue": ["A", "A", "A", "A", "B", "B", None],
            "arrival_slippage_bps": [1.0, 2.0, 3.0, 10.0, np.nan, 5.0, 7.0],
            "filled_notional": [100.0, 100.0, 200.0, 600.0, 50.0, 80.0, 10.0],
            "is_bps": [4.0, 2.0, 0.0, 6.0, 1.0, 3.0, 7.0],
            "notional": [1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 1.0],
        }
    )
    out = aggregate_tca(per_order, by="venue").set_index(["group", "metric"])
    assert list(out.index.get_level_values("group").unique()) == ["A", "B", "(unknown)"]
    a = out.loc[("A", "arrival_slippage_bps")]
    assert (a.orders, a["count"]) == (4, 4)
    assert a["mean"] == pytest.approx(4.0)
    assert a.weighted_mean == pytest.approx(6.9)  # (100 + 200 + 600 + 6000) / 1000
    assert a["median"] == pytest.approx(2.5)
    # linear between ranks over 1, 2, 3, 10: positions 0.15, 0.75, 2.25, 2.85
    assert (a.p5, a.p25, a.p75, a.p95) == pytest.approx((1.15, 1.75, 4.75, 8.95))
    b = out.loc[("B", "arrival_slippage_bps")]
    assert (b.orders, b["count"], b["mean"], b.weighted_mean, b.p5) == (2, 1, 5.0, 5.0, 5.0)
    b_is = out.loc[("B", "is_bps")]
    assert b_is.weighted_mean == pytest.approx((1.0 * 1 + 3.0 * 3) / 4)  # order notional
    assert b_is["median"] == pytest.approx(2.0)
    every = aggregate_tca(per_order).set_index("metric")
    assert every.loc["is_bps", "group"] == "all"
    assert every.loc["is_bps", "mean"] == pytest.approx(23.0 / 7)
    assert every.loc["is_bps", "median"] == pytest.approx(3.0)


def test_aggregates_of_several_dimensions_and_a_bad_one(hand):
    out = aggregate_tca(hand.reset_index(), by=("venue", "side", "strategy"))
    assert list(out["dimension"].unique()) == ["venue", "side", "strategy"]
    assert set(out.loc[out["dimension"] == "side", "group"]) == {"buy", "sell"}
    with pytest.raises(ValueError, match="by='desk'"):
        aggregate_tca(hand, by="desk")


# -- decision quality ------------------------------------------------------------------------


def test_decision_quality_worked_by_hand():
    orders, fills = frames(
        [order("e1", expected_return_bps=50.0, symbol="X"), order("x1", side="sell"),
         order("e2", symbol="Y", arrival_time=at(1), decision_time=at(1)),
         order("x2", side="sell", symbol="Y", arrival_time=at(1), decision_time=at(1)),
         order("e3", side="sell", symbol="W"), order("x3", symbol="W", order_qty=20.0)],
        [fill("e1", at(1), 100.0, 10, 1.0), fill("x1", at(5), 101.0, 10, 1.0),
         fill("e2", at(2), 100.0, 10), fill("x2", at(3), 100.1, 10),
         fill("e3", at(1), 100.0, 10), fill("x3", at(4), 100.2, 10),
         fill("x3", at(6), 100.0, 5)],
    )  # fmt: skip
    trips = decision_quality(orders, fills).set_index("entry_order_id")
    # e1: (10 - 2) / 1000 = 80 bps, expected 50: +30 -> good
    assert trips.at["e1", "net_return_bps"] == pytest.approx(80.0, rel=REL)
    assert trips.at["e1", "excess_return_bps"] == pytest.approx(30.0, rel=REL)
    assert trips.at["e1", "decision_quality"] == "good"
    # e2: 1 / 1000 = 10 bps, nothing expected: exactly the threshold -> neutral
    assert trips.at["e2", "net_return_bps"] == pytest.approx(10.0, rel=REL)
    assert trips.at["e2", "expected_return_bps"] == 0.0
    assert trips.at["e2", "decision_quality"] == "neutral"
    # e3: a short 100.0 -> 100.2: -20 bps -> bad; the 5 bought after it opens a trip not closed
    assert trips.at["e3", "direction"] == "short"
    assert trips.at["e3", "net_return_bps"] == pytest.approx(-20.0, rel=REL)
    assert trips.at["e3", "decision_quality"] == "bad"
    assert list(trips.index) == ["e2", "e3", "e1"]  # exit order
    assert trips.at["e1", "exit_order_id"] == "x1"
    looser = decision_quality(orders, fills, threshold_bps=5.0).set_index("entry_order_id")
    assert looser.at["e2", "decision_quality"] == "good"


# -- the compiled sorts ----------------------------------------------------------------------


def test_the_radix_sorts_equal_numpys_stable_argsort():
    rng = np.random.default_rng(3)
    times = rng.integers(1_700_000_000 * 10**9, 1_700_100_000 * 10**9, 50_000)
    times[::7] = times[3]  # ties keep their order
    times[[5, 9]] = [-5, np.iinfo(np.int64).min]  # before 1970, NaT
    np.testing.assert_array_equal(time_order(times), np.argsort(times, kind="stable"))
    values = rng.normal(0, 10, 50_000)
    values[::11] = values[4]
    values[[1, 2, 3, 6]] = [np.nan, np.inf, -0.0, 0.0]
    finite = np.flatnonzero(np.isfinite(values))
    expected = finite[np.argsort(values[finite], kind="stable")]  # -0.0 == 0.0: by position
    np.testing.assert_array_equal(value_order(values), expected)


# -- the vectorised path against the plain per-order way -------------------------------------


def random_tca(n_orders: int, seed: int = 7, symbols: int = 4, days: int = 3):
    """A random book: ``symbols`` symbols of 1m bars over ``days`` days (random walk, a few
    gaps and bars without volume) plus one symbol without candles; orders of every kind (limit
    or market, arrival price given or not, quotes or not, some without a decision price or
    time, some arriving after the data), 0 to 7 fills each, partial fills, cancellations."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-04", tz="UTC")
    minutes = days * 24 * 60
    candles = {}
    for k in range(symbols):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 4e-4, minutes)))
        open_ = np.r_[100.0, close[:-1]]
        spread = np.abs(rng.normal(0, 3e-4, minutes)) * close
        volume = rng.integers(0, 50, minutes).astype(float)
        volume[(np.arange(minutes) // 60) % 24 == 3] = 0.0  # a quiet hour each day
        bars = pd.DataFrame(
            {"open": open_, "high": np.maximum(open_, close) + spread,
             "low": np.minimum(open_, close) - spread, "close": close, "volume": volume},
            index=pd.date_range(start, periods=minutes, freq="1min"),
        )  # fmt: skip
        keep = rng.random(minutes) > 0.02  # gaps
        candles[f"S{k}"] = bars[keep]
    names = np.array([*candles, "NODATA"], dtype=object)
    sym = rng.choice(len(names), n_orders, p=[0.97 / symbols] * symbols + [0.03])
    span_ns = (minutes + 30) * 60 * 10**9
    decision = start.value + (rng.random(n_orders) * span_ns).astype(np.int64)
    arrival = decision + (rng.random(n_orders) * 60e9).astype(np.int64)
    level = 100.0 * np.exp(rng.normal(0, 0.01, n_orders))
    side = np.where(rng.random(n_orders) < 0.5, "buy", "sell")
    s = np.where(side == "buy", 1.0, -1.0)
    counts = np.where(rng.random(n_orders) < 0.1, 0, rng.integers(1, 8, n_orders))
    full = (rng.random(n_orders) < 0.7) & (counts > 0)
    # filled in whole units, their positions come back to zero: round trips close; the
    # partial fills go to an account of their own
    qty = np.where(full, rng.integers(1, 4, n_orders), np.round(rng.uniform(1, 100, n_orders), 3))
    account = np.where(full, rng.choice([f"acc{k}" for k in range(8)], n_orders), "partial")
    limit = rng.random(n_orders) < 0.4
    order_pos = np.repeat(np.arange(n_orders), counts)
    m = len(order_pos)
    share = rng.random(m) + 0.05
    share /= np.bincount(order_pos, share, n_orders)[order_pos]
    fraction = np.where(full, 1.0, rng.uniform(0.2, 0.95, n_orders))
    fill_qty = qty[order_pos] * fraction[order_pos] * share
    delay = (rng.random(m) * 45 * 60e9).astype(np.int64)
    fill_ns = arrival[order_pos] + delay
    fill_price = level[order_pos] * (1 + rng.normal(0, 5e-4, m) + s[order_pos] * 2e-4)
    last = np.full(n_orders, np.iinfo(np.int64).min)
    np.maximum.at(last, order_pos, fill_ns)
    ended = rng.random(n_orders) < 0.4
    end = np.where(counts > 0, last, arrival) + (rng.random(n_orders) * 600e9).astype(np.int64)
    bid = level * (1 - rng.uniform(0, 5e-4, n_orders))
    ask = level * (1 + rng.uniform(0, 5e-4, n_orders))
    quoted = rng.random(n_orders) < 0.5
    orders = pd.DataFrame(
        {
            "order_id": [f"o{k}" for k in range(n_orders)],
            "account_id": account,
            "strategy_id": rng.choice(["trend", "revert", "carry"], n_orders),
            "symbol": names[sym],
            "side": side,
            "order_qty": qty,
            "order_type": np.where(limit, "limit", "market"),
            "limit_price": np.where(limit, level * (1 + s * 1e-3), np.nan),
            "decision_time": pd.to_datetime(decision, utc=True).where(
                rng.random(n_orders) > 0.02),
            "decision_price": np.where(rng.random(n_orders) > 0.02, level, np.nan),
            "arrival_time": pd.to_datetime(arrival, utc=True),
            "arrival_price": np.where(rng.random(n_orders) < 0.5, level * 1.0001, np.nan),
            "end_time": pd.to_datetime(np.where(ended, end, np.iinfo(np.int64).min), utc=True),
            "venue": rng.choice(["XNAS", "ARCA", "BATS", "IEX"], n_orders),
            "algo": rng.choice(["twap", "vwap", "pov", "is"], n_orders),
            "bid": np.where(quoted, bid, np.nan),
            "ask": np.where(quoted, ask, np.nan),
            "expected_return_bps": np.where(rng.random(n_orders) < 0.5,
                                            rng.normal(0, 20, n_orders), np.nan),
        }
    )  # fmt: skip
    fills = pd.DataFrame(
        {
            "order_id": orders["order_id"].to_numpy()[order_pos],
            "fill_time": pd.to_datetime(fill_ns, utc=True),
            "fill_price": fill_price,
            "fill_qty": fill_qty,
            "fee": fill_qty * fill_price * 5e-4,
        }
    )
    return orders, fills, candles


def naive_order_tca(
    orders: pd.DataFrame, fills: pd.DataFrame, candles: dict, settings: TCASettings | None = None
) -> pd.DataFrame:
    """docs/tca.md written the plain way: a loop over orders, pandas on each order's fills and
    on slices of its symbol's bars."""
    settings = settings or TCASettings()
    by_order = dict(tuple(fills.groupby("order_id", sort=False)))
    lengths = {}
    for symbol, bars in candles.items():
        steps = bars.index.to_series().diff().dropna()
        lengths[symbol] = steps[steps > pd.Timedelta(0)].min()
    rows = []
    for o in orders.itertuples(index=False):
        s = 1.0 if o.side == "buy" else -1.0
        f = by_order.get(o.order_id, fills.iloc[:0])
        bars = candles.get(o.symbol)
        row = {"order_id": o.order_id}

        def close_holding(t, bars=bars, symbol=o.symbol):
            if bars is None or pd.isna(t):
                return np.nan
            before = bars.loc[:t]
            if before.empty or t >= before.index[-1] + lengths[symbol]:
                return np.nan
            return before["close"].iloc[-1]

        filled = f["fill_qty"].sum()
        avg = (f["fill_qty"] * f["fill_price"]).sum() / filled if len(f) else np.nan
        last = f["fill_time"].max() if len(f) else pd.NaT
        arrival = o.arrival_price
        if pd.isna(arrival) and bars is not None:
            later = bars.loc[o.arrival_time :]
            if len(later) and (
                settings.max_bar_wait is None
                or later.index[0] - o.arrival_time <= settings.max_bar_wait
            ):
                arrival = later["open"].iloc[0]
        row["fill_rate"] = filled / o.order_qty
        row["arrival_price"] = arrival
        row["arrival_slippage_bps"] = s * (avg - arrival) / arrival * 1e4
        paper = o.order_qty * o.decision_price
        unfilled = o.order_qty - filled if o.order_qty - filled > o.order_qty * 1e-9 else 0.0
        end = o.end_time if not pd.isna(o.end_time) else last
        end_price = close_holding(end) if unfilled > 0 else np.nan
        paid = (f["fill_qty"] * f["fill_price"]).sum()
        delay = s * filled * (arrival - o.decision_price) if len(f) else 0.0
        trading = s * (paid - filled * arrival) if len(f) else 0.0
        opportunity = s * unfilled * (end_price - o.decision_price) if unfilled > 0 else 0.0
        fees = f["fee"].sum()
        row["is_bps"] = (s * (paid - filled * o.decision_price) + opportunity + fees) / paper * 1e4
        row["is_delay_bps"] = delay / paper * 1e4
        row["is_trading_bps"] = trading / paper * 1e4
        row["is_opportunity_bps"] = opportunity / paper * 1e4
        row["is_fees_bps"] = fees / paper * 1e4
        vwap = twap = np.nan
        if bars is not None and len(f):
            window = bars.loc[o.arrival_time : last]
            typical = (window["high"] + window["low"] + window["close"]) / 3
            if len(window):
                twap = typical.mean()
                if window["volume"].sum() > 0:
                    vwap = (typical * window["volume"]).sum() / window["volume"].sum()
        row["vs_vwap_bps"] = s * (avg - vwap) / vwap * 1e4
        row["vs_twap_bps"] = s * (avg - twap) / twap * 1e4
        for h in settings.markout_horizons:
            later = f["fill_time"].map(lambda t, h=h: close_holding(t + h))
            each = s * (later - f["fill_price"]) / f["fill_price"] * 1e4
            row[f"markout_{int(h.total_seconds() // 60)}m_bps"] = (
                (each * f["fill_qty"]).sum() / filled if len(f) and each.notna().all() else np.nan
            )
        after = close_holding(last + settings.impact_horizon) if len(f) else np.nan
        row["permanent_impact_bps"] = s * (after - arrival) / arrival * 1e4
        row["temporary_impact_bps"] = s * (avg - after) / arrival * 1e4
        row["latency_s"] = (o.arrival_time - o.decision_time).total_seconds()
        row["execution_time_s"] = (last - o.arrival_time).total_seconds() if len(f) else np.nan
        row["price_improvement_bps"] = s * (o.limit_price - avg) / o.limit_price * 1e4
        mid = (o.bid + o.ask) / 2
        row["spread_cost_bps"] = s * (avg - mid) / mid * 1e4
        far = o.ask if s > 0 else o.bid
        row["spread_capture_pct"] = (
            s * (far - avg) / (o.ask - o.bid) * 100 if o.ask > o.bid else np.nan
        )
        price_part = min(max(0.5 - row["arrival_slippage_bps"] / 50.0, 0.0), 1.0)
        if not len(f):
            row["quality_score"] = 0.0
        elif math.isnan(row["arrival_slippage_bps"]):
            row["quality_score"] = np.nan
        else:
            row["quality_score"] = 100 * row["fill_rate"] * price_part
        rows.append(row)
    return pd.DataFrame(rows)


def naive_decision_quality(orders: pd.DataFrame, fills: pd.DataFrame) -> pd.DataFrame:
    """Round trips by analytics.round_trips (the tracker's FIFO), each trip's decision found
    through its first entry fill's order."""
    info = orders.set_index("order_id")
    trades = pd.DataFrame(
        {
            "trade_id": [f"f{k}" for k in range(len(fills))],
            "account_id": info.loc[fills["order_id"], "account_id"].to_numpy(),
            "strategy_id": info.loc[fills["order_id"], "strategy_id"].to_numpy(),
            "symbol": info.loc[fills["order_id"], "symbol"].to_numpy(),
            "side": info.loc[fills["order_id"], "side"].to_numpy(),
            "price": fills["fill_price"].to_numpy(),
            "volume": fills["fill_qty"].to_numpy(),
            "commission": fills["fee"].to_numpy(),
            "time": fills["fill_time"].to_numpy(),
        }
    )
    trips = round_trips(trades)
    order_of = dict(zip(trades["trade_id"], fills["order_id"], strict=True))
    entry = [order_of[ids[0]] for ids in trips["entry_trade_ids"]]
    expected = info.loc[entry, "expected_return_bps"].fillna(0.0).to_numpy()
    net = trips["return"].to_numpy() * 1e4
    excess = net - expected
    return pd.DataFrame(
        {
            "entry_order_id": entry,
            "net_return_bps": net,
            "excess_return_bps": excess,
            "decision_quality": np.where(excess > 10, "good",
                                         np.where(excess < -10, "bad", "neutral")),
        }
    )  # fmt: skip


def naive_aggregate(per_order: pd.DataFrame, by: str, metric: str, weight: str) -> pd.DataFrame:
    rows = {}
    for group, part in per_order.groupby(by):
        x = part[metric].dropna()
        w = part.loc[x.index, weight]
        keep = w.notna()
        rows[group] = {
            "count": len(x),
            "mean": x.mean() if len(x) else np.nan,
            "weighted_mean": (x[keep] * w[keep]).sum() / w[keep].sum() if len(x) else np.nan,
            **{f"p{q}": np.percentile(x, q) if len(x) else np.nan for q in (5, 25, 50, 75, 95)},
        }
    return pd.DataFrame(rows).T


@pytest.fixture(scope="module")
def book():
    orders, fills, candles = random_tca(3000)
    return orders, fills, candles, transaction_costs(orders, fills, candles)


def test_the_random_book_covers_every_case(book):
    _orders, fills, _, report = book
    assert len(fills) > 10_000
    reasons = "; ".join(report.orders["reason"].unique())
    for cause in ("no candles", "no fills", "no bar opens at or after", "decision price",
                  "decision time", "VWAP: no volume", "markout 60m", "not a limit order",
                  "bid and ask", "order end: no bar holds it"):  # fmt: skip
        assert cause in reasons, cause
    partial = report.orders["fill_rate"].between(0.01, 0.99)
    assert partial.sum() > 300
    assert report.orders["arrival_price_source"].value_counts().to_dict().keys() >= {"bar", "order"}


def test_the_vectorised_path_equals_the_plain_per_order_way(book):
    orders, fills, candles, report = book
    fast = report.orders.reset_index(drop=True)
    slow = naive_order_tca(orders, fills, candles)
    assert list(fast["order_id"]) == list(slow["order_id"])
    for column in slow.columns.drop("order_id"):
        np.testing.assert_allclose(
            fast[column].to_numpy(dtype=float), slow[column].to_numpy(dtype=float),
            rtol=1e-9, atol=1e-7, err_msg=column,
        )  # fmt: skip
    parts = fast[["is_delay_bps", "is_trading_bps", "is_opportunity_bps", "is_fees_bps"]]
    complete = parts.notna().all(axis=1) & fast["is_bps"].notna()
    assert complete.sum() > 2000
    np.testing.assert_allclose(parts[complete].sum(axis=1), fast.loc[complete, "is_bps"],
                               rtol=1e-9, atol=1e-9)  # fmt: skip
    impact = fast["permanent_impact_bps"].notna()
    np.testing.assert_allclose(
        fast.loc[impact, "permanent_impact_bps"] + fast.loc[impact, "temporary_impact_bps"],
        fast.loc[impact, "arrival_slippage_bps"], rtol=1e-9, atol=1e-9,
    )  # fmt: skip


def test_decision_quality_equals_the_round_trips_of_the_tracker(book):
    orders, fills, _, report = book
    fast = report.round_trips
    slow = naive_decision_quality(orders, fills)
    assert len(fast) > 100
    assert list(fast["entry_order_id"]) == list(slow["entry_order_id"])
    np.testing.assert_allclose(fast["net_return_bps"], slow["net_return_bps"], rtol=1e-9)
    np.testing.assert_allclose(fast["excess_return_bps"], slow["excess_return_bps"], rtol=1e-9)
    assert list(fast["decision_quality"]) == list(slow["decision_quality"])
    assert set(fast["decision_quality"]) == {"good", "bad", "neutral"}


@pytest.mark.parametrize("by", ["venue", "algo", "symbol", "side", "strategy"])
def test_aggregates_equal_a_groupby_per_group(book, by):
    _, _, _, report = book
    column = {"strategy": "strategy_id"}.get(by, by)
    out = report.aggregates[report.aggregates["dimension"] == by]
    for metric, weight in (("arrival_slippage_bps", "filled_notional"), ("is_bps", "notional"),
                           ("markout_5m_bps", "filled_notional")):  # fmt: skip
        mine = out[out["metric"] == metric].set_index("group")
        theirs = naive_aggregate(report.orders, column, metric, weight)
        assert list(mine.index) == list(theirs.index)
        assert list(mine["count"]) == list(theirs["count"])
        for stat in ("mean", "weighted_mean", "p5", "p25", "p75", "p95"):
            np.testing.assert_allclose(mine[stat], theirs[stat], rtol=1e-9, err_msg=stat)
        np.testing.assert_allclose(mine["median"], theirs["p50"], rtol=1e-9)
