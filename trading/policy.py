"""How one deployment turns its strategy's signals into orders: the backtest's rules, live.

>>> policy = DeploymentPolicy(deployment_id=7, symbol="SP500", settings=settings, direction="both")
>>> policy.on_bar_open(candle)                       # before the broker sees the bar
>>> broker.on_bar("SP500", candle, closed=True, now=now)
>>> requests = policy.on_bar_close(candle, fired)    # the orders of this bar's signals

The rules are those of the backtest engine's bar loop (:func:`analytics._kernel.simulate`,
``fill="next_open"``), so that a paper replay trades exactly as the backtest:

- a bar's signals are decided on its close (one position at a time; an entry of the other
  side closes the position first) and become market orders that fill at the next bar's open,
  the exit before the entry;
- an entry is sized when it fills (all in, a fraction or a quantity of the equity then, or
  half-Kelly of the deployment's own last ``kelly_window`` trade returns once it has
  ``kelly_min_trades``); a half-Kelly entry sized to nothing is followed on paper, so Kelly
  keeps learning from the signals it did not take;
- a filled entry places its protective orders at once: one stop (the fixed stop and the
  trailing stop as one order, the tighter counting) and a take-profit limit, one-cancels-other;
- each closed position is a trade with the backtest's columns (entry and exit bar, prices with
  costs, commission of both fills, exit reason, MAE and MFE from the prices seen).

The state (:meth:`state`) is plain JSON, stored with the deployment in the transaction of each
bar, so a restart resumes exactly (:meth:`restore`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.backtest import half_kelly
from market.candles import Candle
from trading.broker import FillEvent, OrderRequest, PaperOrder
from trading.config import DeploymentSettings

EXIT_REASON = {
    "exit": "signal",
    "stop": "stop_loss",
    "trailing_stop": "trailing_stop",
    "limit": "take_profit",
    "drawdown_halt": "drawdown_halt",
    "end": "end",
}


@dataclass
class PositionState:
    side: int = 0  # 1 long, -1 short, 0 flat
    size: float = 0.0  # signed units
    entry_price: float = 0.0  # with costs
    entry_comm: float = 0.0
    entry_bar: int = 0
    entry_ts: int = 0  # epoch ms
    seen_lo: float = 0.0
    seen_hi: float = 0.0


@dataclass
class DeploymentPolicy:
    deployment_id: int
    symbol: str
    settings: DeploymentSettings
    direction: str
    name: str = ""
    position: PositionState = field(default_factory=PositionState)
    paper_side: int = 0
    paper_entry: float = 0.0
    paper_close_pending: bool = False
    history: list[float] = field(default_factory=list)  # trade returns (last kelly_window)
    trades_closed: int = 0  # with paper trades: what half-Kelly counts
    bar: int = -1  # index of the current bar since the deployment (or replay) started
    bar_ts: int = 0
    halted: bool = False
    trades: list[dict[str, Any]] = field(default_factory=list)  # closed since the last drain
    _open: float = math.nan  # the current bar's open (for the MAE/MFE of a stop exit)

    # -- the bar ---------------------------------------------------------------------------
    def on_bar_open(self, candle: Candle) -> None:
        """The bar's open, before the broker fills at it: settle a paper close due there."""
        self.bar += 1
        self.bar_ts = _ms(candle.ts)
        self._open = candle.open
        if self.paper_close_pending:
            if self.paper_side != 0:
                self._learn(self.paper_side * (candle.open / self.paper_entry - 1))
                self.paper_side = 0
            self.paper_close_pending = False

    def on_quiet_bars(
        self, n: int, last_ts: int, last_open: float, low: float, high: float
    ) -> None:
        """``n`` bars without a signal, a fill or a paper close due (the engine's quiet
        run): what :meth:`on_bar_open` and :meth:`on_bar_close` would do bar by bar, with
        ``low``/``high`` the run's range and ``last_ts``/``last_open`` its last bar's."""
        self.bar += n
        self.bar_ts = last_ts
        self._open = last_open
        pos = self.position
        if pos.side != 0:
            pos.seen_lo = min(pos.seen_lo, low)
            pos.seen_hi = max(pos.seen_hi, high)

    def on_fill(self, fill: FillEvent) -> list[OrderRequest]:
        """Book one of this deployment's fills; returns protective orders to place."""
        purpose = fill.order.request.purpose
        pos = self.position
        if purpose == "entry":
            side = 1 if fill.side == "buy" else -1
            if pos.side == 0:
                pos.side, pos.size = side, side * fill.quantity
                pos.entry_price, pos.entry_comm = fill.price, fill.fee
                pos.entry_bar, pos.entry_ts = self.bar, fill.bar_ts
                pos.seen_lo = pos.seen_hi = fill.base
            else:  # a partial fill adding to the entry
                total = abs(pos.size) + fill.quantity
                pos.entry_price = (
                    pos.entry_price * abs(pos.size) + fill.price * fill.quantity
                ) / total
                pos.size, pos.entry_comm = side * total, pos.entry_comm + fill.fee
            if fill.order.status == "filled":
                return self._protective(fill)
            return []
        if pos.side == 0:
            return []
        trigger = fill.trigger if purpose == "protect" else purpose
        self._close(fill, EXIT_REASON.get(trigger, "signal"))
        return []

    def on_bar_close(
        self, candle: Candle, fired: tuple[bool, bool, bool, bool], *, last: bool = False
    ) -> list[OrderRequest]:
        """After the broker saw the closed bar: the orders of this bar's signals
        (``fired`` = entry_long, exit_long, entry_short, exit_short). ``last``: the replay's
        final bar, whose decisions have no next open to fill at (the backtest skips them)."""
        pos = self.position
        if pos.side != 0:  # held through the bar's range (entered at its open included)
            pos.seen_lo = min(pos.seen_lo, candle.low)
            pos.seen_hi = max(pos.seen_hi, candle.high)
        if self.halted or last:
            return []
        el, xl, es, xs = fired
        held = pos.side if pos.side != 0 else self.paper_side
        if not (el or xl or es or xs):  # no signal (most bars): nothing to decide
            return []
        close_now, open_side = decide(el, xl, es, xs, held, self.direction)
        requests: list[OrderRequest] = []
        ts = _ms(candle.ts)
        when = candle.ts.to_pydatetime()
        if close_now and pos.side != 0:
            requests.append(self._market(ts, "exit", -pos.side, abs(pos.size), when, candle.close))
        if close_now and self.paper_side != 0:
            self.paper_close_pending = True
        if open_side != 0:
            requests.append(self._market(ts, "entry", open_side, None, when, candle.close))
        return requests

    def halt(self, candle: Candle) -> list[OrderRequest]:
        """The account's drawdown limit was breached on this bar's close: no more decisions,
        the position closes at the next open."""
        self.halted = True
        pos = self.position
        if pos.side == 0:
            return []
        when = candle.ts.to_pydatetime()
        return [
            self._market(
                _ms(candle.ts), "drawdown_halt", -pos.side, abs(pos.size), when, candle.close
            )
        ]

    def end_request(self, candle: Candle) -> OrderRequest | None:
        """The replay's close-out of a position still open after its last bar."""
        pos = self.position
        if pos.side == 0:
            return None
        when = candle.ts.to_pydatetime()
        return self._market(_ms(candle.ts), "end", -pos.side, abs(pos.size), when, candle.close)

    # -- sizing ----------------------------------------------------------------------------
    def size(self, order: PaperOrder, price: float, equity: float) -> float:
        """Units of an entry filled at ``price`` (costs included) with ``equity`` now."""
        s = self.settings
        side = 1 if order.side == "buy" else -1
        if s.sizing == "quantity":
            units = float(s.size or 0.0)
        else:
            fraction = s.sizing_fraction()
            if s.sizing == "half_kelly" and self.trades_closed >= s.kelly_min_trades:
                fraction = half_kelly(self.history[-s.kelly_window :])
            if fraction <= 0:
                units = 0.0
            else:
                units = (fraction * equity - s.commission_fixed) / (price * (1 + s.commission_pct))
        if s.whole_units:
            units = float(np.floor(units))
        if units <= 0 and s.sizing == "half_kelly":
            self.paper_side, self.paper_entry = side, price
        return units

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        pos = self.position
        return {
            "position": vars(pos).copy(),
            "paper_side": self.paper_side,
            "paper_entry": self.paper_entry,
            "paper_close_pending": self.paper_close_pending,
            "history": self.history[-max(self.settings.kelly_window, 1) :],
            "trades_closed": self.trades_closed,
            "halted": self.halted,
        }

    def restore(self, state: dict[str, Any], bar: int = -1, bar_ts: int | None = None) -> None:
        """Back to a stored state; ``bar``/``bar_ts``: the deployment's bar index and last
        bar (stored apart from the state)."""
        self.bar, self.bar_ts = bar, bar_ts or 0
        if not state:
            return
        self.position = PositionState(**state["position"])
        self.paper_side = int(state["paper_side"])
        self.paper_entry = float(state["paper_entry"])
        self.paper_close_pending = bool(state["paper_close_pending"])
        self.history = [float(r) for r in state["history"]]
        self.trades_closed = int(state["trades_closed"])
        self.halted = bool(state["halted"])

    def drain_trades(self) -> list[dict[str, Any]]:
        trades, self.trades = self.trades, []
        return trades

    # -- inside ----------------------------------------------------------------------------
    def _client_id(self, ts: int, purpose: str) -> str:
        return f"d{self.deployment_id}-{ts}-{purpose}"

    def _market(
        self, ts: int, purpose: str, side: int, quantity: float | None, when: datetime, price: float
    ) -> OrderRequest:
        s = self.settings
        return OrderRequest(
            self._client_id(ts, purpose),
            self.symbol,
            "buy" if side > 0 else "sell",
            "market",
            quantity=quantity,
            reduce_only=purpose != "entry",
            purpose=purpose,
            deployment_id=self.deployment_id,
            decision_time=when,
            decision_price=price,
            costs=s.costs,
            volume_cap=s.volume_cap,
            max_position=s.max_position if purpose == "entry" else None,
            max_orders_per_minute=s.max_orders_per_minute,
        )

    def _protective(self, fill: FillEvent) -> list[OrderRequest]:
        s = self.settings
        pos = self.position
        out: list[OrderRequest] = []
        group = self._client_id(fill.bar_ts, "oco")
        exit_side = "sell" if pos.side > 0 else "buy"
        entry = pos.entry_price
        common = {
            "quantity": abs(pos.size),
            "reduce_only": True,
            "oco_group": group,
            "purpose": "protect",
            "deployment_id": self.deployment_id,
            "decision_time": fill.time,
            "decision_price": fill.base,
            "costs": s.costs,
        }
        if s.stop_loss_pct is not None or s.trailing_stop_pct is not None:
            stop = None
            if s.stop_loss_pct is not None:
                stop = (
                    entry * (1 - s.stop_loss_pct) if pos.side > 0 else entry * (1 + s.stop_loss_pct)
                )
            out.append(
                OrderRequest(
                    self._client_id(fill.bar_ts, "stop"),
                    self.symbol,
                    exit_side,
                    "stop",
                    stop_price=stop,
                    trail_pct=s.trailing_stop_pct,
                    **common,  # type: ignore[arg-type]
                )
            )
        if s.take_profit_pct is not None:
            target = (
                entry * (1 + s.take_profit_pct) if pos.side > 0 else entry * (1 - s.take_profit_pct)
            )
            out.append(
                OrderRequest(
                    self._client_id(fill.bar_ts, "target"),
                    self.symbol,
                    exit_side,
                    "limit",
                    limit_price=target,
                    **common,  # type: ignore[arg-type]
                )
            )
        return out

    def _close(self, fill: FillEvent, reason: str) -> None:
        pos = self.position
        side, size = pos.side, pos.size
        commission = fill.fee
        total = commission + pos.entry_comm
        sign = 1.0 if side > 0 else -1.0
        lo_seen, hi_seen = min(pos.seen_lo, fill.base), max(pos.seen_hi, fill.base)
        if reason in ("stop_loss", "trailing_stop", "take_profit"):
            # the backtest widens the range by the bar's open before a stop fills inside it
            lo_seen, hi_seen = min(lo_seen, self._open), max(hi_seen, self._open)
        entry = pos.entry_price
        adverse = (lo_seen if side > 0 else hi_seen) / entry - 1
        favourable = (hi_seen if side > 0 else lo_seen) / entry - 1
        return_pct = sign * (fill.price / entry - 1) - total / (abs(size) * entry)
        trade = fill.order.extra["round_trip"] = {
            "entry_ts": pos.entry_ts,
            "exit_ts": fill.bar_ts,
            "entry_bar": pos.entry_bar,
            "exit_bar": self.bar,
            "size": size,
            "entry_price": entry,
            "exit_price": fill.price,
            "commission": total,
            "pnl": size * (fill.price - entry) - total,
            "return_pct": return_pct,
            "exit_reason": reason,
            "mae": min(0.0, sign * adverse),
            "mfe": max(0.0, sign * favourable),
        }
        self.trades.append(trade)
        self._learn(return_pct)
        self.position = PositionState()

    def _learn(self, value: float) -> None:
        self.history.append(value)
        self.trades_closed += 1
        keep = max(self.settings.kelly_window, 1)
        if len(self.history) > 2 * keep:
            del self.history[:-keep]


def decide(el: bool, xl: bool, es: bool, xs: bool, held: int, direction: str) -> tuple[bool, int]:
    """(close now, side to open) from one bar's signals and the side held (paper included):
    the backtest kernel's ``_decide`` outside compat mode."""
    long_ok, short_ok = direction != "short", direction != "long"
    want_long = el and not xl and long_ok
    want_short = es and not xs and short_ok
    if want_long and want_short:
        want_long = want_short = False
    close_now = (held > 0 and (xl or es)) or (held < 0 and (xs or el))
    open_side = 0
    if (0 if close_now else held) == 0:
        open_side = 1 if want_long else (-1 if want_short else 0)
    return close_now, open_side


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


__all__ = ["EXIT_REASON", "DeploymentPolicy", "PositionState", "decide"]
