"""Trade tracking as the command line, the pages and the API use it (docs/tracking.md).

>>> service = TrackingService(sessions)
>>> report = service.import_file("tradesv3.sqlite", "freqtrade", "ft-live")
>>> service.performance("ft-live", period="monthly")["periods"][0]["trade_summary"]
>>> service.attribution("ft-live", by="label")["groups"]

One :class:`~tracking.tracker.TradeTracker` records every trade (imports here, the paper
broker's fills in the runner's transactions); the queries read an account's trades as the
fills frame and hand them to the pure analytics (round trips, summary, attribution).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from analytics.round_trips import round_trips
from analytics.trade_summary import PERIODS, performance_summary, trip_labels
from database.models import Trade
from database.repositories.executions import ExecutionRepository
from database.repositories.trades import TradeRepository
from services.benchmark_fit import BenchmarkFit, benchmark_bars, fit_benchmark
from services.live_accounts import DEFAULT_SIZE_EDGES, LiveAccounts, json_rows
from services.tracking_documents import performance_document
from services.tracking_imports import import_columns, new_orders, orders_line
from services.tracking_trips import HeldTrips, bars_of, open_positions_of
from tracking.annotator import MarketAnnotator
from tracking.importers import ImportedTrades, read_trades
from tracking.stored_walk import StoredWalk, walk_stored
from tracking.tracker import TradeTracker

log = logging.getLogger(__name__)

CONTEXT_COLUMNS = ("volatility_regime", "market_session", "trend", "volume_profile", "price_level")
PERFORMANCE_MEMO = 32  # performance documents kept (each for one account's rows and query)


class UnknownAccountError(LookupError):
    """No trade is stored for the account asked."""


@dataclass(frozen=True)
class ImportReport:
    """What an import read, stored and left out (``dry_run``: what it would store)."""

    summary: str  # the reader's: rows read, fills, skipped with reasons
    account: str
    read: int  # fills in the file
    stored: int  # new fills stored (or that a dry run would store)
    already_stored: int  # fills of the file the account already has
    dry_run: bool
    skipped: dict[str, int] = field(default_factory=dict)
    # the orders behind the fills, for TCA (None for a CSV of fills): stored (or that a dry
    # run would store), already_stored, left_out (by reason), notes
    orders: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account, "read": self.read, "stored": self.stored,
            "already_stored": self.already_stored, "dry_run": self.dry_run,
            "skipped": dict(self.skipped), "orders": self.orders, "summary": self.summary,
        }  # fmt: skip


# what a round trip takes of its fills: the union of their labels, its entry's context
_CARRIED = ("labels", "volatility_regime", "market_session")


class TrackingService:
    def __init__(
        self, sessions: sessionmaker[Session], tracker: TradeTracker | None = None
    ) -> None:
        self._sessions = sessions
        self.live_accounts = LiveAccounts()
        self._trips_memo: dict[tuple, HeldTrips] = {}
        self._fills_memo: dict[tuple, pd.DataFrame] = {}  # (account, strategy, start, end)
        self._performance_memo: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._capital_memo: dict[str, tuple[int, float | None]] = {}  # account -> (row, capital)
        self._computing: dict[tuple, threading.Lock] = {}  # documents being computed
        # a server's requests do not wait for an account's first read (see _live_summary)
        self.read_in_background = False
        self._reading: set[str] = set()  # accounts being read so
        self._memo_lock = threading.Lock()
        annotator = MarketAnnotator() if tracker is None else None
        self.tracker = tracker or TradeTracker(sessions, annotator=annotator)
        # its labels' rules (of a tracker made here): import_file's column-wise recording's
        self._label_config = None if annotator is None else annotator.config
        # every batch, the tracker's own and those it reads of other processes (catch_up)
        self.tracker.add_listener(self.live_accounts, foreign=True)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The database's session factory (the API's status route pings it)."""
        return self._sessions

    def live(self, account: str, by: Iterable[str] = ("label",)) -> dict[str, Any]:
        """The account's live view (trade summary, labels, PnL attribution by ``by``) from
        memory: read from the database the first time, then kept up by each trade this
        process records and, read when viewed, each trade other processes stored since
        (TradeTracker.catch_up: only the rows after the newest the view holds)."""
        self._follow(account)
        return self.live_accounts.view(account, by)

    def _follow(self, account: str) -> dict[str, Any]:
        """Bring the account's live state up to its newest stored row (read whole the first
        time) and give its summary figures (LiveAccounts.summary).

        A state that already ends at the account's newest stored row (one indexed lookup) is
        read as it is, as the catch-up would find nothing to read; else the catch-up and the
        read happen under the tracker's lock, which orders every batch of every account (a
        reader waiting on it waits for other accounts' writes too)."""
        if self.live_accounts.known(account):
            found = self.live_accounts.summary(account, self._newest_row(account))
            if found is not None:
                return found
        return self._follow_locked(account)

    def _follow_locked(self, account: str) -> dict[str, Any]:
        """:meth:`_follow` under the tracker's lock: the catch-up, the first read (the
        account's fills and round trips) if the state is not followed yet, the figures."""
        tracker = self.tracker
        with tracker.exclusive():  # no batch is made between the catch-up and the read
            if self.live_accounts.known(account) or tracker.holds(account):
                tracker.catch_up(account)
            if not self.live_accounts.known(account):
                self._seed(account)
            found = self.live_accounts.summary(account)
        assert found is not None
        return found

    def _seed(self, account: str) -> None:
        """Start the account's live state from its stored fills (under the tracker's lock).
        Read through the columnar cache (they say their stored rows), the fills are walked
        once for both the round trips and, when the tracker does not know the account yet,
        its positions (tracking.stored_walk); else the tracker reads the account first."""
        tracker = self.tracker
        fills = self.fills(account)
        version = fills.attrs.get("stored_version")
        walk = walk_stored(fills) if version else None
        if not tracker.holds(account):
            if walk is None:
                tracker.catch_up(account)
                fills = self.fills(account) if not version else fills  # as the tracker read it
            else:
                tracker.adopt(account, walk, int(version[2]))
        row = version[2] if version else tracker.newest_row(account)
        self.live_accounts.seed(account, self._trip_table(fills, walk=walk), fills, row)

    def _live_summary(self, account: str) -> dict[str, Any] | None:
        """:meth:`_follow`'s figures; with ``read_in_background``, None while an account not
        followed yet is being read whole on a thread of its own (minutes at 1,000,000 trades,
        the tracker's read of the account included): the caller answers meanwhile from the
        stored trades, as it did before the live state (the same figures: tested)."""
        if not self.read_in_background or self.live_accounts.known(account):
            return self._follow(account)
        with self._memo_lock:
            if account in self._reading:
                return None
            self._reading.add(account)

        def read() -> None:
            try:
                self._follow(account)
            except UnknownAccountError:
                pass  # no trade yet: the request says so itself
            except Exception:  # the requests go on from the stored trades; logged
                log.exception("the live state of %r could not be read", account)
            finally:
                with self._memo_lock:
                    self._reading.discard(account)

        threading.Thread(target=read, name=f"live-state-{account}", daemon=True).start()
        return None

    # --- ingestion ------------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path,
        fmt: str,
        account: str,
        *,
        dry_run: bool = False,
        columns: bool = True,
    ) -> ImportReport:
        """Read ``path`` (every problem named: TradeImportError, nothing stored) and record
        its fills in one transaction; fills the account already has are left out, so a second
        import of the same file stores nothing new. A format that gives the orders behind the
        fills (freqtrade, Hummingbot, orders-csv) stores them in the same transaction (an order
        already stored is left out; stored with other values, the file is refused naming it).
        ``dry_run``: check and count only. ``columns``: tracking_imports.import_columns may
        record it (the tracker's listeners hear no batch then: a relaying caller says no)."""
        if columns and not dry_run and fmt == "csv":
            done = import_columns(self._sessions, self.tracker, self._label_config, path, account)
            if done is not None:
                return ImportReport(done[0], account, sum(done[1:]), *done[1:], False, {})
        read = read_trades(path, fmt, account)
        records = read.records
        if read.executions is not None:
            return self._import_with_orders(read, account, dry_run)
        if dry_run:
            with self._sessions() as session:
                known = TradeRepository(session).stored_ids(account, (r.trade_id for r in records))
            stored, already = len(records) - len(known), len(known)
        else:
            outcome = self.tracker.record_many(records, skip_stored=True)
            stored, already = len(outcome.stored), len(outcome.skipped)
        return ImportReport(
            read.summary(), account, len(records), stored, already, dry_run, dict(read.skipped)
        )

    def _import_with_orders(
        self, read: ImportedTrades, account: str, dry_run: bool
    ) -> ImportReport:
        """The fills through the tracker and their orders into the execution tables, in one
        transaction: both are stored or neither."""
        batch = read.executions
        assert batch is not None
        records = read.records
        if dry_run:
            with self._sessions() as session:
                new = new_orders(session, account, batch, read.source.path)
                known = TradeRepository(session).stored_ids(account, (r.trade_id for r in records))
            stored, already = len(records) - len(known), len(known)
        else:
            with self._sessions.begin() as session:
                new = new_orders(session, account, batch, read.source.path)
                ExecutionRepository(session).add(account, new.orders, new.fills, checked=True)
                outcome = self.tracker.record_in(session, records, skip_stored=True)
            stored, already = len(outcome.stored), len(outcome.skipped)
        orders = {
            "stored": len(new.orders), "already_stored": len(batch.orders) - len(new.orders),
            "left_out": dict(batch.left_out), "notes": dict(batch.notes),
        }  # fmt: skip
        summary = f"{read.summary()}\n{orders_line(orders, dry_run)}"
        return ImportReport(
            summary, account, len(records), stored, already, dry_run, dict(read.skipped), orders
        )

    def import_news(self, path: str | Path) -> tuple[int, int]:
        """Read a news calendar (every problem named, nothing stored on one) and store the
        events not stored yet: (events in the file, new ones)."""
        from database.repositories.news import NewsRepository
        from tracking.news import read_news

        events = read_news(path)
        with self._sessions.begin() as session:
            new = NewsRepository(session).add(events)
        return len(events), new

    # --- queries --------------------------------------------------------------------------

    def accounts(self) -> list[tuple[str, int, str | None]]:
        """(account, trades, source) of every account with trades."""
        with self._sessions() as session:
            return TradeRepository(session).accounts()

    def fills(
        self,
        account: str,
        *,
        strategy: str | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        context: bool = False,
    ) -> pd.DataFrame:
        """The account's trades as the fills frame (TradeRepository.frame: the volatility
        regime and market session as columns; with ``context`` the whole market context too,
        its categories flattened into :data:`CONTEXT_COLUMNS`); UnknownAccountError when the
        account has no trades at all."""
        key = (account, strategy, start, end)
        with self._sessions() as session:
            repo = TradeRepository(session)
            frame = None if context else self._fills_kept(session, key)
            # a query session that writes nothing: the account's columnar cache serves it
            if frame is None:
                frame = repo.frame(
                    account, strategy_id=strategy, start=start, end=end, context=context,
                    cached=not context,
                )  # fmt: skip
                if not context and frame.attrs.get("stored_version") and len(frame):
                    with self._memo_lock:  # the last two frames read (a view reads one twice)
                        self._fills_memo = dict([(key, frame), *self._fills_memo.items()][:2])
                    frame = _shallow(frame)
            known = [a for a, _, _ in repo.accounts()] if frame.empty else [account]
        if account not in known:
            raise UnknownAccountError(
                f"account {account!r} has no trades (accounts with trades:"
                f" {', '.join(known) or 'none'})"
            )
        if context:
            for column in CONTEXT_COLUMNS:
                frame[column] = [c.get(column) for c in frame["market_context"]]
        return frame

    def _fills_kept(self, session: Session, key: tuple) -> pd.DataFrame | None:
        """The fills frame read last for ``key`` if the account's stored rows are still the
        ones it holds (its stored version: the database, the row count and the last row;
        TradeRepository.holds); else None."""
        with self._memo_lock:
            found = self._fills_memo.get(key)
        if found is None:
            return None
        same = TradeRepository(session).holds(key[0], found.attrs.get("stored_version"))
        return _shallow(found) if same else None

    def trips(
        self, fills: pd.DataFrame, *, excursions: bool = False, walk: StoredWalk | None = None
    ) -> pd.DataFrame:
        """Round trips of ``fills`` with their labels and the entry's market context; with
        ``excursions`` their MAE and MFE from each symbol's stored bars (NaN without bars).

        Fills read through the account's trade cache say which stored rows they are
        (``attrs["stored_version"]``: the database, the account's row count and last row):
        their trips are computed once and kept for the next caller of the same rows (the
        performance and the attribution of one view)."""
        return self._held_trips(fills, excursions, walk).full()

    def _trip_table(self, fills: pd.DataFrame, walk: StoredWalk | None = None) -> pd.DataFrame:
        """:meth:`trips` without ``entry_trade_ids`` and ``exit_trade_ids`` (what the
        summaries and attributions read: a tuple per trip not made for them)."""
        return self._held_trips(fills, False, walk).table.copy(deep=False)

    def _held_trips(
        self, fills: pd.DataFrame, excursions: bool, walk: StoredWalk | None
    ) -> HeldTrips:
        version = fills.attrs.get("stored_version")
        if version is None or not len(fills):
            return self._trips(fills, excursions, walk)
        first = fills["trade_id"].iat[0]
        last = fills["trade_id"].iat[-1]
        key = (version, len(fills), first, last, excursions)
        with self._memo_lock:
            found = self._trips_memo.get(key)
        if found is None:
            found = self._trips(fills, excursions, walk)
            with self._memo_lock:
                self._trips_memo[key] = found
                while len(self._trips_memo) > 8:
                    self._trips_memo.pop(next(iter(self._trips_memo)))
        return found

    def _trips(
        self, fills: pd.DataFrame, excursions: bool, walk: StoredWalk | None = None
    ) -> HeldTrips:
        """``walk``: the fills' one walk (tracking.stored_walk), made if not given for one
        account's fills (the service's queries: the same trips as round_trips')."""
        carried = [c for c in _CARRIED if c in fills.columns]
        if walk is None and not excursions and fills["account_id"].nunique() == 1:
            walk = walk_stored(fills)
        if walk is not None and not excursions and "labels" in carried:
            trips = walk.trips(carried, ids=False)
            held = HeldTrips(trips, walk.trip_ids())
        else:
            if walk is not None and not excursions:
                trips = walk.trips(carried)
            else:
                bars = self._bars_of(fills) if excursions else None
                trips = round_trips(fills, bars, carry=carried)
            if "labels" not in carried:
                trips["labels"] = trip_labels(trips, fills)
            held = HeldTrips(trips, None)
        for column in _CARRIED[1:]:
            if column not in carried:
                trips[column] = None
        return held

    def _bars_of(self, fills: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Each symbol's finest stored bars over the span of its fills."""
        return bars_of(self._sessions, fills)

    def capital(self, account: str) -> float | None:
        """The paper account's starting cash; None for an account of another source."""
        from database.repositories.trading import TradingRepository

        with self._sessions() as session:
            row = TradingRepository(session).account(account)
        return None if row is None else float(row.starting_cash)

    def performance(
        self,
        account: str,
        *,
        strategy: str | None = None,
        period: str = "all",
        capital: float | None = None,
        preset: str = "quantstats",
        metrics: bool = True,
    ) -> dict[str, Any]:
        """The performance summary (JSON-ready): per period its trade summary, per-label
        performance and, unless ``metrics`` is False, metrics (conventions:
        analytics.trade_summary).

        Over all the account's trades (no strategy, period ``all``) without metrics to
        compute (not asked, or no capital: they are empty) the figures are the live state's
        (:meth:`_follow`): a new trade costs its own delta, whichever process stored it. The
        rest is computed from the stored trades and kept until the account's next trade."""
        if period not in PERIODS:
            raise ValueError(f"period={period!r} is invalid: expected one of {list(PERIODS)}")
        if strategy is None and period == "all" and (capital is None or not metrics):
            state = self._live_summary(account)
            if state is not None:
                if capital is None:
                    capital = self._capital_at(account, state["row"])
                if capital is None or not metrics:
                    return performance_document(account, state, capital, preset, metrics)
        # trades are immutable and append-only (database.models refuses updates and deletes):
        # the account's newest row id names its stored trades, so an answer made for it holds
        # until a trade is added (one indexed lookup instead of reading and summarising them;
        # a paper account's capital, its starting cash, is set once when it is created;
        # two processes writing one account at once may commit ids out of order: docs/api.md)
        newest = self._newest_row(account)
        key = (account, newest, strategy, period, capital, preset)
        found = self._memo_get(key)
        if found is None:
            # one computation per document: requests asking it meanwhile wait for it (a burst
            # after a new trade would otherwise compute it once each, side by side)
            with self._memo_lock:
                computing = self._computing.setdefault(key, threading.Lock())
            with computing:
                found = self._memo_get(key)
                if found is None:
                    found = self._performance(account, strategy, period, capital, preset)
                    if newest:
                        with self._memo_lock:
                            self._performance_memo[key] = found
                            while len(self._performance_memo) > PERFORMANCE_MEMO:
                                self._performance_memo.popitem(last=False)
            with self._memo_lock:
                self._computing.pop(key, None)
        found = copy.deepcopy(found)  # the caller's own: the memo is never changed
        if not metrics:
            for entry in found["periods"]:
                del entry["metrics"]
        return found

    def _memo_get(self, key: tuple) -> dict[str, Any] | None:
        with self._memo_lock:
            found = self._performance_memo.get(key)
            if found is not None:
                self._performance_memo.move_to_end(key)
            return found

    def _capital_at(self, account: str, row: int) -> float | None:
        """:meth:`capital`, looked up again only once the account has a new stored row (as the
        memo of documents did: a paper account's starting cash is set once, at creation)."""
        with self._memo_lock:
            found = self._capital_memo.get(account)
        if found is not None and found[0] == row:
            return found[1]
        capital = self.capital(account)
        with self._memo_lock:
            self._capital_memo[account] = (row, capital)
        return capital

    def _newest_row(self, account: str) -> int:
        with self._sessions() as session:
            newest = session.scalar(select(func.max(Trade.id)).where(Trade.account_id == account))
        return int(newest or 0)

    def _performance(
        self, account: str, strategy: str | None, period: str, capital: float | None, preset: str
    ) -> dict[str, Any]:
        fills = self.fills(account, strategy=strategy)
        capital = capital if capital is not None else self.capital(account)
        trips = self._trip_table(fills)
        return {
            "account_id": account,
            "strategy_id": strategy,
            "period": period,
            "capital": capital,
            "convention": preset,
            "fills": len(fills),
            "open_positions": open_positions_of(fills),
            "periods": performance_summary(
                fills, trips, capital=capital, period=period, preset=preset
            ),
        }

    def comparison(
        self,
        account: str,
        spans: dict[str, tuple[pd.Timestamp, pd.Timestamp]],
        *,
        strategy: str | None = None,
        capital: float | None = None,
        preset: str = "quantstats",
    ) -> dict[str, Any]:
        """The performance of named spans (``{"a": (start, end), "b": ...}``, inclusive) side
        by side, as :meth:`performance` gives a period: the fills in the span, the round trips
        exiting in it (their PnL counted whole, entries before the span included)."""
        fills = self.fills(account, strategy=strategy)
        capital = capital if capital is not None else self.capital(account)
        trips = self._trip_table(fills)
        out = []
        for name, (start, end) in spans.items():
            in_fills = fills[(fills["time"] >= start) & (fills["time"] <= end)]
            exits = trips["exit_time"] if len(trips) else pd.Series([], dtype=fills["time"].dtype)
            in_trips = trips[((exits >= start) & (exits <= end)).to_numpy()]
            [entry] = performance_summary(
                in_fills, in_trips, capital=capital, period="all", preset=preset
            )
            out.append(entry | {"period": name, "start": start.isoformat(), "end": end.isoformat()})
        return {"account_id": account, "strategy_id": strategy, "capital": capital,
                "convention": preset, "periods": out}  # fmt: skip

    def attribution(
        self,
        account: str,
        *,
        by: str,
        strategy: str | None = None,
        benchmark: str | None = None,
        capital: float | None = None,
        clock: str = "entry",
    ) -> dict[str, Any]:
        """PnL attribution and risk attribution by ``by``, label patterns, and with a
        ``benchmark`` symbol alpha/beta (empyrical's convention) and the factor regression
        (conventions: docs/attribution.md). Alpha, beta and the regression need the daily
        returns, so the account's capital (a paper account's own; else ``capital``)."""
        from analytics.attribution import pattern_analysis, pnl_attribution, risk_attribution

        fills = self.fills(account, strategy=strategy)
        trips = self._trip_table(fills)
        out: dict[str, Any] = {
            "account_id": account,
            "strategy_id": strategy,
            "by": by,
            "clock": clock,
            "trips": len(trips),
            "pnl": json_rows(pnl_attribution(trips, by, clock=clock)),  # type: ignore[arg-type]
            "risk": json_rows(risk_attribution(trips, by, clock=clock)),  # type: ignore[arg-type]
            "patterns": json_rows(pattern_analysis(trips)),
        }
        if benchmark is None:
            return out
        if self.benchmark_bars(benchmark) is None:
            raise UnknownAccountError(f"benchmark {benchmark!r} has no stored candles")
        fit = self.benchmark_fit(trips, account, benchmark, capital)
        out["benchmark"] = {
            "symbol": benchmark,
            "capital": fit.capital,
            **({"error": fit.error} if fit.error else {}),
            **fit.alpha_beta,
            "factors": json_rows(fit.factors),
        }
        return out

    def benchmark_fit(
        self, trips: pd.DataFrame, account: str, symbol: str, capital: float | None
    ) -> BenchmarkFit:
        """Alpha/beta and the factor regression of the trips' daily returns against ``symbol``
        on the account's capital (a paper account's own unless given):
        :func:`services.benchmark_fit.fit_benchmark`."""
        capital = capital if capital is not None else self.capital(account)
        return fit_benchmark(self._sessions, trips, symbol, capital)

    def benchmark_bars(self, symbol: str) -> tuple[pd.DataFrame, bool] | None:
        """:func:`services.benchmark_fit.benchmark_bars` of this service's database."""
        return benchmark_bars(self._sessions, symbol)


def _shallow(frame: pd.DataFrame) -> pd.DataFrame:
    """A caller's own frame over the same columns (copy on write), with the frame's attrs."""
    out = frame.copy(deep=False)
    out.attrs = dict(frame.attrs)
    return out


__all__ = [
    "CONTEXT_COLUMNS",
    "DEFAULT_SIZE_EDGES",
    "BenchmarkFit",
    "ImportReport",
    "LiveAccounts",
    "TrackingService",
    "UnknownAccountError",
]
