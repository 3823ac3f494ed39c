"""One row per decision: its features, its outcomes and its place in a time-ordered split.

>>> frame = decision_dataset(orders, fills, candles, DatasetSettings(horizon_bars=30))

``orders``, ``fills`` and ``candles`` are the inputs of :mod:`analytics.tca` (docs/tca.md);
``signals`` (optional): the signals behind the decisions, columns ``strategy_id, symbol, time,
confidence`` and any numeric ``signal_*`` columns (the strategy's indicator values). Every
column is defined in :mod:`analytics.dataset.schema` and docs/dataset.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.dataset._kernels import triple_barrier
from analytics.dataset.features import (
    REGIMES,
    CalendarMemo,
    bar_features,
    decision_features,
    empty_features,
    last_closed,
)
from analytics.label_config import Sessions
from analytics.sessions import DAY_NS, MINUTE_NS
from analytics.tca.conventions import TCASettings, markout_column
from analytics.tca.decision import QUALITY, round_trip_arrays
from analytics.tca.inputs import NAT
from analytics.tca.orders import Analysis, order_metrics

HOUR_NS = 60 * MINUTE_NS
SPLITS = ("train", "validation", "test")
DEFAULT_SESSIONS = Sessions(330, ((7.0, "europe"), (13.0, "america"), (22.0, "asia")))
ID_COLUMNS = ("order_id", "account_id", "strategy_id", "symbol", "side", "order_type", "algo")
TCA_OUTCOMES = (
    "fill_rate",
    "arrival_slippage_bps",
    "is_bps",
    "is_delay_bps",
    "is_trading_bps",
    "is_opportunity_bps",
    "is_fees_bps",
    "permanent_impact_bps",
    "temporary_impact_bps",
)


@dataclass(frozen=True)
class DatasetSettings:
    """The dataset's choices, each described in docs/dataset.md."""

    return_horizons: tuple[int, ...] = (1, 5, 20, 60)  # bars
    rsi_period: int = 14
    atr_period: int = 14
    donchian_period: int = 20
    volatility_window: int = 20  # one-bar returns in volatility_bps
    volume_window: int = 20  # the average volume and the volume z-score
    rank_window: int = 100  # the ATR share's percentile rank (volatility regime)
    high_percentile: float = 80.0
    low_percentile: float = 20.0
    horizon_bars: int = 20  # the vertical barrier and forward return
    profit_atr: float = 2.0  # the profit barrier, ATRs from the reference
    stop_atr: float = 1.0  # the stop barrier, ATRs from the reference
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, validation, test
    sessions: Sessions = DEFAULT_SESSIONS
    tca: TCASettings = field(default_factory=TCASettings)

    def __post_init__(self) -> None:
        horizons = tuple(int(h) for h in self.return_horizons)
        if not horizons or min(horizons) < 1 or len(set(horizons)) != len(horizons):
            raise ValueError(f"return_horizons={horizons!r}: expected distinct bars >= 1")
        object.__setattr__(self, "return_horizons", horizons)
        for name in ("rsi_period", "atr_period", "donchian_period", "volatility_window",
                     "volume_window", "rank_window", "horizon_bars"):  # fmt: skip
            if int(getattr(self, name)) < 1 or (name != "horizon_bars" and getattr(self, name) < 2):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a whole number >= 2")
        if not (self.profit_atr > 0 and self.stop_atr > 0):
            raise ValueError("profit_atr and stop_atr: expected > 0")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1.0) > 1e-9:
            raise ValueError(f"split={self.split!r}: expected three shares >= 0 summing to 1")


def decision_dataset(
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    candles: Mapping[str, pd.DataFrame],
    settings: DatasetSettings | None = None,
    signals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per order (a decision), in decision-time order (docs/dataset.md)."""
    settings = settings or DatasetSettings()
    analysis = Analysis.of(orders, fills, candles, settings.tca)
    inp = analysis.inputs
    tca, _ = order_metrics(analysis)
    n = inp.n
    decision_ns = np.where(inp.decision_ns != NAT, inp.decision_ns, inp.arrival_ns)
    reference = np.where(np.isnan(inp.decision_price), np.nan, inp.decision_price)

    features = empty_features(n, settings)
    features["forward_return_bps"] = np.full(n, np.nan)
    barrier = (np.full(n, -2, np.int8), np.full(n, np.nan), np.full(n, -1, np.int64))
    horizon_end = np.full(n, NAT, np.int64)
    _, symbols = orders["symbol"].factorize()
    memo = CalendarMemo()
    for code, symbol in enumerate(symbols):
        rows = np.flatnonzero(analysis.symbol_code == code)
        market = analysis.market.bars[code]
        frame = candles.get(symbol)
        if market is None or frame is None:
            continue  # no bars: every bar feature stays missing
        if not frame.index.is_monotonic_increasing:
            frame = frame.sort_index(kind="stable")
        bars = bar_features(frame, market.length_ns, settings)
        times = decision_ns[rows]
        p = last_closed(bars.open_ns, bars.bar_ns, times)
        got = decision_features(bars, p, times, inp.order_qty[rows], settings, memo)
        for name, values in got.items():
            features[name][rows] = values
        ref = np.where(np.isnan(reference[rows]), bars.close[np.maximum(p, 0)], reference[rows])
        atr_share = np.where(p >= 0, bars.atr[np.maximum(p, 0)] / bars.close[np.maximum(p, 0)],
                             np.nan)  # fmt: skip
        label, ret, walked = triple_barrier(
            p.astype(np.int64), ref, inp.side[rows].astype(np.int64), atr_share, bars.high,
            bars.low, bars.close, np.full(len(rows), len(bars.close), np.int64),
            settings.horizon_bars, settings.profit_atr, settings.stop_atr,
        )  # fmt: skip
        barrier[0][rows], barrier[1][rows], barrier[2][rows] = label, ret, walked
        end_bar = np.minimum(p + settings.horizon_bars, len(bars.open_ns) - 1)
        horizon_end[rows] = np.where(p >= 0, bars.open_ns[end_bar] + bars.bar_ns, NAT)
        fwd = p + settings.horizon_bars
        ok = (p >= 0) & (fwd < len(bars.close))
        features["forward_return_bps"][rows] = np.where(
            ok, inp.side[rows] * (bars.close[np.where(ok, fwd, 0)] - ref) / ref * 1e4, np.nan
        )

    out: dict[str, object] = {}  # the columns, made into a frame once
    for column in ID_COLUMNS:
        out[column] = orders[column].array
    out["decision_time"] = pd.to_datetime(decision_ns, utc=True)
    close_ns = features.pop("feature_bar_close_ns")
    out["feature_bar_close"] = pd.to_datetime(np.where(close_ns > 0, close_ns, NAT), utc=True)
    out["order_qty"] = inp.order_qty.copy()  # copies: the frame below shares its arrays
    out["decision_price"] = inp.decision_price.copy()
    forward = features.pop("forward_return_bps")
    regime = features.pop("volatility_regime_code")
    session = features.pop("market_session")
    for name, values in features.items():
        out[name] = values
    out["side_sign"] = inp.side.astype(np.int8)
    out["hour"] = ((decision_ns % DAY_NS) // HOUR_NS).astype(np.int8)
    out["weekday"] = ((decision_ns // DAY_NS + 3) % 7).astype(np.int8)  # Monday 0
    out["volatility_regime"] = pd.Categorical.from_codes(regime.astype(np.int8), list(REGIMES))
    out["market_session"] = pd.Categorical(session)
    _add_signals(out, signals, decision_ns, analysis)
    _add_outcomes(out, tca, analysis, barrier, forward)
    trips_end = _trip_outcomes(out, analysis)
    last_fill = _last_fill(analysis)
    pad = max([*analysis.settings.markout_horizons, analysis.settings.impact_horizon]).value
    ends = np.stack([horizon_end, np.where(last_fill != NAT, last_fill + pad, NAT), trips_end])
    out["outcome_end_time"] = pd.to_datetime(np.max(ends, axis=0), utc=True)
    # the columns as they are, each its own block (no copy into one 2-D block of floats)
    frame = pd.DataFrame(out, copy=False)
    if len(decision_ns) and not bool(np.all(decision_ns[1:] >= decision_ns[:-1])):
        order = np.argsort(decision_ns, kind="stable")  # equal times: the orders' own order
        frame = frame.take(order).reset_index(drop=True)
    _split(frame, settings.split)
    return frame


def _add_signals(
    out: dict, signals: pd.DataFrame | None, decision_ns: np.ndarray, analysis: Analysis
) -> None:
    """The latest signal of the decision's strategy and symbol at or before it, at most one
    bar of its symbol earlier: its confidence and ``signal_*`` values (NaN without one)."""
    out["signal_confidence"] = np.nan
    if signals is None or not len(signals):
        return
    extra = [c for c in signals.columns if c.startswith("signal_")]
    table = signals.assign(time=_ns(signals["time"]))
    table = table.sort_values("time", kind="stable")
    left = pd.DataFrame(
        {
            "strategy_id": pd.Series(out["strategy_id"]).astype(str),
            "symbol": pd.Series(out["symbol"]).astype(str),
            "time": decision_ns,
            "row": np.arange(len(decision_ns)),
        }
    ).sort_values("time", kind="stable")
    right = table[["strategy_id", "symbol", "time", "confidence", *extra]].astype(
        {"strategy_id": str, "symbol": str}
    )
    right = right.assign(signal_time=right["time"])
    merged = pd.merge_asof(
        left, right, on="time", by=["strategy_id", "symbol"], direction="backward"
    )
    lengths = np.array([b.length_ns if b is not None else 0 for b in analysis.market.bars])
    within = (merged["time"] - merged["signal_time"]).to_numpy(dtype=float) <= lengths[
        analysis.symbol_code[merged["row"].to_numpy()]
    ]
    rows = merged["row"].to_numpy()
    for source, target in [("confidence", "signal_confidence")] + [(c, c) for c in extra]:
        values = np.full(len(decision_ns), np.nan)
        values[rows] = np.where(within, merged[source].to_numpy(dtype=float), np.nan)
        out[target] = values


def _add_outcomes(out, tca, analysis, barrier, forward) -> None:
    for column in TCA_OUTCOMES:
        out[column] = np.asarray(tca[column], dtype=float)
    for horizon in analysis.settings.markout_horizons:
        out[markout_column(horizon)] = np.asarray(tca[markout_column(horizon)], dtype=float)
    label, ret, walked = barrier
    out["tb_label"] = pd.arrays.IntegerArray(np.where(label == -2, 0, label), label == -2)
    out["tb_return_bps"] = ret
    out["tb_bars"] = pd.arrays.IntegerArray(np.where(walked < 0, 0, walked), walked < 0)
    out["forward_return_bps"] = forward


def _trip_outcomes(out: dict, analysis: Analysis) -> np.ndarray:
    """The round trip each order opened: its net return, excess return and decision quality;
    returns each row's trip exit time (NAT: opened none)."""
    trips = round_trip_arrays(analysis.inputs, analysis.settings.decision_threshold_bps)
    position = trips["entry_order"]  # the order that opened each trip
    n = analysis.inputs.n
    for column in ("net_return_bps", "excess_return_bps"):
        values = np.full(n, np.nan)
        values[position] = trips[column]
        out[column] = values
    codes = np.full(n, -1, np.int8)
    codes[position] = trips["quality"]
    out["decision_quality"] = pd.Categorical.from_codes(codes, list(QUALITY))
    end = np.full(n, NAT, np.int64)
    end[position] = trips["exit_ns"]
    return end


def _ns(values: pd.Series) -> np.ndarray:
    """Times as int64 nanoseconds UTC (NaT: NAT), whatever their unit."""
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8


def _last_fill(analysis: Analysis) -> np.ndarray:
    inp = analysis.inputs
    last = np.full(inp.n, NAT, np.int64)
    np.maximum.at(last, inp.fill_order, inp.fill_ns)
    return last


def _split(out: pd.DataFrame, shares: tuple[float, float, float]) -> None:
    """``split`` by decision time (rows already in time order; equal times never straddle
    a boundary) and ``embargo``: a row whose outcome ends after the next split's first
    decision (its label overlaps data a later split is scored on)."""
    n = len(out)
    times = _ns(out["decision_time"])
    cuts = []
    for share in (shares[0], shares[0] + shares[1]):
        k = min(round(n * share), n)
        cuts.append(int(np.searchsorted(times, times[k], side="left")) if k < n else n)
    codes = np.zeros(n, np.int8)
    codes[cuts[0] : cuts[1]] = 1
    codes[cuts[1] :] = 2
    out["split"] = pd.Categorical.from_codes(codes, list(SPLITS))
    ends = _ns(out["outcome_end_time"])
    embargo = np.zeros(n, bool)
    for lo, hi in ((0, cuts[0]), (cuts[0], cuts[1])):
        if hi < n:  # the next split starts with row hi
            embargo[lo:hi] = ends[lo:hi] > times[hi]
    out["embargo"] = embargo
