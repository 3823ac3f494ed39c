"""The performance summary of tracked trades: trade summary, per-label performance, metrics.

>>> trips = round_trips(fills)                          # analytics.round_trips
>>> trade_summary(trips)["win_rate"]
>>> label_performance(trips)                             # {label: {trades, net_pnl, win_rate}}
>>> performance_summary(fills, trips, capital=10_000, period="monthly")

Conventions (docs/tracking.md):

- a round trip wins when its net PnL (after every fee) is > 0, loses when < 0; one at exactly
  0 is counted in ``breakeven`` and in neither; ``win_rate`` = winning / trades;
- ``avg_win`` / ``avg_loss``: mean net PnL of the winning / losing trips (NaN without);
  ``profit_factor`` = gross profit / |gross loss| of the trips' net PnL (NaN without a loss);
- every sum (net PnL, gross profit and loss, fees, holding time, a label's net PnL) is the
  exact sum rounded once (:mod:`analytics.exact_sum`, math.fsum's): the same double however
  the trips are ordered or batched;
- a round trip carries the labels of its fills (the union, in first-seen order); per label,
  each trip that carries it counts once;
- the metrics: the account's realised equity (capital + cumulative realised PnL of its
  fills) at each day's last fill, from the capital the day before the first, through
  :func:`analytics.metrics.compute_metrics` under the
  named preset, with the round trips as the trade list; without ``capital`` the return-based
  metrics are NaN (an imported bot's starting balance is not in its database);
- a period (day, ISO week from Monday, calendar month, UTC) holds the trips that EXIT in it and
  the fills executed in it.

:class:`LiveSummary` keeps the trade summary and the label table up to date one round trip at
a time (O(labels of the trip)); its ``trade_summary()`` / ``labels()`` equal the functions above
on the same trips exactly (the functions are its bulk form).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from analytics.distinct import factorized
from analytics.exact_sum import ExactSum
from analytics.round_trips import merge_label_sets
from analytics.trade_list import TRADE_COLUMNS

NAN = math.nan
_LABELS = operator.itemgetter("labels")
PERIODS = {"daily": "D", "weekly": "W-SUN", "monthly": "M", "all": None}


def trip_labels(trips: pd.DataFrame, fills: pd.DataFrame) -> pd.Series:
    """Each trip's labels: the union of its entry and exit fills' labels (first seen first),
    its fills found by their trade ids (:func:`analytics.round_trips.merge_label_sets`; a trade
    id not among ``fills`` adds no label)."""
    n = len(trips)
    if not n or "labels" not in fills.columns or not len(fills):
        return pd.Series([()] * n, index=trips.index, dtype=object)
    entries = trips["entry_trade_ids"].tolist()
    exits = trips["exit_trade_ids"].tolist()
    n_entry = np.fromiter(map(len, entries), dtype=np.int64, count=n)
    n_exit = np.fromiter(map(len, exits), dtype=np.int64, count=n)
    flat = [*chain.from_iterable(entries), *chain.from_iterable(exits)]
    where = pd.Index(fills["trade_id"].to_numpy(dtype=object)).get_indexer(flat)
    sets = np.empty(len(fills), dtype=object)
    sets[:] = fills["labels"].tolist()
    fill_codes, distinct = pd.factorize(sets)
    none = len(distinct)  # a trade id not among the fills: no label
    codes = np.where(where >= 0, fill_codes[np.maximum(where, 0)], none)
    split = int(n_entry.sum())
    out = merge_label_sets(codes[:split], n_entry, codes[split:], n_exit, [*distinct.tolist(), ()])
    return pd.Series(out, index=trips.index, dtype=object)


def trade_summary(trips: pd.DataFrame) -> dict[str, float | int]:
    """Counts and averages of the round trips' net PnL (conventions in the module text; sums
    rounded once: analytics.exact_sum)."""
    live = LiveSummary()
    live.extend(trips, labels=False)
    return live.trade_summary()


def _summary(
    n: int, n_win: int, n_loss: int, net: float, profit: float, loss: float, best: float,
    worst: float, fees: float, held: float,
) -> dict[str, float | int]:  # fmt: skip
    return {
        "trades": n,
        "winning": n_win,
        "losing": n_loss,
        "breakeven": n - n_win - n_loss,
        "win_rate": n_win / n if n else NAN,
        "net_pnl": net,
        "gross_profit": profit,
        "gross_loss": loss,
        "avg_win": profit / n_win if n_win else NAN,
        "avg_loss": loss / n_loss if n_loss else NAN,
        "avg_trade": net / n if n else NAN,
        "largest_win": best,
        "largest_loss": worst,
        "profit_factor": profit / -loss if n_loss else NAN,
        "fees": fees,
        "avg_holding_s": held / n if n else NAN,
    }


def label_performance(trips: pd.DataFrame, labels: pd.Series | None = None) -> dict[str, dict]:
    """Per label: trips carrying it, their net PnL, win rate and average; sorted by name."""
    live = LiveSummary()
    live.extend(trips if labels is None else trips.assign(labels=labels.to_numpy()))
    return live.labels()


def _label_row(n: float, net: float, won: float) -> dict[str, float | int]:
    return {"trades": int(n), "net_pnl": net, "win_rate": won / n, "avg_pnl": net / n}


def realised_equity(fills: pd.DataFrame, capital: float) -> pd.Series:
    """Capital + cumulative realised PnL at each UTC day's last fill (indexed by the day), from
    ``capital`` on the day before the first fill."""
    if fills.empty:
        return pd.Series(dtype=float)
    pnl = pd.Series(fills["pnl"].to_numpy(dtype=float), index=pd.DatetimeIndex(fills["time"]))
    daily = pnl.groupby(pnl.index.floor("D")).sum().cumsum()
    before = pd.Series([0.0], index=[daily.index[0] - pd.Timedelta(days=1)])
    return capital + pd.concat([before, daily])


def metrics_frame(trips: pd.DataFrame, equity: pd.Series) -> pd.DataFrame:
    """The round trips as the trade list compute_metrics reads (TRADE_COLUMNS)."""
    days = equity.index
    entry_bar = np.clip(days.searchsorted(trips["entry_time"].dt.floor("D")), 0, len(days) - 1)
    exit_bar = np.clip(days.searchsorted(trips["exit_time"].dt.floor("D")), 0, len(days) - 1)
    frame = pd.DataFrame(
        {
            # the columns' own arrays: to_numpy() of a zoned time column makes a Timestamp
            # object per trip, which the frame parses back (0.4 s per 50,000 trips)
            "entry_time": trips["entry_time"].array,
            "exit_time": trips["exit_time"].array,
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "side": trips["direction"].to_numpy(),
            "size": np.where(trips["direction"] == "long", 1, -1) * trips["volume"].to_numpy(),
            "entry_price": trips["entry_price"].to_numpy(),
            "exit_price": trips["exit_price"].to_numpy(),
            "pnl": trips["net_pnl"].to_numpy(),
            "return_pct": trips["return"].to_numpy(),
            "commission": trips["fees"].to_numpy(),
            "duration": (trips["exit_time"] - trips["entry_time"]).to_numpy(),
            "exit_reason": "signal",
            "mae": trips["mae"].to_numpy(),
            "mfe": trips["mfe"].to_numpy(),
        }
    )
    return frame[list(TRADE_COLUMNS)]


def performance_summary(
    fills: pd.DataFrame,
    trips: pd.DataFrame,
    *,
    capital: float | None = None,
    period: str = "all",
    preset: str = "quantstats",
) -> list[dict[str, Any]]:
    """One entry per period (``all``: one): its span, trade summary, per-label performance
    and metrics (empty without ``capital``... NaN ratios; see the module text)."""
    if period not in PERIODS:
        raise ValueError(f"period={period!r} is invalid: expected one of {list(PERIODS)}")
    if "labels" not in trips.columns:
        trips = trips.assign(labels=trip_labels(trips, fills))
    rule = PERIODS[period]
    if rule is None or fills.empty:
        groups = [(None, fills, trips)]
    else:
        fill_key = pd.DatetimeIndex(fills["time"]).tz_convert(None).to_period(rule)
        trip_key = pd.DatetimeIndex(trips["exit_time"]).tz_convert(None).to_period(rule)
        keys = sorted(set(fill_key) | set(trip_key))
        groups = [(k, fills[fill_key == k], trips[trip_key == k]) for k in keys]
    out = []
    for key, f, t in groups:
        entry: dict[str, Any] = {
            "period": "all" if key is None else str(key),
            "start": None if key is None else key.start_time.tz_localize("UTC").isoformat(),
            "end": None if key is None else key.end_time.tz_localize("UTC").isoformat(),
            "fills": len(f),
            "trade_summary": trade_summary(t),
            "labels": label_performance(t),
            "metrics": _metrics(f, t, capital, preset),
        }
        out.append(entry)
    return out


def _metrics(fills: pd.DataFrame, trips: pd.DataFrame, capital: float | None, preset: str) -> dict:
    from analytics.metrics import compute_metrics

    if capital is None or fills.empty:
        return {}
    start = capital + float(fills["cumulative_pnl"].iloc[0] - fills["pnl"].iloc[0])
    equity = realised_equity(fills, start)
    # a capital the losses reach or exceed (any capital > 0 is accepted) leaves returns of
    # 0 / 0 or x / 0: the figures built on them are undefined (NaN, shown as null), no warning
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        stats = compute_metrics(equity, metrics_frame(trips, equity), preset=preset)
    return {k: _plain(v) for k, v in stats.items()}


def _plain(value: Any) -> Any:
    if value is pd.NaT:  # an undefined duration or time (a period without a drawdown): null
        return None
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


class LiveSummary:
    """The trade summary and label table, one round trip at a time (O(labels of the trip)) or
    a frame of them at once; the sums are exact (analytics.exact_sum), so the figures are the
    same doubles whatever the order and the batches the trips came in."""

    def __init__(self) -> None:
        self._n = self._n_win = self._n_loss = 0
        self._net, self._profit, self._loss = ExactSum(), ExactSum(), ExactSum()
        self._fees, self._held = ExactSum(), ExactSum()
        self._best = self._worst = NAN
        self._labels: dict[str, list[Any]] = {}  # label -> [trips, ExactSum of net pnl, wins]

    def add(self, net_pnl: float, fees: float, holding_s: float, labels: Iterable[str]) -> None:
        self._n += 1
        self._net.add(net_pnl)
        self._fees.add(fees)
        self._held.add(holding_s)
        if net_pnl > 0:
            self._n_win += 1
            self._profit.add(net_pnl)
            self._best = net_pnl if math.isnan(self._best) else max(self._best, net_pnl)
        elif net_pnl < 0:
            self._n_loss += 1
            self._loss.add(net_pnl)
            self._worst = net_pnl if math.isnan(self._worst) else min(self._worst, net_pnl)
        for label in labels:
            row = self._label(label)
            row[0] += 1
            row[1].add(net_pnl)
            row[2] += net_pnl > 0

    def extend(self, trips: pd.DataFrame, *, labels: bool = True) -> None:
        """Every trip of ``trips`` (net_pnl, fees, holding_s and, with ``labels``, labels),
        column-wise: as :meth:`add` of each."""
        if not len(trips):
            return
        self._columns(
            trips["net_pnl"].to_numpy(dtype=float), trips["fees"].to_numpy(dtype=float),
            trips["holding_s"].to_numpy(dtype=float), trips["labels"].tolist() if labels else None,
        )  # fmt: skip

    def add_many(self, trips: list[dict[str, Any]]) -> None:
        """Round trips given as dicts (net_pnl, fees, holding_s, labels), column-wise: as
        :meth:`add` of each."""
        if len(trips) < 8:  # a few: one at a time
            for t in trips:
                self.add(t["net_pnl"], t["fees"], t["holding_s"], t["labels"])
            return
        n = len(trips)
        self._columns(
            *(np.fromiter(map(operator.itemgetter(name), trips), np.float64, n)
              for name in ("net_pnl", "fees", "holding_s")),
            [v if isinstance(v, tuple) else tuple(v) for v in map(_LABELS, trips)],
        )  # fmt: skip

    def _columns(
        self, pnl: np.ndarray, fees: np.ndarray, held: np.ndarray, labels: list[Any] | None
    ) -> None:
        wins, losses = pnl[pnl > 0], pnl[pnl < 0]
        self._n += len(pnl)
        self._n_win += len(wins)
        self._n_loss += len(losses)
        self._net.extend(pnl)
        self._profit.extend(wins)
        self._loss.extend(losses)
        self._fees.extend(fees)
        self._held.extend(held)
        if len(wins):
            high = float(wins.max())
            self._best = high if math.isnan(self._best) else max(self._best, high)
        if len(losses):
            low = float(losses.min())
            self._worst = low if math.isnan(self._worst) else min(self._worst, low)
        if labels is None:
            return
        # per trip, how often it carries each label (a count per distinct label set, its
        # last row the missing sets'): each label's trips taken at once, not set by set
        codes, distinct = factorized(labels)
        sets = distinct.tolist()
        flat = np.empty(sum(map(len, sets)), dtype=object)
        flat[:] = list(chain.from_iterable(sets))
        names, first = pd.factorize(flat)
        times = np.zeros((len(sets) + 1, len(first)), dtype=np.int64)
        np.add.at(times, (np.repeat(np.arange(len(sets)), list(map(len, sets))), names), 1)
        carries = times[codes]
        for j, label in enumerate(first.tolist()):
            each = carries[:, j]
            carried = pnl[each > 0] if each.max() <= 1 else np.repeat(pnl, each)
            row = self._label(label)
            row[0] += len(carried)
            row[1].extend(carried)
            row[2] += int((carried > 0).sum())

    def _label(self, label: str) -> list[Any]:
        row = self._labels.get(label)
        if row is None:
            row = self._labels[label] = [0, ExactSum(), 0]
        return row

    def trade_summary(self) -> dict[str, float | int]:
        return _summary(
            self._n, self._n_win, self._n_loss, self._net.value(), self._profit.value(),
            self._loss.value(), float(self._best), float(self._worst), self._fees.value(),
            self._held.value(),
        )  # fmt: skip

    def labels(self) -> dict[str, dict]:
        out = {}
        for label in sorted(self._labels):
            n, net, won = self._labels[label]
            out[label] = _label_row(n, net.value(), won)
        return out


__all__ = [
    "PERIODS",
    "LiveSummary",
    "label_performance",
    "metrics_frame",
    "performance_summary",
    "realised_equity",
    "trade_summary",
    "trip_labels",
]
