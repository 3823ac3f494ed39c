"""Each account's live view in memory (:class:`LiveAccounts`): its trade summary, label table,
PnL attribution, fill count and open positions, kept up to date by a trade tracker's batches,
equal to a recomputation from the stored trades (the sums exact: analytics.exact_sum, so a
figure is the same double however its trades came in).

>>> live = LiveAccounts()
>>> tracker.add_listener(live, foreign=True)    # its own batches and those it reads of others
>>> live.seed("acc", trips, fills, row=812)  # the account's fills and round trips up to row 812
>>> live.view("acc", by=("label",))
>>> live.summary("acc")                         # the performance summary's figures (period all)

An account's state ends at a stored row. Each batch says, per account, the rows it spans
(newest row before it, newest after it: tracking.tracker.Recorded.rows); the batches of one
account form a chain, applied in its order whatever order they are heard in (a batch this
process commits is heard after its commit, a batch of another process as soon as the tracker
reads it): one heard before the batch it follows waits for it. A batch that ends at or before
the state's row is already in it (read with the account). A reset (the tracker read the
account whole again, because a row came in below the newest it held) drops a state that does
not end at the reset's row: read again when next viewed.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics.attribution import AttributionState
from analytics.exact_sum import ExactSum
from analytics.trade_summary import LiveSummary
from tracking.tracker import Recorded

# the live view's fixed size buckets (entry notional; quantile edges would move with each trade)
DEFAULT_SIZE_EDGES = (1_000.0, 5_000.0, 25_000.0, 100_000.0)


# what a batch brings an account: its fill count and per symbol its fills' signed volumes
# (bought > 0, sold < 0), its closed trips
_Fills = tuple[int, dict[str, np.ndarray]]
_Trips = list[dict[str, Any]]


@dataclass
class _Account:
    summary: LiveSummary
    # None until the attribution is first viewed: the summary alone skips its per-trip cost
    # (the larger part of reading an account); the trips it will take meanwhile, in order
    attribution: AttributionState | None
    fills: int
    row: int  # the newest stored row the state holds
    unattributed: list[pd.DataFrame | _Trips] = field(default_factory=list)
    # per symbol: the net quantity of its fills (bought > 0, sold < 0)
    positions: dict[str, ExactSum] = field(default_factory=dict)
    # batches heard before the one they follow: row before -> (row after, fills, trips)
    waiting: dict[int, tuple[int, _Fills, _Trips]] = field(default_factory=dict)


class LiveAccounts:
    """The live view of the accounts a process follows (those viewed since it started; see
    the module text); O(labels + dimensions) per closed round trip."""

    def __init__(self, size_edges: tuple[float, ...] = DEFAULT_SIZE_EDGES) -> None:
        self._size_edges = size_edges
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()

    def __call__(self, outcome: Recorded) -> None:
        """Apply a tracker's batch to the accounts followed; an account not followed yet is
        read whole from the database when first viewed."""
        with self._lock:
            for account in outcome.reset:
                state = self._accounts.get(account)
                if state is not None and state.row != outcome.rows[account][1]:
                    del self._accounts[account]
            followed = self._accounts
            if not followed:  # an import's process follows none: nothing to gather
                return
            fills = _batch_fills(outcome.stored, followed)
            trips: dict[str, _Trips] = defaultdict(list)
            for trip in outcome.trips:
                trips[trip["account_id"]].append(trip)
            for account, made in fills.items():
                state = self._accounts.get(account)
                if state is None:
                    continue
                span = outcome.rows.get(account)
                if span is None:  # a batch that does not say its rows: in the order heard
                    self._apply(state, made, trips[account])
                    continue
                before, after = span
                if after <= state.row:
                    continue  # read with the account already
                if before < state.row:  # part of it is in the state: cannot be split
                    del self._accounts[account]
                    continue
                state.waiting[before] = (after, made, trips[account])
                while state.row in state.waiting:
                    state.row, made, closed = state.waiting.pop(state.row)
                    self._apply(state, made, closed)

    @staticmethod
    def _apply(state: _Account, fills: _Fills, trips: _Trips) -> None:
        count, by_symbol = fills
        state.fills += count
        for symbol, signed in by_symbol.items():
            total = _position(state, symbol)
            if len(signed) < _EXTEND_FROM:  # a few: one at a time (the same exact sum)
                for value in signed.tolist():
                    total.add(value)
            else:
                total.extend(signed)
        state.summary.add_many(trips)
        if state.attribution is None:
            state.unattributed.append(trips)
        else:
            state.attribution.add_many(trips)

    def _attribution(self, state: _Account) -> AttributionState:
        """The account's attribution, made from its trips on first use."""
        if state.attribution is None:
            made = AttributionState(size_edges=self._size_edges)
            for trips in state.unattributed:
                made.add_many(
                    trips.to_dict("records") if isinstance(trips, pd.DataFrame) else trips
                )
            state.attribution, state.unattributed = made, []
        return state.attribution

    def seed(self, account: str, trips: pd.DataFrame, fills: pd.DataFrame | int, row: int) -> None:
        """Start following ``account`` from its stored fills (the fills frame: their count and
        open positions; or only their count, every position flat) and their round trips, up
        to stored row ``row``."""
        count = fills if isinstance(fills, int) else len(fills)
        state = _Account(LiveSummary(), None, count, row, unattributed=[trips])
        state.summary.extend(trips)
        if not isinstance(fills, int) and len(fills):
            volume = fills["volume"].to_numpy(dtype=float)
            signed = np.where((fills["side"] == "buy").to_numpy(), volume, -volume)
            codes, symbols = pd.factorize(fills["symbol"])
            if len(symbols) <= 16:  # a few: a pass each (an exact sum takes any order)
                parts = [signed[codes == k] for k in range(len(symbols))]
            else:  # grouped by one sort
                order = np.argsort(codes, kind="stable")
                bounds = np.searchsorted(codes[order], np.arange(len(symbols) + 1)).tolist()
                parts = [signed[order[a:b]] for a, b in itertools.pairwise(bounds)]
            for symbol, part in zip(symbols.tolist(), parts, strict=True):
                _position(state, str(symbol)).extend(part)
        with self._lock:
            self._accounts[account] = state

    def known(self, account: str) -> bool:
        return account in self._accounts

    def view(self, account: str, by: Iterable[str] = ("label",)) -> dict[str, Any]:
        with self._lock:
            state = self._accounts[account]
            return {
                "account_id": account,
                "fills": state.fills,
                "trade_summary": state.summary.trade_summary(),
                "labels": state.summary.labels(),
                "attribution": {b: json_rows(self._attribution(state).table(b)) for b in by},
            }

    def summary(self, account: str, row: int | None = None) -> dict[str, Any] | None:
        """The account's performance summary figures over all its trades (services.tracking's
        document for period ``all``): fills, open positions (net quantity per symbol, those
        over 1e-9 in size), trade summary, per-label performance, and the newest stored row
        they hold. With ``row``: None unless the state ends at that row (not followed, behind
        or ahead of it)."""
        with self._lock:
            state = self._accounts.get(account) if row is not None else self._accounts[account]
            if state is None or (row is not None and state.row != row):
                return None
            return {
                "row": state.row,
                "fills": state.fills,
                "open_positions": open_positions(
                    {s: total.value() for s, total in state.positions.items()}
                ),
                "trade_summary": state.summary.trade_summary(),
                "labels": state.summary.labels(),
            }


_POSITION = operator.attrgetter("account_id", "symbol")
_SIDE, _VOLUME = operator.attrgetter("side"), operator.attrgetter("volume")
_EXTEND_FROM = 16  # fills of a symbol from which its exact sum takes them column-wise


def _batch_fills(stored: list[Any], followed: dict[str, _Account]) -> dict[str, _Fills]:
    """Per followed account of a batch's stored trades: its fills (see _Fills), column-wise:
    grouped by (account, symbol) with one stable sort, each group in the batch's order."""
    if not stored:
        return {}
    n = len(stored)
    index: dict[tuple[str, str], int] = {}
    codes = np.fromiter(
        (index.setdefault(key, len(index)) for key in map(_POSITION, stored)), np.int64, n
    )
    volume = np.fromiter(map(_VOLUME, stored), np.float64, n)
    signed = np.where(np.fromiter(map("buy".__eq__, map(_SIDE, stored)), bool, n), volume, -volume)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(index) + 1)).tolist()
    out: dict[str, _Fills] = {}
    for (account, symbol), start, stop in zip(index, bounds, bounds[1:], strict=False):
        if account not in followed:
            continue
        count, by_symbol = out.get(account, (0, {}))
        by_symbol[symbol] = signed[order[start:stop]]
        out[account] = (count + stop - start, by_symbol)
    return out


def _position(state: _Account, symbol: str) -> ExactSum:
    found = state.positions.get(symbol)
    if found is None:
        found = state.positions[symbol] = ExactSum()
    return found


def open_positions(net: dict[str, float]) -> dict[str, float]:
    """The symbols still open: net quantity over 1e-9 in size (float residue is flat)."""
    return {s: float(q) for s, q in sorted(net.items()) if abs(q) > 1e-9}


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready rows (NaN and infinities as None, numpy scalars as Python's)."""
    names = [str(k) for k in frame.columns]
    if len(set(names)) != len(names) or not all(map(_listed_as_is, frame.dtypes)):
        return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    # column by column (Python's values: Series.tolist, as to_dict gives them), not row by row
    columns = [[_plain(v) for v in frame.iloc[:, k].tolist()] for k in range(len(names))]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _listed_as_is(dtype: Any) -> bool:
    """Whether Series.tolist gives a column of ``dtype`` as to_dict("records") does: numpy's
    dtypes, aware times and the default texts (not the nullable ones: NA, not None)."""
    return isinstance(dtype, np.dtype | pd.DatetimeTZDtype) or dtype == _TEXT


_TEXT = pd.StringDtype(na_value=np.nan)


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
