"""Each account's live view in memory (:class:`LiveAccounts`): its trade summary, label table
and PnL attribution, kept up to date by a trade tracker's batches, equal to a recomputation
from the stored trades.

>>> live = LiveAccounts()
>>> tracker.add_listener(live, foreign=True)    # its own batches and those it reads of others
>>> live.seed("acc", trips, fills=40, row=812)  # the account's round trips up to stored row 812
>>> live.view("acc", by=("label",))

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

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics.attribution import AttributionState
from analytics.trade_summary import LiveSummary
from tracking.tracker import Recorded

# the live view's fixed size buckets (entry notional; quantile edges would move with each trade)
DEFAULT_SIZE_EDGES = (1_000.0, 5_000.0, 25_000.0, 100_000.0)


@dataclass
class _Account:
    summary: LiveSummary
    attribution: AttributionState
    fills: int
    row: int  # the newest stored row the state holds
    # batches heard before the one they follow: row before -> (row after, fills, trips)
    waiting: dict[int, tuple[int, int, list[dict[str, Any]]]] = field(default_factory=dict)


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
            fills: dict[str, int] = defaultdict(int)
            for trade in outcome.stored:
                fills[trade.account_id] += 1
            trips: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for trip in outcome.trips:
                trips[trip["account_id"]].append(trip)
            for account, count in fills.items():
                state = self._accounts.get(account)
                if state is None:
                    continue
                span = outcome.rows.get(account)
                if span is None:  # a batch that does not say its rows: in the order heard
                    self._apply(state, count, trips[account])
                    continue
                before, after = span
                if after <= state.row:
                    continue  # read with the account already
                if before < state.row:  # part of it is in the state: cannot be split
                    del self._accounts[account]
                    continue
                state.waiting[before] = (after, count, trips[account])
                while state.row in state.waiting:
                    state.row, count, closed = state.waiting.pop(state.row)
                    self._apply(state, count, closed)

    @staticmethod
    def _apply(state: _Account, fills: int, trips: list[dict[str, Any]]) -> None:
        state.fills += fills
        for trip in trips:
            state.summary.add(trip["net_pnl"], trip["fees"], trip["holding_s"], trip["labels"])
            state.attribution.add(trip)

    def seed(self, account: str, trips: pd.DataFrame, fills: int, row: int) -> None:
        """Start following ``account`` from its stored round trips: ``fills`` fills, up to
        stored row ``row``."""
        state = _Account(LiveSummary(), AttributionState(size_edges=self._size_edges), fills, row)
        for trip in trips.to_dict("records"):
            state.summary.add(trip["net_pnl"], trip["fees"], trip["holding_s"], trip["labels"])
            state.attribution.add(trip)
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
                "attribution": {b: json_rows(state.attribution.table(b)) for b in by},
            }


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready rows (NaN and infinities as None, numpy scalars as Python's)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


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
