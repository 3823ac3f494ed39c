"""What the Execution page shows, read once per version of an account's orders: the TCA of
:class:`services.tca.TCAService` (the numbers of ``app.py tca --json``), the stored cost
model's predictions (:class:`services.execution_ml.ExecutionMLService`), and the summaries the
figures draw (docs/tca.md's conventions: bps of the reference price, positive = a cost).

>>> views = ExecutionViews(sessions, settings.data_dir)
>>> [a.label for a in views.accounts()]          # "desk · orders-csv · 877 orders"
>>> view = views.view("desk", by="venue")
>>> markout_curve(view.tca.report.fills)          # mean bps per horizon with a 95% band
>>> shortfall_split(view.tca.report.orders)       # delay, trading, opportunity, fees, total

The summaries are pure functions of the report's frames; the report and the predictions are
cached per account and data version (the orders' and fills' counts and last update, the model
file's time), so a choice of grouping or theme reads nothing again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from analytics.costmodel import TARGET, CostModelError
from analytics.tca import TCAReport, aggregate_tca
from analytics.tca.aggregate import METRIC_WEIGHTS
from database.repositories.executions import ExecutionRepository
from database.repositories.trading import ACCOUNTS, FILLS, ORDERS
from services.execution_ml import ExecutionMLService
from services.tca import AccountTCA, TCAService
from services.tracking import UnknownAccountError

GROUP_BY = ("venue", "algo", "symbol", "side", "strategy")  # app.py tca --by
SHORTFALL_PARTS = (
    ("delay", "is_delay_bps"),
    ("trading", "is_trading_bps"),
    ("opportunity", "is_opportunity_bps"),
    ("fees", "is_fees_bps"),
)
BREAKDOWN_METRICS = ("fill_rate", "latency_s", "arrival_slippage_bps", "is_bps")
QUALITY = ("good", "neutral", "bad")
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% band


@dataclass(frozen=True)
class ExecutionAccount:
    """An account with orders to analyse: ``source`` paper, or the import's format."""

    name: str
    orders: int
    source: str

    @property
    def label(self) -> str:
        return f"{self.name} · {self.source} · {self.orders:,} orders"


@dataclass(frozen=True)
class CostPredictions:
    """The stored model's expected cost of each order of the dataset against its realised
    arrival slippage (``order_id, split, predicted_bps, baseline_bps, realised_bps``), or
    ``note`` saying why there are none."""

    rows: pd.DataFrame | None
    note: str = ""
    trained_at: str | None = None


@dataclass(frozen=True)
class ExecutionView:
    account: ExecutionAccount
    by: str
    tca: AccountTCA
    by_group: pd.DataFrame  # aggregate rows of ``by`` (the report's)
    by_kind: pd.DataFrame  # aggregate rows by algo, venue and order type
    overall: pd.DataFrame  # aggregate rows of every order as one group ("all")
    summary: dict[str, Any]  # account_summary of the report


class ExecutionViews:
    def __init__(
        self, sessions: sessionmaker[Session], data_dir: Path | None = None, cached: int = 4
    ) -> None:
        self._sessions = sessions
        self._tca = TCAService(sessions)
        self._ml = ExecutionMLService(sessions, data_dir)
        self._cached = cached
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()

    # -- accounts ---------------------------------------------------------------------------
    def accounts(self) -> list[ExecutionAccount]:
        """Every account with orders (paper and imported side by side), by name."""
        return [a for a, _ in self._versions().values()]

    def account(self, name: str) -> ExecutionAccount | None:
        found = self._versions().get(name)
        return None if found is None else found[0]

    def _versions(self) -> dict[str, tuple[ExecutionAccount, tuple]]:
        """Each account with orders and its data version (what a new order or fill changes)."""
        with self._sessions() as session:
            paper = session.execute(
                select(ACCOUNTS.c.name, func.count(), func.max(ORDERS.c.updated_at))
                .join(ORDERS, ORDERS.c.account_id == ACCOUNTS.c.id)
                .group_by(ACCOUNTS.c.name)
            ).all()
            fills = dict(
                session.execute(
                    select(ACCOUNTS.c.name, func.count())
                    .join(FILLS, FILLS.c.account_id == ACCOUNTS.c.id)
                    .group_by(ACCOUNTS.c.name)
                ).all()
            )
            imported = ExecutionRepository(session).accounts()
        found: dict[str, tuple[ExecutionAccount, tuple]] = {}
        for name, orders, updated in paper:
            version = ("paper", int(orders), str(updated), int(fills.get(name, 0)))
            found[name] = (ExecutionAccount(name, int(orders), "paper"), version)
        for name, orders, source in imported:  # imported orders are immutable: a count is enough
            if name in found:
                account, version = found[name]
                merged = ExecutionAccount(name, account.orders + orders, f"paper + {source}")
                found[name] = (merged, (*version, int(orders)))
            else:
                found[name] = (ExecutionAccount(name, int(orders), source or "imported"),
                               ("imported", int(orders)))  # fmt: skip
        return dict(sorted(found.items()))

    # -- the analysis -----------------------------------------------------------------------
    def view(self, account: str, by: str = "venue") -> ExecutionView:
        """The account's TCA (every dimension, as ``app.py tca --json``), its rows by ``by``
        and by algo, venue and order type; UnknownAccountError: no such account with orders."""
        if by not in GROUP_BY:
            raise ValueError(f"by={by!r}: expected one of {', '.join(GROUP_BY)}")
        known = self._versions().get(account)
        if known is None:
            raise UnknownAccountError(f"account {account!r} has no order to analyse")
        choice, version = known
        tca = self._cached_value(("tca", account, version), lambda: self._tca.account(account))
        aggregates = tca.report.aggregates
        return ExecutionView(
            account=choice,
            by=by,
            tca=tca,
            by_group=aggregates.loc[aggregates["dimension"] == by].reset_index(drop=True),
            by_kind=kind_breakdown(tca.report.orders),
            overall=aggregate_tca(tca.report.orders, None),
            summary=account_summary(tca.report),
        )

    def predictions(self, account: str) -> CostPredictions:
        """The stored cost model's predictions for the account's decisions (none: the note
        says how to train one)."""
        path = self._ml.model_path(account)
        if not path.exists():
            return CostPredictions(None, train_note(account))
        known = self._versions().get(account)
        version = (None if known is None else known[1], path.stat().st_mtime_ns)
        return self._cached_value(("model", account, version), lambda: self._predict(account))

    def _predict(self, account: str) -> CostPredictions:
        try:
            model = self._ml.model(account)
            frame, _ = self._ml.dataset(account)
            target = str(model.info.get("target", TARGET))
            rows = pd.DataFrame(
                {
                    "order_id": frame["order_id"].astype(str).to_numpy(),
                    "split": frame["split"].astype(str).to_numpy(),
                    "predicted_bps": model.predict(frame),
                    "baseline_bps": model.baseline(frame),
                    "realised_bps": frame[target].to_numpy(dtype=np.float64, na_value=np.nan),
                }
            )
        except (CostModelError, UnknownAccountError) as exc:
            return CostPredictions(None, f"{exc}. {train_note(account)}")
        return CostPredictions(rows, trained_at=model.info.get("trained_at"))

    def dataset_bytes(self, account: str) -> bytes:
        """The account's decision dataset as a Parquet file (docs/dataset.md)."""
        return self._ml.dataset_bytes(account)

    def _cached_value(self, key: tuple, compute) -> Any:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cached:
                self._cache.popitem(last=False)
        return value


def train_note(account: str) -> str:
    return (
        f"no cost model stored for {account}: train one with "
        f"`python app.py costmodel train --account {account}` (docs/costmodel.md)"
    )


# --- the summaries the figures draw ---------------------------------------------------------


def account_summary(report: TCAReport) -> dict[str, Any]:
    """Counts for the status line and the key figures: orders, fills, round trips, the first
    and last fill (UTC dates), decision quality counts, the shortest horizon's mean
    markout per fill (horizon label, bps or None)."""
    orders, trips = report.orders, report.round_trips
    times = report.fills["fill_time"] if len(report.fills) else None
    curve = markout_curve(report.fills)
    first = None
    if len(curve):
        mean = float(curve["mean"].iloc[0])
        first = (str(curve["horizon"].iloc[0]), mean if np.isfinite(mean) else None)
    counts = trips["decision_quality"].astype(str).value_counts() if len(trips) else {}
    return {
        "orders": len(orders),
        "fills": int(orders["fills"].sum()) if len(orders) else 0,
        "round_trips": len(trips),
        "start": None if times is None else times.min().strftime("%Y-%m-%d"),
        "end": None if times is None else times.max().strftime("%Y-%m-%d"),
        "quality": {q: int(counts.get(q, 0)) for q in QUALITY},
        "first_markout": first,
    }


def first_fills(fills: pd.DataFrame) -> pd.Series:
    """Each order's first fill time (UTC), by order id (orders without a fill are absent)."""
    return fills.groupby("order_id", sort=False)["fill_time"].min()


def kind_breakdown(orders: pd.DataFrame) -> pd.DataFrame:
    """Fill rate, latency and cost by algo, venue and order type: ``aggregate_tca``'s rows
    (order type is not one of its dimensions: it is grouped as one, then named)."""
    parts = [aggregate_tca(orders, by) for by in ("algo", "venue")]
    by_type = aggregate_tca(orders.assign(venue=orders["order_type"]), "venue")
    parts.append(by_type.assign(dimension="order type"))
    table = pd.concat(parts, ignore_index=True)
    return table.loc[table["metric"].isin(BREAKDOWN_METRICS)].reset_index(drop=True)


def slippage_values(orders: pd.DataFrame) -> pd.Series:
    """Each order's arrival slippage (bps) where it is defined."""
    return orders["arrival_slippage_bps"].dropna().astype(float)


def shortfall_split(orders: pd.DataFrame) -> pd.DataFrame:
    """Perold's split as notional-weighted means (``weighted_mean`` of ``aggregate_tca``) over
    the orders where the total and every part are defined, so the parts add up to the total:
    rows ``part`` (delay, trading, opportunity, fees, total), ``bps``, ``orders``."""
    columns = [c for _, c in SHORTFALL_PARTS] + ["is_bps", METRIC_WEIGHTS["is_bps"]]
    complete = orders.loc[orders[columns].notna().all(axis=1)]
    names = [*SHORTFALL_PARTS, ("total", "is_bps")]
    if complete.empty:
        return pd.DataFrame({"part": [n for n, _ in names], "bps": np.nan, "orders": 0})
    table = aggregate_tca(complete, None).set_index("metric")
    return pd.DataFrame(
        {
            "part": [n for n, _ in names],
            "bps": [float(table.loc[c, "weighted_mean"]) for _, c in names],
            "orders": len(complete),
        }
    )


def markout_curve(fills: pd.DataFrame) -> pd.DataFrame:
    """Per markout horizon (the report's ``markout_{h}_bps`` columns of its fills): ``n``
    fills where defined, ``mean`` bps, ``std`` (sample), ``se`` = std / sqrt(n), and the 95%
    band ``low``/``high`` = mean -/+ 1.96 se; ``minutes`` for the axis. Positive = the price
    moved in the trade's favour."""
    rows = []
    for column in fills.columns:
        if not (column.startswith("markout_") and column.endswith("_bps")):
            continue
        label = column[len("markout_") : -len("_bps")]
        values = fills[column].dropna().to_numpy(float)
        n = len(values)
        mean = float(values.mean()) if n else np.nan
        std = float(values.std(ddof=1)) if n > 1 else np.nan
        se = std / np.sqrt(n) if n > 1 else np.nan
        rows.append(
            {
                "horizon": label,
                "minutes": pd.Timedelta(label.replace("m", "min")).total_seconds() / 60,
                "n": n,
                "mean": mean,
                "std": std,
                "se": se,
                "low": mean - Z95 * se,
                "high": mean + Z95 * se,
            }
        )
    return pd.DataFrame(
        rows, columns=["horizon", "minutes", "n", "mean", "std", "se", "low", "high"]
    ).sort_values("minutes", ignore_index=True)


def quality_period(round_trips: pd.DataFrame) -> str:
    """The bucket of the decision-quality counts: days over up to 62 days of exits, weeks
    up to two years, months up to eight, quarters beyond."""
    if round_trips.empty:
        return "D"
    times = pd.to_datetime(round_trips["exit_time"], utc=True)
    span = times.max() - times.min()
    for period, longest in (("D", 62), ("W", 730), ("M", 2922)):
        if span <= pd.Timedelta(days=longest):
            return period
    return "Q"


def quality_counts(round_trips: pd.DataFrame, period: str | None = None) -> pd.DataFrame:
    """Round trips per exit period (UTC; ``period`` D, W, M or Q, default :func:`quality_period`)
    and decision quality: ``period_start``, ``good``, ``neutral``, ``bad``."""
    period = period or quality_period(round_trips)
    if round_trips.empty:
        return pd.DataFrame(columns=["period_start", *QUALITY])
    times = pd.to_datetime(round_trips["exit_time"], utc=True).dt.tz_localize(None)
    starts = times.dt.to_period(period).dt.start_time.dt.tz_localize("UTC")
    table = pd.crosstab(starts.to_numpy(), round_trips["decision_quality"].astype(str).to_numpy())
    table = table.reindex(columns=list(QUALITY), fill_value=0).sort_index()
    out = table.rename_axis("period_start").reset_index()
    out.columns = ["period_start", *QUALITY]
    return out


def reason_counts(orders: pd.DataFrame) -> pd.DataFrame:
    """Why metrics are n/a: each cause of the orders' ``reason`` (split on "; ") and the
    orders it holds for, most frequent first."""
    causes = orders["reason"].dropna().astype(str).str.split("; ").explode()
    causes = causes.loc[causes.str.len() > 0]
    counts = causes.value_counts(sort=False)
    table = counts.rename_axis("reason").reset_index(name="orders")
    return table.sort_values(["orders", "reason"], ascending=[False, True], ignore_index=True)


def group_rows(aggregates: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Aggregate rows as one row per (dimension, group): ``orders`` and each metric's
    ``weighted_mean`` (columns named after the metrics), in the aggregates' order."""
    if aggregates.empty:
        return pd.DataFrame(columns=["dimension", "group", "orders", *metrics])
    kept = aggregates.loc[aggregates["metric"].isin(metrics)]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for row in kept.itertuples(index=False):
        entry = rows.setdefault((row.dimension, row.group), {"orders": int(row.orders)})
        entry[row.metric] = float(row.weighted_mean)
    return pd.DataFrame(
        [{"dimension": d, "group": g, **dict.fromkeys(metrics, np.nan), **values}
         for (d, g), values in rows.items()],
        columns=["dimension", "group", "orders", *metrics],
    )  # fmt: skip


__all__ = [
    "BREAKDOWN_METRICS",
    "GROUP_BY",
    "QUALITY",
    "SHORTFALL_PARTS",
    "CostPredictions",
    "ExecutionAccount",
    "ExecutionView",
    "ExecutionViews",
    "account_summary",
    "first_fills",
    "group_rows",
    "kind_breakdown",
    "markout_curve",
    "quality_counts",
    "quality_period",
    "reason_counts",
    "shortfall_split",
    "slippage_values",
    "train_note",
]
