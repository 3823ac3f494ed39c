"""Transaction-cost analysis per order, over whole columns (docs/tca.md).

>>> per_order = order_tca(orders, fills, candles)            # one row per order
>>> per_fill = fill_markouts(orders, fills, candles)         # one row per fill

Every formula is issue 16's convention, written out in docs/tca.md; side s = +1 buy, -1 sell,
costs in bps of their reference price, positive = a cost to the trader. A metric that cannot be
computed is NaN and the order's ``reason`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from analytics.tca.bars import NO_BAR, NO_VOLUME, OK, TOO_LATE, Market, Rows
from analytics.tca.conventions import QTY_TOLERANCE, TCASettings, markout_column
from analytics.tca.inputs import NAT, Inputs, read_inputs
from analytics.tca.reasons import Reasons

BPS = 1e4
SOURCES = ("", "bar", "order")  # arrival_price_source: none, the bars, the order's own
TEXT_COLUMNS = ("order_id", "account_id", "strategy_id", "symbol", "side", "order_type",
                "venue", "algo")  # fmt: skip


@dataclass(frozen=True)
class Analysis:
    """What one read of the inputs serves: the arrays, the bars, each order's symbol, the
    orders (by arrival) and the fills (by time) grouped by symbol for the bar lookups."""

    inputs: Inputs
    market: Market
    symbol_code: np.ndarray  # per order
    order_rows: Rows
    fill_rows: Rows
    settings: TCASettings

    @classmethod
    def of(
        cls,
        orders: pd.DataFrame,
        fills: pd.DataFrame,
        candles: Mapping[str, pd.DataFrame],
        settings: TCASettings | None = None,
    ) -> Analysis:
        settings = settings or TCASettings()
        inputs = read_inputs(orders, fills)
        codes, symbols = orders["symbol"].factorize()
        market = Market(candles, list(symbols), settings)
        order_rows = market.rows(codes, inputs.arrival_ns)
        fill_rows = market.rows(codes[inputs.fill_order], inputs.fill_ns, inputs.fill_time_order)
        return cls(inputs, market, codes.astype(np.int64), order_rows, fill_rows, settings)

    @cached_property
    def fill_markouts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per markout column: (each fill's markout in bps, its reason code)."""
        return _markouts_of(self)


def order_tca(
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    candles: Mapping[str, pd.DataFrame],
    settings: TCASettings | None = None,
) -> pd.DataFrame:
    """One row per order (indexed like ``orders``): quantities, prices and every metric of
    docs/tca.md, NaN where n/a with the causes in ``reason``. Raises
    :class:`analytics.tca.TCAInputError` naming each bad row and column."""
    return per_order(Analysis.of(orders, fills, candles, settings))


def fill_markouts(
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    candles: Mapping[str, pd.DataFrame],
    settings: TCASettings | None = None,
) -> pd.DataFrame:
    """One row per fill (indexed like ``fills``): ``order_id``, ``fill_time``, ``fill_qty``,
    ``side`` and its markout at each horizon, s x (close at fill time + h - fill price) /
    fill price x 1e4 (NaN where no bar holds fill time + h)."""
    return markouts_frame(Analysis.of(orders, fills, candles, settings))


def markouts_frame(analysis: Analysis) -> pd.DataFrame:
    """:func:`fill_markouts` of inputs already read."""
    inp = analysis.inputs
    out = inp.fills.loc[:, ["order_id"]]
    out["fill_time"] = pd.DatetimeIndex(inp.fill_ns, tz="UTC")
    out["fill_qty"] = inp.fill_qty
    out["side"] = inp.orders["side"].array.take(inp.fill_order)  # its order's
    for column, (values, _) in analysis.fill_markouts.items():
        out[column] = values
    return out


def _markouts_of(analysis: Analysis) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    inp = analysis.inputs
    side = inp.side[inp.fill_order]
    out = {}
    for horizon in analysis.settings.markout_horizons:
        later, why = analysis.market.close_holding(analysis.fill_rows, inp.fill_ns + horizon.value)
        out[markout_column(horizon)] = (
            _bps(side, later - inp.fill_price, inp.fill_price),
            why,
        )
    return out


def _bps(side: np.ndarray | int, move: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """side x move / reference in basis points (+ 0.0: a sell's zero is 0, not -0)."""
    return side * move / reference * BPS + 0.0


def _per_order_mean(f: np.ndarray, weight: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per order, the ``weight``-weighted mean of its fills' ``values``; NaN when any is."""
    missing = np.isnan(values)
    total = np.bincount(f, np.where(missing, 0.0, weight * values), minlength=n)
    weights = np.bincount(f, weight, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / weights
    return np.where(np.bincount(f, missing, minlength=n) > 0, np.nan, mean)


def _fill_sums(inp: Inputs) -> dict[str, np.ndarray]:
    n, f = inp.n, inp.fill_order
    last = np.full(n, NAT, np.int64)
    np.maximum.at(last, f, inp.fill_ns)
    filled = np.bincount(f, inp.fill_qty, minlength=n)
    notional = np.bincount(f, inp.fill_qty * inp.fill_price, minlength=n)
    count = np.bincount(f, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(count > 0, notional / filled, np.nan)
    return {
        "filled": filled,
        "filled_notional": notional,
        "fees": np.bincount(f, inp.fill_fee, minlength=n),
        "fills": count,
        "average": average,
        "last_ns": last,
    }


def _arrival_price(analysis: Analysis, reasons: Reasons) -> tuple[np.ndarray, pd.Categorical]:
    """The arrival price (the order's, else the open of the first bar at or after the arrival)
    and where it came from."""
    inp = analysis.inputs
    from_bar, why = analysis.market.open_at_or_after(analysis.order_rows, inp.arrival_ns)
    need = np.isnan(inp.arrival_price)
    price = np.where(need, from_bar, inp.arrival_price)
    source = np.where(need, np.where(why == OK, 1, 0), 2)  # codes into SOURCES
    reasons.mark("arrival_no_bar", need & (why == NO_BAR))
    reasons.mark("arrival_too_late", need & (why == TOO_LATE))
    return price, pd.Categorical.from_codes(source, SOURCES)


def _shortfall(
    inp: Inputs, sums: dict, arrival: np.ndarray, end_price: np.ndarray
) -> dict[str, np.ndarray]:
    """Perold's implementation shortfall and its exact split, in bps of order_qty x decision
    price: delay + trading + opportunity + fees = total."""
    s, decision, qty = inp.side, inp.decision_price, inp.order_qty
    filled, notional = sums["filled"], sums["filled_notional"]
    unfilled = _unfilled(qty, filled)
    some = filled > 0
    executed = s * (notional - filled * decision)  # = delay + trading
    delay = np.where(some, s * filled * (arrival - decision), 0.0)
    trading = np.where(some, s * (notional - filled * arrival), 0.0)
    opportunity = np.where(unfilled > 0, s * unfilled * (end_price - decision), 0.0)
    paper = qty * decision
    total = executed + opportunity + sums["fees"]
    return {
        "is_bps": _bps(1, total, paper),
        "is_delay_bps": _bps(1, delay, paper),
        "is_trading_bps": _bps(1, trading, paper),
        "is_opportunity_bps": _bps(1, opportunity, paper),
        "is_fees_bps": _bps(1, sums["fees"], paper),
    }


def _unfilled(qty: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """What was not filled; a rounding's worth (QTY_TOLERANCE of the order) is nothing."""
    left = qty - filled
    return np.where(left > qty * QTY_TOLERANCE, left, 0.0)


def _end_price(analysis: Analysis, sums: dict, reasons: Reasons) -> np.ndarray:
    """The close of the bar holding the order's end (end_time, else its last fill), for
    orders with quantity left unfilled."""
    inp = analysis.inputs
    end = np.where(inp.end_ns != NAT, inp.end_ns, sums["last_ns"])
    need = _unfilled(inp.order_qty, sums["filled"]) > 0
    price, why = analysis.market.close_holding(analysis.order_rows, end)
    unknown = end == NAT
    reasons.mark("no_end", need & unknown)
    reasons.mark("end_no_bar", need & (why == NO_BAR) & ~unknown)
    return np.where(need, price, np.nan)


def per_order(analysis: Analysis) -> pd.DataFrame:
    """:func:`order_tca` of inputs already read."""
    columns, reasons = order_metrics(analysis)
    frame = analysis.inputs.orders.loc[:, list(TEXT_COLUMNS)]
    for name, values in columns.items():
        frame[name] = values
    frame["reason"] = reasons.column()  # categorical: a few distinct texts
    return frame


def order_metrics(analysis: Analysis) -> tuple[dict[str, np.ndarray | pd.Categorical], Reasons]:
    """The columns of :func:`per_order` after its texts, as arrays (what the decision dataset
    reads, without a frame), and the reasons of the n/a ones."""
    inp, settings, market = analysis.inputs, analysis.settings, analysis.market
    n, s = inp.n, inp.side
    reasons = Reasons(n, settings)
    no_candles = np.array([b is None for b in market.bars], bool)[analysis.symbol_code]
    reasons.mark("no_candles", no_candles)
    sums = _fill_sums(inp)
    some = sums["fills"] > 0
    reasons.mark("no_fills", ~some)
    avg, filled = sums["average"], sums["filled"]
    arrival, source = _arrival_price(analysis, reasons)
    end_price = _end_price(analysis, sums, reasons)
    reasons.mark("no_decision_price", np.isnan(inp.decision_price))
    reasons.mark("no_decision_time", inp.decision_ns == NAT)
    slippage = _bps(s, avg - arrival, arrival)

    last = sums["last_ns"]  # NAT without fills: no bar opens in [arrival, NaT]
    rows = analysis.order_rows
    vwap, twap, why_vwap, why_twap = market.interval(rows, inp.arrival_ns, last)
    reasons.mark("interval_no_bar", some & (why_twap == NO_BAR))
    reasons.mark("interval_no_volume", some & (why_vwap == NO_VOLUME))

    later = np.where(some, last + settings.impact_horizon.value, NAT)
    after, why = market.close_holding(rows, later)
    reasons.mark("impact_no_bar", some & (why == NO_BAR))
    permanent = _bps(s, after - arrival, arrival)

    markouts = {}
    for column, (values, why) in analysis.fill_markouts.items():
        markouts[column] = _per_order_mean(inp.fill_order, inp.fill_qty, values, n)
        bad = np.bincount(inp.fill_order, why == NO_BAR, minlength=n) > 0
        reasons.mark(column.removesuffix("_bps"), bad)

    limit, bid, ask = inp.limit_price, inp.bid, inp.ask
    reasons.mark("no_limit", np.isnan(limit))
    quoted = ~np.isnan(bid) & ~np.isnan(ask)
    reasons.mark("no_quote", ~quoted)
    mid, spread = (bid + ask) / 2.0, ask - bid
    reasons.mark("zero_spread", quoted & (spread == 0))
    far = np.where(s > 0, ask, bid)
    fill_rate = filled / inp.order_qty
    with np.errstate(divide="ignore", invalid="ignore"):
        capture = np.where(spread > 0, s * (far - avg) / spread * 100.0, np.nan)
    price_part = np.clip(0.5 - slippage / (2.0 * settings.score_scale_bps), 0.0, 1.0)
    score = np.where(some, 100.0 * fill_rate * price_part, 0.0)

    columns = {
        "order_qty": inp.order_qty,
        "filled_qty": filled,
        "fill_rate": fill_rate,
        "fills": sums["fills"],
        "avg_fill_price": avg,
        "fees": sums["fees"],
        "notional": inp.order_qty * inp.decision_price,
        "filled_notional": sums["filled_notional"],
        "decision_price": inp.decision_price,
        "arrival_price": arrival,
        "arrival_price_source": source,
        "end_price": end_price,
        "vwap": vwap,
        "twap": twap,
        "latency_s": np.where(
            inp.decision_ns != NAT, (inp.arrival_ns - inp.decision_ns) / 1e9, np.nan
        ),
        "execution_time_s": np.where(some, (sums["last_ns"] - inp.arrival_ns) / 1e9, np.nan),
        "arrival_slippage_bps": slippage,
        **_shortfall(inp, sums, arrival, end_price),
        "vs_vwap_bps": _bps(s, avg - vwap, vwap),
        "vs_twap_bps": _bps(s, avg - twap, twap),
        **markouts,
        "permanent_impact_bps": permanent,
        "temporary_impact_bps": slippage - permanent,
        "price_improvement_bps": _bps(s, limit - avg, limit),
        "spread_cost_bps": _bps(s, avg - mid, mid),
        "spread_capture_pct": capture,
        "quality_score": score,
    }
    return columns, reasons


__all__ = [
    "Analysis", "fill_markouts", "markouts_frame", "order_metrics", "order_tca", "per_order",
]  # fmt: skip
