"""The paper broker: orders, fills simulated from the feed, positions and the account.

>>> broker = PaperBroker(AccountBook("demo", cash=10_000.0), symbols={"SP500"})
>>> order = broker.submit(OrderRequest("c-1", "SP500", "buy", "market", quantity=2.0), now, 4700.0)
>>> broker.on_bar("SP500", candle, closed=True, now=now)   # fills at the candle's open
[FillEvent(order=..., price=..., quantity=2.0, ...)]

Order types: market, limit, stop, stop-limit (a stop may also trail: ``trail_pct``), time in
force GTC or IOC, statuses new -> partially_filled -> filled, or cancelled / rejected /
expired. A request the broker cannot take is *rejected* with its reason (unknown symbol, price
not positive, quantity below the minimum, insufficient cash, a risk limit, the account halted);
the rejected order is kept like any other.

How a bar fills orders (the backtest's rules, docs/trading.md):

1. The bar's first event is its open. Market orders waiting for it fill there, in the order
   they were placed (a deployment's exit before its entry). A stop the open gapped through
   fills at the open (worse than its stop), then a limit the open passed fills at the open.
2. Then the bar's range so far: a sell stop fills at its stop when the low reached it (a buy
   stop when the high did), then a limit at its limit price. Stops before limits: when both
   lie inside one update we cannot know which came first, so the worse is assumed.
   A stop-limit becomes a limit when its stop triggers (a limit better than its stop waits
   for a later update: the price that reached it may have come before the trigger).
3. On the closed bar a trailing stop's anchor moves to the bar's best price (it trails the
   best price seen up to a bar's open, as the backtest does), IOC remainders expire.

Every fill pays the cost model (``CostModel``: half the spread plus slippage on the price,
commission on the value) and may take at most ``volume_cap`` of the bar's volume (the rest
waits for the next bars). Cash is real cash: a buy pays its cost, a short sale receives its
proceeds; equity = cash + positions marked at their last price.

Nothing here does I/O: changes are collected (``drain()``) and the runner writes them in the
transaction of the bar that caused them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import numpy as np

from market.candles import Candle
from trading.orders import (
    DEFAULT_MIN_QUANTITY,
    AccountBook,
    FillEvent,
    OrderError,
    OrderRequest,
    PaperOrder,
    PositionBook,
    Sizer,
    positive,
    rejection,
)


class PaperBroker:
    """One account's broker (see the module docstring)."""

    def __init__(
        self,
        account: AccountBook,
        symbols: set[str] | None = None,
        min_quantity: float = DEFAULT_MIN_QUANTITY,
        expected_cost: Callable[[OrderRequest, datetime], float | None] | None = None,
    ) -> None:
        self.account = account
        # asked for each sized order it accepts, before any fill: kept in order.extra
        self.expected_cost = expected_cost
        self.symbols = set(symbols or ())
        self.min_quantity = min_quantity
        self.positions: dict[str, PositionBook] = {}
        self.orders: dict[str, PaperOrder] = {}  # every order this process knows, by client id
        self._open: dict[str, list[PaperOrder]] = {}  # symbol -> open orders, in arrival order
        self._bar: dict[str, tuple[int, float, float, float]] = {}  # symbol -> ts, o, lo, hi
        self._used_volume: dict[str, float] = {}
        self._recent: dict[int, list[datetime]] = {}  # deployment -> arrival times (1 min)
        self.sizers: dict[int, Sizer] = {}  # deployment id -> sizer of its unsized orders
        self.on_fill: Callable[[FillEvent], None] | None = None
        self.changed_orders: dict[str, PaperOrder] = {}
        self.new_fills: list[FillEvent] = []
        self.changed_positions: set[str] = set()

    # -- state ---------------------------------------------------------------------------
    def restore(self, orders: list[PaperOrder], positions: list[PositionBook]) -> None:
        """Open orders and positions as stored (a restart)."""
        for position in positions:
            self.positions[position.symbol] = position
        for order in orders:
            self.orders[order.client_order_id] = order
            if order.is_open:
                self._open.setdefault(order.symbol, []).append(order)

    def position(self, symbol: str) -> PositionBook:
        book = self.positions.get(symbol)
        if book is None:
            book = self.positions[symbol] = PositionBook(symbol)
        return book

    def equity(self) -> float:
        value = self.account.cash
        for book in self.positions.values():
            if book.quantity and book.last_price is not None:
                value += book.quantity * book.last_price
        return value

    def open_orders(self, symbol: str | None = None) -> list[PaperOrder]:
        if symbol is not None:
            return list(self._open.get(symbol, ()))
        return [o for orders in self._open.values() for o in orders]

    def has_open_orders(self, other_than: str | None = None) -> bool:
        """Whether an order rests (on a symbol other than ``other_than``, when given)."""
        return any(orders for s, orders in self._open.items() if s != other_than)

    def drain(self) -> tuple[list[PaperOrder], list[FillEvent], list[PositionBook]]:
        """The orders changed, fills made and positions moved since the last drain."""
        orders = list(self.changed_orders.values())
        fills = self.new_fills
        positions = [self.positions[s] for s in sorted(self.changed_positions)]
        self.changed_orders, self.new_fills, self.changed_positions = {}, [], set()
        return orders, fills, positions

    # -- orders --------------------------------------------------------------------------
    def submit(
        self, request: OrderRequest, now: datetime, last_price: float | None = None
    ) -> PaperOrder:
        """Take ``request``; the order comes back ``new`` or ``rejected`` (with its reason).

        Raises OrderError for a client order id already used: a replayed request never
        places a second order (the stored one is returned by the caller's lookup instead).
        """
        if request.client_order_id in self.orders:
            raise OrderError(f"client order id {request.client_order_id!r} is already used")
        price = last_price if last_price is not None else self._last(request.symbol)
        order = PaperOrder(
            request,
            "new",
            now,
            price,
            request.quantity,
            request.limit_price,
            request.stop_price,
            updated_at=now,
            placed_bar=self._bar.get(request.symbol, (None,))[0],
        )
        if request.trail_pct is not None and price is not None:
            order.anchor = price
        self.orders[request.client_order_id] = order
        reason = self._rejection(request, price, now)
        if reason is not None:
            order.status, order.reject_reason = "rejected", reason
        else:
            self._open.setdefault(request.symbol, []).append(order)
            if request.deployment_id is not None:
                self._recent.setdefault(request.deployment_id, []).append(now)
            if self.expected_cost is not None and request.quantity is not None:
                order.extra["expected_cost_bps"] = self.expected_cost(request, now)
        self.changed_orders[order.client_order_id] = order
        return order

    def cancel(self, client_order_id: str, now: datetime, reason: str | None = None) -> PaperOrder:
        order = self._known(client_order_id)
        if not order.is_open:
            raise OrderError(
                f"order {client_order_id!r} is {order.status}: only a new or partially filled"
                " order can be cancelled"
            )
        self._finish(order, "cancelled", now, reason)
        return order

    def modify(
        self,
        client_order_id: str,
        now: datetime,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> PaperOrder:
        """Change an open order's quantity (not below what is filled) or prices."""
        order = self._known(client_order_id)
        if not order.is_open:
            raise OrderError(f"order {client_order_id!r} is {order.status}: it cannot be modified")
        if quantity is not None:
            if not positive(quantity):
                raise OrderError(f"quantity={quantity!r} is invalid: expected a number > 0")
            if quantity <= order.filled_quantity:
                raise OrderError(
                    f"quantity={quantity!r} is not above the {order.filled_quantity!r} already"
                    f" filled of order {client_order_id!r}"
                )
        for name, value, kind in (
            ("limit_price", limit_price, ("limit", "stop_limit")),
            ("stop_price", stop_price, ("stop", "stop_limit")),
        ):
            if value is None:
                continue
            if not positive(value):
                raise OrderError(f"{name}={value!r} is invalid: expected a price > 0")
            if order.request.order_type not in kind:
                raise OrderError(
                    f"{name} cannot be set on a {order.request.order_type} order"
                    f" ({client_order_id!r})"
                )
        if quantity is not None:
            order.quantity = quantity
        if limit_price is not None:
            order.limit_price = limit_price
        if stop_price is not None:
            order.stop_price = stop_price
        order.updated_at = now
        self.changed_orders[order.client_order_id] = order
        return order

    def cancel_all(self, now: datetime, reason: str, symbol: str | None = None) -> list[PaperOrder]:
        done = self.open_orders(symbol)
        for order in done:
            self._finish(order, "cancelled", now, reason)
        return done

    # -- the feed ------------------------------------------------------------------------
    def on_bar(
        self, symbol: str, candle: Candle, *, closed: bool, now: datetime
    ) -> list[FillEvent]:
        """Fill what this update of ``symbol``'s bar (the forming one, or the closed bar)
        reaches; returns the fills in the order they happened."""
        ts = int(candle.ts.value // 1_000_000)
        fills_before = len(self.new_fills)
        state = self._bar.get(symbol)
        if state is not None and ts < state[0]:
            return []  # a bar before the one being filled (a looping replay starting over)
        book = self.position(symbol)
        if state is None or state[0] != ts:  # the bar's first event: its open
            self._used_volume[symbol] = 0.0
            self._bar[symbol] = (ts, candle.open, candle.open, candle.open)
            for order in self.open_orders(symbol):
                if order.request.trail_pct is not None:
                    order.anchor = _better(order.side, order.anchor, candle.open)
            self._open_phase(symbol, candle, ts, now)
        self._range_phase(symbol, candle, ts, now)
        _, o, lo, hi = self._bar[symbol]
        self._bar[symbol] = (ts, o, min(lo, candle.low), max(hi, candle.high))
        book.last_price = candle.close
        if closed:
            for order in self.open_orders(symbol):
                if order.request.trail_pct is not None:
                    extreme = candle.high if order.side == "sell" else candle.low
                    order.anchor = _better(order.side, order.anchor, extreme)
                if order.request.time_in_force == "IOC":
                    self._finish(order, "expired", now, "IOC: not filled on the bar it arrived")
        return self.new_fills[fills_before:]

    def resting_reach(
        self, symbol: str, open_: np.ndarray, high: np.ndarray, low: np.ndarray
    ) -> int | None:
        """Of closed bars of ``symbol`` (arrays, one after another, nothing placed among
        them), the first one on which an order resting on ``symbol`` could fill or trigger
        (``len(open_)``: none); None when an order needs every bar's code (a market, IOC or
        stop-limit order, a trailing stop without its anchor). As :meth:`on_bar`: a trailing
        anchor moves to the bar's open, then the range is checked, then it moves to the
        bar's best price."""
        first = len(open_)
        for order in self._open.get(symbol, ()):
            request = order.request
            if request.time_in_force != "GTC" or request.order_type not in ("stop", "limit"):
                return None
            sell = order.side == "sell"
            if request.order_type == "limit":
                if order.limit_price is None:
                    return None
                hit = high >= order.limit_price if sell else low <= order.limit_price
            elif request.trail_pct is None:
                if order.stop_price is None:
                    return None
                hit = low <= order.stop_price if sell else high >= order.stop_price
            else:
                if order.anchor is None:
                    return None
                pct = request.trail_pct
                if sell:
                    seen = np.maximum(open_, high)[:-1]
                    before = np.maximum.accumulate(np.concatenate(([order.anchor], seen)))
                    level = np.maximum(before, open_) * (1 - pct)
                    if order.stop_price is not None:
                        level = np.maximum(level, order.stop_price)
                    hit = low <= level
                else:
                    seen = np.minimum(open_, low)[:-1]
                    before = np.minimum.accumulate(np.concatenate(([order.anchor], seen)))
                    level = np.minimum(before, open_) * (1 + pct)
                    if order.stop_price is not None:
                        level = np.minimum(level, order.stop_price)
                    hit = high >= level
            reached = np.flatnonzero(hit)
            if len(reached):
                first = min(first, int(reached[0]))
        return first

    def on_quiet_bars(
        self,
        symbol: str,
        ts: int,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: float,
    ) -> None:
        """Closed bars of ``symbol`` on which no resting order fills or triggers (see
        :meth:`resting_reach`): where :meth:`on_bar` would leave the books after them
        (``ts``, ``close``: the last bar's; the arrays: every bar's)."""
        self.position(symbol).last_price = close
        self._used_volume[symbol] = 0.0
        o = float(open_[-1])
        self._bar[symbol] = (ts, o, min(o, float(low[-1])), max(o, float(high[-1])))
        for order in self._open.get(symbol, ()):
            if order.request.trail_pct is not None:
                if order.side == "sell":
                    best = max(float(open_.max()), float(high.max()))
                else:
                    best = min(float(open_.min()), float(low.min()))
                order.anchor = _better(order.side, order.anchor, best)

    def fill_now(
        self, request: OrderRequest, base: float, now: datetime, trigger: str = "end"
    ) -> FillEvent | None:
        """A market order filled at once at ``base`` (the replay's final close-out)."""
        order = self.submit(request, now, base)
        if not order.is_open:
            return None
        self._open[request.symbol].remove(order)
        ts = self._bar.get(request.symbol, (0,))[0]
        event = self._fill(order, base, order.quantity or 0.0, now, trigger, ts)
        return event

    # -- inside ----------------------------------------------------------------------------
    def _open_phase(self, symbol: str, candle: Candle, ts: int, now: datetime) -> None:
        o = candle.open
        for order in self.open_orders(symbol):
            if order.request.order_type == "market" and order.placed_bar != ts:
                self._try(order, o, now, "market", ts, candle)
        for order in self.open_orders(symbol):
            if order.placed_bar == ts:
                continue
            stop = self._stop_level(order)
            if stop is not None and _through(order.side, o, stop):
                self._trigger(order, o, now, ts, candle)
        for order in self.open_orders(symbol):
            if order.placed_bar == ts and order.request.order_type != "market":
                continue
            if self._is_limit(order) and _through_limit(order.side, o, order.limit_price):
                self._try(order, o, now, "limit", ts, candle)

    def _range_phase(self, symbol: str, candle: Candle, ts: int, now: datetime) -> None:
        unseen: set[str] = set()  # stop-limits whose limit only a price before the trigger hit
        for order in self.open_orders(symbol):
            if order.request.order_type == "market":
                if order.placed_bar == ts:  # arrived during this bar: the current price
                    self._try(order, candle.close, now, "market", ts, candle)
                continue
            stop = self._stop_level(order)
            if stop is None:
                continue
            reached = candle.high >= stop if order.side == "buy" else candle.low <= stop
            if reached:
                self._trigger(order, stop, now, ts, candle)
                if order.triggered and not _through_limit(order.side, stop, order.limit_price):
                    unseen.add(order.client_order_id)
        for order in self.open_orders(symbol):
            if order.client_order_id in unseen:
                continue
            if self._is_limit(order):
                limit = order.limit_price
                assert limit is not None
                reached = candle.low <= limit if order.side == "buy" else candle.high >= limit
                if reached:
                    self._try(order, limit, now, "limit", ts, candle)

    def _stop_level(self, order: PaperOrder) -> float | None:
        """The price a stop (or a stop-limit not yet triggered) fires at; None for others."""
        kind = order.request.order_type
        if kind not in ("stop", "stop_limit") or order.triggered:
            return None
        levels = [order.stop_price] if order.stop_price is not None else []
        pct = order.request.trail_pct
        if pct is not None and order.anchor is not None:
            levels.append(
                order.anchor * (1 - pct) if order.side == "sell" else order.anchor * (1 + pct)
            )
        if not levels:
            return None
        return max(levels) if order.side == "sell" else min(levels)

    def _stop_reason(self, order: PaperOrder) -> str:
        fixed = order.stop_price
        pct = order.request.trail_pct
        if pct is None or order.anchor is None:
            return "stop"
        trail = order.anchor * (1 - pct) if order.side == "sell" else order.anchor * (1 + pct)
        if fixed is None:
            return "trailing_stop"
        # the fixed stop counts when it is at least as tight (the backtest's tie rule)
        tighter = fixed >= trail if order.side == "sell" else fixed <= trail
        return "stop" if tighter else "trailing_stop"

    def _is_limit(self, order: PaperOrder) -> bool:
        kind = order.request.order_type
        return order.is_open and (kind == "limit" or (kind == "stop_limit" and order.triggered))

    def _trigger(
        self, order: PaperOrder, base: float, now: datetime, ts: int, candle: Candle
    ) -> None:
        if not order.is_open:
            return
        if order.request.order_type == "stop_limit":
            order.triggered = True
            self.changed_orders[order.client_order_id] = order
            return
        self._try(order, base, now, self._stop_reason(order), ts, candle)

    def _try(
        self, order: PaperOrder, base: float, now: datetime, trigger: str, ts: int, candle: Candle
    ) -> None:
        """Fill what ``order`` can at ``base`` on this bar (volume cap, sizing, cash)."""
        if not order.is_open:
            return
        if order.quantity is None:  # sized at its fill: the owner's sizer
            sizer = self.sizers.get(order.request.deployment_id or -1)
            price = order.request.costs.fill_price(base, order.side == "buy")
            units = sizer(order, price, self.equity()) if sizer is not None else 0.0
            limit = order.request.max_position
            if limit is not None and not order.request.reduce_only and units > 0:
                # submit() could not check an unsized order: the fill keeps within the limit
                held = self.position(order.symbol).quantity
                units = min(units, max(0.0, limit - (held if order.side == "buy" else -held)))
                if units < self.min_quantity:
                    self._finish(order, "cancelled", now, f"risk limit: max_position {limit:g}")
                    return
            if not (units > 0 and math.isfinite(units)) or units < self.min_quantity:
                self._finish(order, "cancelled", now, "sized to zero units at the fill")
                return
            order.quantity = units
        remaining = order.remaining or 0.0
        if order.request.reduce_only:
            held = self.position(order.symbol).quantity
            can = -held if order.side == "buy" else held
            remaining = min(remaining, max(0.0, can))
            if remaining <= 0:
                self._finish(order, "cancelled", now, "reduce-only: no position left to reduce")
                return
        cap = order.request.volume_cap
        if cap is not None:
            room = cap * candle.volume - self._used_volume.get(order.symbol, 0.0)
            remaining = min(remaining, max(0.0, room))
            if remaining < self.min_quantity:
                return
            self._used_volume[order.symbol] = self._used_volume.get(order.symbol, 0.0) + remaining
        self._fill(order, base, remaining, now, trigger, ts)

    def _fill(
        self, order: PaperOrder, base: float, quantity: float, now: datetime, trigger: str, ts: int
    ) -> FillEvent:
        request = order.request
        buy = order.side == "buy"
        price = request.costs.fill_price(base, buy)
        fee = request.costs.fee(quantity, price, first_fill=order.fills == 0)
        realised = self._apply(order.symbol, quantity if buy else -quantity, price, now)
        account = self.account
        account.cash += (-quantity * price if buy else quantity * price) - fee
        account.fees += fee
        account.realised_pnl += realised
        account.updated_at = now
        total = order.filled_quantity + quantity
        order.average_price = (
            price
            if order.average_price is None
            else (order.average_price * order.filled_quantity + price * quantity) / total
        )
        order.filled_quantity = total
        order.fees += fee
        order.fills += 1
        order.updated_at = now
        done = order.quantity is None or total >= order.quantity * (1 - 1e-12)
        order.status = "filled" if done else "partially_filled"
        if done:
            self._drop(order)
        self.changed_orders[order.client_order_id] = order
        event = FillEvent(
            order, f"{order.client_order_id}#{order.fills}", order.symbol, order.side, base,
            price, quantity, fee, realised, now, trigger, ts, order.fills,
        )  # fmt: skip
        self.new_fills.append(event)
        if done and request.oco_group is not None:
            for other in self.open_orders(order.symbol):
                if other.request.oco_group == request.oco_group:
                    self._finish(other, "cancelled", now, f"OCO: {order.client_order_id} filled")
        if self.on_fill is not None:
            self.on_fill(event)
        return event

    def _apply(self, symbol: str, signed: float, price: float, now: datetime) -> float:
        """Move the position by ``signed`` units at ``price``; returns the PnL realised."""
        book = self.position(symbol)
        held = book.quantity
        realised = 0.0
        if held == 0 or (held > 0) == (signed > 0):
            new = held + signed
            book.average_price = (book.average_price * abs(held) + price * abs(signed)) / abs(new)
            book.quantity = new
        else:
            closing = min(abs(signed), abs(held))
            realised = closing * (price - book.average_price) * (1 if held > 0 else -1)
            new = held + signed
            if abs(new) <= 1e-12 * max(abs(held), 1.0):
                new = 0.0
            if new != 0 and (new > 0) != (held > 0):  # crossed through flat
                book.average_price = price
            elif new == 0:
                book.average_price = 0.0
            book.quantity = new
        book.realised_pnl += realised
        book.last_price = price if book.last_price is None else book.last_price
        book.updated_at = now
        self.changed_positions.add(symbol)
        return realised

    def _rejection(self, request: OrderRequest, price: float | None, now: datetime) -> str | None:
        recent = 0
        if request.deployment_id is not None:
            times = [
                t
                for t in self._recent.get(request.deployment_id, ())
                if (now - t).total_seconds() < 60
            ]
            self._recent[request.deployment_id] = times
            recent = len(times)
        return rejection(
            request,
            account=self.account,
            symbols=self.symbols,
            min_quantity=self.min_quantity,
            held=self.position(request.symbol).quantity,
            price=price,
            recent_orders=recent,
            sized=request.deployment_id is not None and request.deployment_id in self.sizers,
        )

    def _known(self, client_order_id: str) -> PaperOrder:
        order = self.orders.get(client_order_id)
        if order is None:
            raise OrderError(f"unknown order {client_order_id!r}")
        return order

    def _finish(self, order: PaperOrder, status: str, now: datetime, reason: str | None) -> None:
        order.status = status
        order.updated_at = now
        if reason:
            order.extra["reason"] = reason
        self._drop(order)
        self.changed_orders[order.client_order_id] = order

    def _drop(self, order: PaperOrder) -> None:
        orders = self._open.get(order.symbol)
        if orders and order in orders:
            orders.remove(order)

    def _last(self, symbol: str) -> float | None:
        book = self.positions.get(symbol)
        return book.last_price if book is not None else None


def _through(side: str, price: float, stop: float) -> bool:
    """Whether ``price`` is at or past a ``side`` stop (a sell stop below, a buy stop above)."""
    return price <= stop if side == "sell" else price >= stop


def _through_limit(side: str, price: float, limit: float | None) -> bool:
    if limit is None:
        return False
    return price <= limit if side == "buy" else price >= limit


def _better(side: str, anchor: float | None, price: float) -> float:
    """A trailing stop's new anchor: the highest price for a sell stop, the lowest for a buy."""
    if anchor is None:
        return price
    return max(anchor, price) if side == "sell" else min(anchor, price)


__all__ = [
    "AccountBook",
    "FillEvent",
    "OrderError",
    "OrderRequest",
    "PaperBroker",
    "PaperOrder",
    "PositionBook",
]
