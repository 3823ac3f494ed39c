"""What the Attribution page shows of an account's tracked trades, read through
:class:`~services.tracking.TrackingService` (docs/dashboard.md#attribution-page).

>>> views = AttributionViews(TrackingService(sessions), sessions)
>>> views.accounts()                                  # every account with trades, its source
>>> view = views.view("p1", benchmark="NASDAQ")       # the page's tables, one call
>>> view.by_label, view.hour_weekday, view.risk, view.fit.alpha_beta["alpha"]
>>> views.trip("p1", view.trips["trip_id"].iloc[0])   # one round trip: fills, context, bars

The tables are the ones ``app.py attribution --json`` prints (the same analytics on the same
round trips, :meth:`TrackingService.trips`): PnL by label, regime and size, risk by any
dimension, label patterns, alpha/beta (empyrical's convention) and the factor regression; plus
the hour x weekday cross table of net PnL by the rule of ``by='hour'`` and ``by='weekday'``.
A label filter keeps the round trips carrying that label and every table follows it.

An account's fills and round trips are read once per version (its stored fill count: trades
are append-only) and kept for the last few accounts asked, so the page's filters, theme and
row clicks recompute tables, never re-read the account.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analytics.attribution import (
    WEEKDAYS,
    pattern_analysis,
    pnl_attribution,
    risk_attribution,
)
from analytics.attribution.groups import HOURS, group_codes
from analytics.trade_summary import trade_summary
from database.repositories.candles import CandleRepository
from market.resample import resample
from market.timeframes import SUPPORTED, Timeframe
from services.tracking import BenchmarkFit, TrackingService, UnknownAccountError

CACHED_ACCOUNTS = 4  # accounts whose fills and round trips stay in memory
TRIP_BARS = 90  # a trade's chart: the coarsest timeframe needed to show the trip in this many
PAD_BARS = 25  # bars before the entry and after the exit


@dataclass(frozen=True)
class AccountChoice:
    """An account with trades: ``source`` of its first trade (paper, freqtrade, csv, ...),
    ``capital`` the paper account's starting cash (None for another source)."""

    name: str
    fills: int
    source: str | None
    capital: float | None

    @property
    def label(self) -> str:
        return f"{self.name} · {self.source or 'unknown source'} · {self.fills:,} fills"


@dataclass(frozen=True)
class AttributionView:
    account: str
    source: str | None
    strategy: str | None
    label: str | None
    strategies: list[str]  # every strategy of the account
    labels: list[str]  # every label of the account's (strategy's) round trips
    trips: pd.DataFrame  # the round trips shown: trip_id, number, labels, context
    summary: dict[str, Any]  # analytics.trade_summary of ``trips``
    by_label: pd.DataFrame  # pnl_attribution tables (the "all" row last)
    by_regime: pd.DataFrame
    by_size: pd.DataFrame
    hour_weekday: pd.DataFrame  # hour_weekday_table
    risk: pd.DataFrame  # risk_attribution by ``risk_by``
    risk_by: str
    patterns: pd.DataFrame
    fit: BenchmarkFit | None  # None: no benchmark asked


@dataclass(frozen=True)
class TripBars:
    """The bars around a round trip: ``candles`` of ``timeframe`` (None: ``symbol`` has no
    stored bars, ``note`` says so)."""

    symbol: str
    timeframe: Timeframe | None
    candles: pd.DataFrame | None
    note: str = ""


@dataclass(frozen=True)
class TripDetail:
    trip: dict[str, Any]  # the round trip's row
    fills: pd.DataFrame  # its entry and exit fills with their market context, in time order
    bars: TripBars


def hour_weekday_table(trips: pd.DataFrame, clock: str = "entry") -> pd.DataFrame:
    """Net PnL and trade count per (weekday, hour) of the trips' ``clock`` time in UTC, by
    the rule of ``pnl_attribution(by='hour')`` and ``by='weekday'``: one row per weekday
    (Mon..Sun) and hour with trips, columns ``weekday, hour, trades, net_pnl``. Its net PnL
    sums to the trips' total."""
    if not len(trips):
        return pd.DataFrame({"weekday": [], "hour": [], "trades": [], "net_pnl": []})
    rows, hours, hour_names = group_codes(trips, "hour", clock=clock)  # type: ignore[arg-type]
    _, days, day_names = group_codes(trips, "weekday", clock=clock)  # type: ignore[arg-type]
    net = trips["net_pnl"].to_numpy(float)[rows]
    cell = days * len(hour_names) + hours
    size = len(day_names) * len(hour_names)
    count = np.bincount(cell, minlength=size)
    total = np.bincount(cell, weights=net, minlength=size)
    used = np.flatnonzero(count)
    return pd.DataFrame(
        {
            "weekday": day_names[used // len(hour_names)].astype(str),
            "hour": hour_names[used % len(hour_names)].astype(str),
            "trades": count[used],
            "net_pnl": total[used],
        }
    )


def with_label(trips: pd.DataFrame, label: str | None) -> pd.DataFrame:
    """The trips carrying ``label`` (all of them for None)."""
    if not label:
        return trips
    keep = [label in (labels or ()) for labels in trips["labels"]]
    return trips.loc[keep].reset_index(drop=True)


def numbered(trips: pd.DataFrame) -> pd.DataFrame:
    """The trips with ``number`` (1 for the first entry) and ``trip_id``: the trade id of its
    first entry fill (a fill opens at most one round trip, so it names the trip)."""
    out = trips.sort_values("entry_time", kind="stable").reset_index(drop=True)
    out.insert(0, "number", np.arange(1, len(out) + 1))
    out.insert(0, "trip_id", [ids[0] for ids in out["entry_trade_ids"]])
    return out


class AttributionViews:
    def __init__(
        self,
        tracking: TrackingService,
        sessions: sessionmaker[Session],
        *,
        cached_accounts: int = CACHED_ACCOUNTS,
    ) -> None:
        self._tracking = tracking
        self._sessions = sessions
        self._cached = cached_accounts
        self._cache: OrderedDict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = OrderedDict()
        self._lock = threading.Lock()

    def accounts(self) -> list[AccountChoice]:
        """Every account with trades (paper and imported side by side), by name."""
        return [
            AccountChoice(name, fills, source, self._tracking.capital(name))
            for name, fills, source in self._tracking.accounts()
        ]

    def account(self, name: str) -> AccountChoice | None:
        """The account ``name`` (None: it has no trades)."""
        for account, fills, source in self._tracking.accounts():
            if account == name:
                return AccountChoice(name, fills, source, self._tracking.capital(name))
        return None

    def benchmark_for(self, account: str, symbols: list[str]) -> str | None:
        """The benchmark to open ``account`` on: of ``symbols`` (the stored ones), the one it
        traded most often; else none."""
        _, trips = self._fills_and_trips(account)
        traded = trips["symbol"].value_counts()
        return next((str(s) for s in traded.index if s in symbols), None)

    def _fills_and_trips(self, account: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The account's fills and numbered round trips (every strategy), cached per version."""
        stored = {name: fills for name, fills, _ in self._tracking.accounts()}
        if account not in stored:
            raise UnknownAccountError(f"account {account!r} has no trades")
        key = (account, stored[account])
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        fills = self._tracking.fills(account)
        trips = numbered(self._tracking.trips(fills, excursions=True))  # MAE/MFE for the grid
        with self._lock:
            self._cache[key] = (fills, trips)
            while len(self._cache) > self._cached:
                self._cache.popitem(last=False)
        return fills, trips

    def view(
        self,
        account: str,
        *,
        strategy: str | None = None,
        label: str | None = None,
        benchmark: str | None = None,
        capital: float | None = None,
        risk_by: str = "label",
    ) -> AttributionView:
        """The page's tables for ``account`` (its ``strategy``'s trips; those carrying
        ``label``); alpha/beta and factors against ``benchmark`` on ``capital`` (default: the
        paper account's starting cash)."""
        fills, every_trip = self._fills_and_trips(account)
        strategies = sorted(fills["strategy_id"].unique().tolist())
        trips = every_trip
        if strategy:
            trips = trips.loc[trips["strategy_id"] == strategy].reset_index(drop=True)
        labels = sorted({x for labels in trips["labels"] for x in labels})
        trips = with_label(trips, label)
        choice = self.account(account)
        return AttributionView(
            account=account,
            source=None if choice is None else choice.source,
            strategy=strategy or None,
            label=label or None,
            strategies=strategies,
            labels=labels,
            trips=trips,
            summary=trade_summary(trips),
            by_label=pnl_attribution(trips, "label"),
            by_regime=pnl_attribution(trips, "regime"),
            by_size=pnl_attribution(trips, "size"),
            hour_weekday=hour_weekday_table(trips),
            risk=risk_attribution(trips, risk_by),
            risk_by=risk_by,
            patterns=pattern_analysis(trips),
            fit=None if not benchmark else self._fit(trips, account, benchmark, capital),
        )

    def _fit(
        self, trips: pd.DataFrame, account: str, symbol: str, capital: float | None
    ) -> BenchmarkFit:
        """Alpha/beta and the factors as TrackingService.attribution computes them."""
        return self._tracking.benchmark_fit(trips, account, symbol, capital)

    # --- bars -------------------------------------------------------------------------------

    def daily_bars(self, symbol: str) -> tuple[pd.DataFrame, bool] | None:
        """A benchmark's bars and whether it trades around the clock (None: not stored)."""
        return self._tracking.benchmark_bars(symbol)

    def trip_bars(self, symbol: str, entry: pd.Timestamp, exit_: pd.Timestamp) -> TripBars:
        """The bars of ``symbol`` around a trip: the finest timeframe (stored, or resampled
        from the finest stored) that shows the trip in at most :data:`TRIP_BARS` bars, with
        :data:`PAD_BARS` before the entry and after the exit."""
        with self._sessions() as session:
            repo = CandleRepository(session)
            stored = sorted(Timeframe.parse(t) for t in repo.timeframes(symbol))
            if not stored:
                return TripBars(symbol, None, None, f"no stored bars of {symbol}")
            base = stored[0]
            span = max(exit_ - entry, pd.Timedelta(0))
            choices = [
                base,
                *(t for t in map(Timeframe.parse, SUPPORTED) if base.can_resample_to(t)),
            ]
            timeframe = next((t for t in choices if span / t.delta <= TRIP_BARS), choices[-1])
            pad = timeframe.delta * PAD_BARS
            start = timeframe.bucket_start_ms(int((entry - pad).timestamp() * 1000))
            candles = repo.frame(
                symbol,
                base.label,
                start=pd.Timestamp(int(start), unit="ms", tz="UTC"),
                end=exit_ + pad,
            )
        if timeframe != base:
            candles = resample(candles, base, timeframe, include_forming=True)
        if candles.empty:
            note = f"no stored bars of {symbol} around this trade"
            return TripBars(symbol, timeframe, None, note)
        return TripBars(symbol, timeframe, candles)

    def trip(self, account: str, trip_id: str) -> TripDetail | None:
        """One round trip of ``account`` (its ``trip_id``): the row, its fills and the bars
        around it; None when the account holds no such trip."""
        _, trips = self._fills_and_trips(account)
        found = trips.loc[trips["trip_id"] == trip_id]
        if found.empty:
            return None
        row = found.iloc[0].to_dict()
        ids = {*row["entry_trade_ids"], *row["exit_trade_ids"]}
        # the trip's own fills, read again with their whole market context
        window = self._tracking.fills(
            account, start=row["entry_time"], end=row["exit_time"], context=True
        )
        own = window.loc[window["trade_id"].isin(ids)].sort_values("time", kind="stable")
        bars = self.trip_bars(row["symbol"], row["entry_time"], row["exit_time"])
        return TripDetail(row, own.reset_index(drop=True), bars)


__all__ = [
    "HOURS",
    "WEEKDAYS",
    "AccountChoice",
    "AttributionView",
    "AttributionViews",
    "BenchmarkFit",
    "TripBars",
    "TripDetail",
    "hour_weekday_table",
    "numbered",
    "with_label",
]
