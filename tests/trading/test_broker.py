"""The paper broker against hand-computed bars: each order type and time in force, costs,
the volume cap, cancel/modify, every rejection reason, positions, cash and equity.

Every expected number is worked out by hand in the test (never by calling the code under
test), so a change of the fill rules shows up as a failing number here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from market.candles import Candle
from trading.broker import PaperBroker
from trading.config import CostModel
from trading.orders import AccountBook, OrderError, OrderRequest

SYMBOL = "SP500"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bar(day: int, o: float, h: float, low: float, c: float, volume: float = 1e9) -> Candle:
    return Candle(pd.Timestamp(T0 + timedelta(days=day)), o, h, low, c, volume)


def at(day: int, seconds: float = 0.0) -> datetime:
    return T0 + timedelta(days=day, seconds=seconds)


def broker(cash: float = 10_000.0, **kwargs) -> PaperBroker:
    return PaperBroker(AccountBook("test", cash=cash, id=1), symbols={SYMBOL}, **kwargs)


def request(cid: str, side: str, quantity: float | None = 10.0, **kwargs) -> OrderRequest:
    return OrderRequest(cid, SYMBOL, side, quantity=quantity, **kwargs)


def close(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-9)


def hold(b: PaperBroker, quantity: float, price: float, day: int = -10) -> None:
    """Open a position of ``quantity`` units at ``price`` (no costs) on an earlier bar."""
    side = "buy" if quantity > 0 else "sell"
    b.submit(request(f"open-{day}", side, abs(quantity)), at(day - 1), price)
    b.on_bar(SYMBOL, bar(day, price, price, price, price), closed=True, now=at(day))
    assert b.position(SYMBOL).quantity == quantity


# -- market orders and costs --------------------------------------------------------------
def test_a_market_order_fills_at_the_next_open_with_every_cost():
    b = broker()
    costs = CostModel(commission_pct=0.001, commission_fixed=1.0, slippage_bps=2, spread_bps=4)
    order = b.submit(request("buy-1", "buy", costs=costs), at(0), 100.0)
    assert order.status == "new"
    fills = b.on_bar(SYMBOL, bar(1, 101.0, 103.0, 99.0, 102.0), closed=True, now=at(1))
    # half the spread (2 bps) + slippage (2 bps) on the open; fixed + 0.1 % of the value
    assert [(f.base, f.trigger) for f in fills] == [(101.0, "market")]
    assert fills[0].price == close(101.0404)
    assert fills[0].fee == close(1 + 10 * 101.0404 * 0.001)
    assert order.status == "filled"
    assert order.filled_quantity == 10.0
    assert b.account.cash == close(10_000 - 1010.404 - 2.010404)
    assert b.equity() == close(8987.585596 + 10 * 102.0)  # marked at the close
    book = b.position(SYMBOL)
    assert (book.quantity, book.average_price) == (10.0, close(101.0404))

    b.submit(request("sell-1", "sell", costs=costs), at(1), 102.0)
    fills = b.on_bar(SYMBOL, bar(2, 103.0, 104.0, 101.0, 101.5), closed=True, now=at(2))
    assert fills[0].price == close(102.9588)  # a sell receives the open less 4 bps
    assert fills[0].fee == close(1 + 1029.588 * 0.001)
    assert fills[0].realised_pnl == close(10 * (102.9588 - 101.0404))
    assert b.account.cash == close(8987.585596 + 1029.588 - 2.029588)
    assert b.account.realised_pnl == close(19.184)
    assert b.account.fees == close(2.010404 + 2.029588)
    assert b.position(SYMBOL).quantity == 0.0
    assert b.equity() == close(10_015.144008)


def test_a_market_order_placed_during_a_bar_fills_at_its_next_price_never_its_past_open():
    b = broker()
    b.on_bar(SYMBOL, bar(0, 100.0, 101.0, 99.0, 100.5), closed=False, now=at(0))
    order = b.submit(request("buy", "buy"), at(0, 1), 100.5)
    assert order.placed_bar == int(bar(0, 0, 0, 0, 0).ts.value // 1_000_000)
    b.on_bar(SYMBOL, bar(0, 100.0, 101.5, 99.0, 101.2), closed=True, now=at(0, 2))
    assert order.average_price == 101.2  # the bar's next update, not its open 100
    late = b.submit(request("late", "buy"), at(0, 3), 101.2)
    b.on_bar(SYMBOL, bar(1, 102.0, 103.0, 101.0, 102.5), closed=True, now=at(1))
    assert late.average_price == 102.0  # after the bar closed: the next bar's open


# -- limit orders ---------------------------------------------------------------------------
def test_a_limit_fills_at_its_price_inside_the_bar_or_at_a_better_open():
    b = broker()
    inside = b.submit(request("in", "buy", 1.0, order_type="limit", limit_price=95.0), at(0), 100)
    gapped = b.submit(request("gap", "buy", 1.0, order_type="limit", limit_price=97.0), at(0), 100)
    never = b.submit(request("no", "buy", 1.0, order_type="limit", limit_price=90.0), at(0), 100)
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 94.0, 96.0), closed=True, now=at(1))
    assert inside.average_price == 95.0  # reached inside the bar: its limit
    assert gapped.average_price == 97.0
    assert never.status == "new"
    fills = b.on_bar(SYMBOL, bar(2, 88.0, 92.0, 87.0, 91.0), closed=True, now=at(2))
    assert [(f.order.client_order_id, f.base, f.trigger) for f in fills] == [("no", 88.0, "limit")]
    sell = b.submit(request("s", "sell", 1.0, order_type="limit", limit_price=93.0), at(2), 91.0)
    b.on_bar(SYMBOL, bar(3, 95.0, 96.0, 94.0, 95.0), closed=True, now=at(3))
    assert sell.average_price == 95.0  # the open passed the sell limit: the better open


# -- stops --------------------------------------------------------------------------------
def test_a_stop_gapped_through_fills_at_the_open_and_one_inside_at_its_stop():
    b = broker()
    hold(b, 20.0, 100.0)
    gap = b.submit(request("gap", "sell", order_type="stop", stop_price=95.0), at(0), 100.0)
    b.on_bar(SYMBOL, bar(1, 93.0, 94.0, 90.0, 92.0), closed=True, now=at(1))
    assert (gap.average_price, gap.status) == (93.0, "filled")  # worse than its stop
    inside = b.submit(request("in", "sell", order_type="stop", stop_price=91.0), at(1), 92.0)
    fills = b.on_bar(SYMBOL, bar(2, 92.0, 93.0, 89.0, 90.0), closed=True, now=at(2))
    assert [(f.base, f.trigger) for f in fills] == [(91.0, "stop")]
    assert inside.status == "filled"
    assert b.position(SYMBOL).quantity == 0.0
    assert b.account.realised_pnl == close(10 * (93 - 100) + 10 * (91 - 100))


def test_a_stop_and_a_target_inside_one_bar_the_stop_fills_and_cancels_the_target():
    b = broker()
    hold(b, 10.0, 100.0)
    common = {"reduce_only": True, "oco_group": "g1"}
    stop = b.submit(request("stop", "sell", order_type="stop", stop_price=95.0, **common), at(0))
    target = b.submit(
        request("target", "sell", order_type="limit", limit_price=110.0, **common), at(0)
    )
    fills = b.on_bar(SYMBOL, bar(1, 100.0, 112.0, 94.0, 105.0), closed=True, now=at(1))
    assert [(f.order.client_order_id, f.base) for f in fills] == [("stop", 95.0)]
    assert stop.status == "filled"
    assert target.status == "cancelled"
    assert target.extra["reason"] == "OCO: stop filled"
    assert b.account.realised_pnl == close(-50.0)


def test_a_target_filled_cancels_its_stop():
    b = broker()
    hold(b, -10.0, 100.0)  # short: a buy stop above, a buy target below
    common = {"reduce_only": True, "oco_group": "g2"}
    stop = b.submit(request("stop", "buy", order_type="stop", stop_price=104.0, **common), at(0))
    target = b.submit(
        request("target", "buy", order_type="limit", limit_price=92.0, **common), at(0)
    )
    b.on_bar(SYMBOL, bar(1, 99.0, 101.0, 91.0, 93.0), closed=True, now=at(1))
    assert (target.status, target.average_price) == ("filled", 92.0)
    assert stop.status == "cancelled"
    assert b.account.realised_pnl == close(80.0)
    assert b.open_orders() == []


def test_a_stop_limit_becomes_a_limit_when_its_stop_triggers():
    b = broker()
    hold(b, 10.0, 100.0)
    order = sell_stop_limit(b, stop=95.0, limit=96.0)
    b.on_bar(SYMBOL, bar(1, 94.0, 95.5, 93.0, 95.0), closed=True, now=at(1))
    # gapped through the stop: now a sell limit at 96, which this bar never reached
    assert order.triggered
    assert order.status == "new"
    b.on_bar(SYMBOL, bar(2, 95.0, 97.0, 94.5, 96.5), closed=True, now=at(2))
    assert (order.status, order.average_price) == ("filled", 96.0)
    untouched = b.submit(
        request("sl2", "buy", order_type="stop_limit", stop_price=120.0, limit_price=121.0),
        at(2),
        96.5,
    )
    b.on_bar(SYMBOL, bar(3, 100.0, 110.0, 99.0, 105.0), closed=True, now=at(3))
    assert not untouched.triggered
    assert untouched.status == "new"


def test_a_trailing_stop_anchor_moves_only_from_the_next_bar():
    b = broker()
    hold(b, 10.0, 100.0)
    order = b.submit(request("trail", "sell", order_type="stop", trail_pct=0.1), at(0), 100.0)
    assert order.anchor == 100.0
    # inside this bar the high 120 would put the stop at 108 and the low 105 below it: had the
    # anchor moved inside the bar, the stop would have filled
    b.on_bar(SYMBOL, bar(1, 100.0, 120.0, 105.0, 118.0), closed=True, now=at(1))
    assert order.status == "new"
    assert order.anchor == 120.0
    fills = b.on_bar(SYMBOL, bar(2, 115.0, 116.0, 107.0, 109.0), closed=True, now=at(2))
    assert [(f.base, f.trigger) for f in fills] == [(close(108.0), "trailing_stop")]


def test_a_short_trailing_stop_trails_the_lowest_price():
    b = broker()
    hold(b, -10.0, 100.0)
    order = b.submit(request("trail", "buy", order_type="stop", trail_pct=0.05), at(0), 100.0)
    b.on_bar(SYMBOL, bar(1, 98.0, 99.0, 80.0, 82.0), closed=True, now=at(1))
    assert order.anchor == 80.0
    assert order.status == "new"
    b.on_bar(SYMBOL, bar(2, 83.0, 85.0, 82.5, 84.5), closed=True, now=at(2))
    assert order.average_price == close(84.0)  # 80 x 1.05, inside the bar


def sell_stop_limit(b: PaperBroker, stop: float, limit: float):
    return b.submit(
        request("sl", "sell", order_type="stop_limit", stop_price=stop, limit_price=limit),
        at(0),
        100.0,
    )


# -- time in force --------------------------------------------------------------------------
def test_an_ioc_order_expires_when_its_bar_closes_unfilled():
    b = broker()
    order = b.submit(
        request("ioc", "buy", order_type="limit", limit_price=90.0, time_in_force="IOC"), at(0), 100
    )
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 95.0, 98.0), closed=False, now=at(1))
    assert order.status == "new"  # the forming bar: still alive
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 95.0, 98.0), closed=True, now=at(1, 60))
    assert order.status == "expired"
    assert order.filled_quantity == 0
    b.on_bar(SYMBOL, bar(2, 89.0, 90.0, 85.0, 86.0), closed=True, now=at(2))
    assert order.filled_quantity == 0  # never filled afterwards


def test_a_gtc_order_stays_until_filled():
    b = broker()
    order = b.submit(request("gtc", "buy", order_type="limit", limit_price=90.0), at(0), 100)
    for day in range(1, 4):
        b.on_bar(SYMBOL, bar(day, 100.0, 101.0, 95.0, 98.0), closed=True, now=at(day))
    assert order.status == "new"
    b.on_bar(SYMBOL, bar(4, 95.0, 96.0, 89.0, 90.0), closed=True, now=at(4))
    assert order.status == "filled"
    assert order.average_price == 90.0


# -- reduce-only and the volume cap ------------------------------------------------------
def test_a_reduce_only_order_never_flips_the_position():
    b = broker()
    hold(b, 10.0, 100.0)
    order = b.submit(request("ro", "sell", 25.0, reduce_only=True), at(0), 100.0)
    assert order.status == "new"
    b.on_bar(SYMBOL, bar(1, 101.0, 102.0, 100.0, 101.0), closed=True, now=at(1))
    assert b.position(SYMBOL).quantity == 0.0
    assert (order.filled_quantity, order.status) == (10.0, "partially_filled")
    b.on_bar(SYMBOL, bar(2, 102.0, 103.0, 101.0, 102.0), closed=True, now=at(2))
    assert b.position(SYMBOL).quantity == 0.0
    assert order.status == "cancelled"
    assert "no position left" in order.extra["reason"]
    flat = b.submit(request("ro2", "buy", 1.0, reduce_only=True), at(2), 102.0)
    assert flat.status == "rejected"
    assert flat.reject_reason == "reduce-only order but no short position to reduce"


def test_the_volume_cap_fills_over_several_bars_and_charges_the_fixed_fee_once():
    b = broker(cash=100_000.0)
    costs = CostModel(commission_pct=0.001, commission_fixed=5.0)
    order = b.submit(request("big", "buy", 25.0, costs=costs, volume_cap=0.1), at(0), 100.0)
    opens = [100.0, 102.0, 104.0]
    for day, o in enumerate(opens, start=1):
        b.on_bar(SYMBOL, bar(day, o, o + 1, o - 1, o, volume=100.0), closed=True, now=at(day))
    fills = [f for f in b.new_fills if f.order is order]
    assert [(f.quantity, f.base) for f in fills] == [(10.0, 100.0), (10.0, 102.0), (5.0, 104.0)]
    assert [f.fee for f in fills] == [close(5 + 1.0), close(1.02), close(0.52)]
    assert order.status == "filled"
    assert order.fills == 3
    assert order.average_price == close((1000 + 1020 + 520) / 25)
    assert order.fees == close(6 + 1.02 + 0.52)
    assert b.account.cash == close(100_000 - 2540 - 7.54)


def test_the_volume_cap_is_shared_by_the_orders_of_one_bar():
    b = broker(cash=100_000.0)
    first = b.submit(request("a", "buy", 8.0, volume_cap=0.1), at(0), 100.0)
    second = b.submit(request("b", "buy", 8.0, volume_cap=0.1), at(0), 100.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 99.0, 100.0, volume=100.0), closed=True, now=at(1))
    assert (first.filled_quantity, second.filled_quantity) == (8.0, 2.0)
    assert second.status == "partially_filled"


# -- cancel and modify ----------------------------------------------------------------------
def test_cancel_and_modify_of_a_filled_or_unknown_order_raise_naming_it():
    b = broker()
    done = b.submit(request("done-1", "buy", 1.0), at(0), 100.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 99.0, 100.0), closed=True, now=at(1))
    assert done.status == "filled"
    with pytest.raises(OrderError, match="'done-1' is filled"):
        b.cancel("done-1", at(1))
    with pytest.raises(OrderError, match="'done-1' is filled: it cannot be modified"):
        b.modify("done-1", at(1), quantity=2.0)
    with pytest.raises(OrderError, match="unknown order 'ghost-7'"):
        b.cancel("ghost-7", at(1))
    with pytest.raises(OrderError, match="unknown order 'ghost-7'"):
        b.modify("ghost-7", at(1), limit_price=1.0)
    with pytest.raises(OrderError, match="'done-1' is already used"):
        b.submit(request("done-1", "buy", 1.0), at(1), 100.0)


def test_cancel_and_modify_of_an_open_order():
    b = broker()
    order = b.submit(request("lim", "buy", 2.0, order_type="limit", limit_price=90.0), at(0), 100)
    b.modify("lim", at(0, 1), quantity=3.0, limit_price=95.0)
    with pytest.raises(OrderError, match="stop_price cannot be set on a limit order"):
        b.modify("lim", at(0, 1), stop_price=80.0)
    with pytest.raises(OrderError, match=r"limit_price=-1\.0 is invalid"):
        b.modify("lim", at(0, 1), limit_price=-1.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 94.0, 96.0), closed=True, now=at(1))
    assert (order.filled_quantity, order.average_price) == (3.0, 95.0)
    other = b.submit(request("lim2", "buy", 2.0, order_type="limit", limit_price=50.0), at(1), 96)
    assert b.cancel("lim2", at(1, 1), "changed my mind") is other
    assert other.status == "cancelled"
    assert b.open_orders() == []
    with pytest.raises(OrderError, match="'lim2' is cancelled"):
        b.cancel("lim2", at(1, 2))


# -- rejections -----------------------------------------------------------------------------
def test_each_rejection_reason():
    b = broker(cash=1_000.0, min_quantity=0.5)
    cases = {
        "symbol": (OrderRequest("r1", "NOPE", "buy", quantity=1.0), "unknown symbol 'NOPE'"),
        "price": (
            request("r2", "buy", 1.0, order_type="limit", limit_price=-5.0),
            "price not positive: limit_price=-5.0",
        ),
        "quantity": (request("r3", "buy", 0.1), "quantity 0.1 is below the minimum 0.5"),
        "zero": (request("r4", "buy", 0.0), "quantity not positive: 0.0"),
        "cash": (request("r5", "buy", 11.0), "insufficient cash: needs 1,100.00, has 1,000.00"),
        "max_position": (
            request("r6", "buy", 6.0, max_position=5.0),
            "risk limit: position would be 6 units, above max_position 5",
        ),
        "unsized": (request("r7", "buy", None), "quantity missing"),
    }
    for name, (req, reason) in cases.items():
        order = b.submit(req, at(0), 100.0)
        assert order.status == "rejected", name
        assert reason in (order.reject_reason or ""), (name, order.reject_reason)
        assert b.orders[req.client_order_id] is order  # kept like any other order
    assert b.open_orders() == []
    assert b.account.cash == 1_000.0
    fits = b.submit(request("ok", "buy", 5.0, max_position=5.0), at(0), 100.0)
    assert fits.status == "new"


def test_a_halted_account_rejects_all_but_reduce_only_orders():
    b = broker()
    hold(b, 10.0, 100.0)
    b.account.status, b.account.halt_reason = "halted", "drawdown 25% passed the limit 20%"
    order = b.submit(request("h1", "buy", 1.0), at(0), 100.0)
    assert order.status == "rejected"
    assert order.reject_reason == "account test is halted: drawdown 25% passed the limit 20%"
    assert b.submit(request("h2", "sell", 10.0, reduce_only=True), at(0), 100.0).status == "new"


def test_max_orders_per_minute_counts_a_deployments_orders_in_the_last_minute():
    b = broker()
    limited = {"deployment_id": 3, "max_orders_per_minute": 2}
    assert b.submit(request("m1", "buy", 1.0, **limited), at(0), 100.0).status == "new"
    assert b.submit(request("m2", "buy", 1.0, **limited), at(0, 30), 100.0).status == "new"
    third = b.submit(request("m3", "buy", 1.0, **limited), at(0, 59), 100.0)
    assert third.status == "rejected"
    assert third.reject_reason == "risk limit: 2 orders in the last minute, max_orders_per_minute 2"
    # another deployment has its own count; a minute after the first, one slot is free again
    assert (
        b.submit(
            request("o1", "buy", 1.0, deployment_id=4, max_orders_per_minute=2), at(0, 59), 100.0
        ).status
        == "new"
    )
    assert b.submit(request("m4", "buy", 1.0, **limited), at(0, 60), 100.0).status == "new"
    assert b.submit(request("m5", "buy", 1.0, **limited), at(0, 61), 100.0).status == "rejected"


# -- positions, cash and equity ------------------------------------------------------------
def test_average_price_realised_pnl_and_a_flip_through_flat():
    b = broker(cash=10_000.0)
    b.submit(request("a", "buy", 10.0), at(0), 100.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 100.0, 100.0, 100.0), closed=True, now=at(1))
    b.submit(request("b", "buy", 30.0), at(1), 100.0)
    b.on_bar(SYMBOL, bar(2, 120.0, 120.0, 120.0, 120.0), closed=True, now=at(2))
    book = b.position(SYMBOL)
    assert (book.quantity, book.average_price) == (40.0, close((1000 + 3600) / 40))  # 115
    assert b.account.cash == close(10_000 - 1000 - 3600)

    b.submit(request("c", "sell", 20.0), at(2), 120.0)
    fills = b.on_bar(SYMBOL, bar(3, 125.0, 125.0, 125.0, 125.0), closed=True, now=at(3))
    assert fills[0].realised_pnl == close(20 * (125 - 115))
    assert (book.quantity, book.average_price) == (20.0, close(115.0))  # a reduce keeps it
    assert b.account.cash == close(5_400 + 2_500)
    assert b.equity() == close(7_900 + 20 * 125)

    b.submit(request("d", "sell", 50.0), at(3), 125.0)  # 20 closed, 30 opened short
    fills = b.on_bar(SYMBOL, bar(4, 110.0, 111.0, 109.0, 108.0), closed=True, now=at(4))
    assert fills[0].realised_pnl == close(20 * (110 - 115))
    assert (book.quantity, book.average_price) == (-30.0, 110.0)
    assert book.realised_pnl == close(200 - 100)
    assert b.account.cash == close(7_900 + 50 * 110)  # a short sale receives its proceeds
    assert b.equity() == close(13_400 - 30 * 108)  # marked at the close: short gains 60
    assert b.account.realised_pnl == close(100.0)

    b.submit(request("e", "buy", 30.0), at(4), 108.0)
    b.on_bar(SYMBOL, bar(5, 100.0, 101.0, 99.0, 100.0), closed=True, now=at(5))
    assert (book.quantity, book.average_price) == (0.0, 0.0)
    assert b.account.realised_pnl == close(100 + 30 * 10)
    assert b.account.cash == close(10_000 + 400)  # back to cash: start + realised PnL
    assert b.equity() == b.account.cash


def test_drain_returns_what_changed_once():
    b = broker()
    b.submit(request("x", "buy", 1.0), at(0), 100.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 99.0, 100.0), closed=True, now=at(1))
    orders, fills, positions = b.drain()
    assert [o.client_order_id for o in orders] == ["x"]
    assert [f.fill_id for f in fills] == ["x#1"]
    assert [p.symbol for p in positions] == [SYMBOL]
    assert b.drain() == ([], [], [])


def test_a_stop_limit_triggered_inside_a_bar_never_fills_on_a_price_seen_before_its_trigger():
    b = broker()
    hold(b, 10.0, 100.0)
    # a sell stop at 95 that then sells at 97 or better: this bar's high 100 may have come
    # before the fall to 95, so the worse is assumed (no fill on this bar)
    order = sell_stop_limit(b, stop=95.0, limit=97.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 100.0, 94.0, 94.5), closed=True, now=at(1))
    assert order.triggered
    assert order.status == "new"
    b.on_bar(SYMBOL, bar(2, 95.0, 96.0, 94.0, 95.5), closed=True, now=at(2))
    assert order.status == "new"  # a limit at 97 now, not reached
    b.on_bar(SYMBOL, bar(3, 96.0, 98.0, 95.0, 97.5), closed=True, now=at(3))
    assert (order.status, order.average_price) == ("filled", 97.0)


def test_a_stop_limit_whose_limit_lies_past_its_stop_fills_at_the_limit_in_the_trigger_bar():
    b = broker()
    hold(b, 10.0, 100.0)
    order = sell_stop_limit(b, stop=95.0, limit=94.0)
    b.on_bar(SYMBOL, bar(1, 100.0, 100.0, 93.0, 93.5), closed=True, now=at(1))
    assert (order.status, order.average_price) == ("filled", 94.0)


def test_an_order_sized_at_its_fill_keeps_within_max_position():
    b = broker(cash=100_000.0)
    b.sizers[5] = lambda order, price, equity: 8.0  # the deployment's sizer wants 8 units
    limited = {"deployment_id": 5, "max_position": 3.0}
    first = b.submit(request("e1", "buy", None, **limited), at(0), 100.0)
    assert first.status == "new"  # unsized: the limit can only be checked at the fill
    b.on_bar(SYMBOL, bar(1, 100.0, 101.0, 99.0, 100.0), closed=True, now=at(1))
    assert (first.status, first.filled_quantity) == ("filled", 3.0)
    full = b.submit(request("e2", "buy", None, **limited), at(1), 100.0)
    b.on_bar(SYMBOL, bar(2, 100.0, 101.0, 99.0, 100.0), closed=True, now=at(2))
    assert full.status == "cancelled"
    assert full.extra["reason"] == "risk limit: max_position 3"
    short = b.submit(request("e3", "sell", None, **limited), at(2), 100.0)
    b.on_bar(SYMBOL, bar(3, 100.0, 101.0, 99.0, 100.0), closed=True, now=at(3))
    assert short.filled_quantity == 6.0  # from 3 long through flat to 3 short
    assert b.position(SYMBOL).quantity == -3.0
