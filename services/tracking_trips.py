"""What TrackingService keeps of round trips and reads beside them (services/tracking.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analytics.exact_sum import exact_sum
from services.live_accounts import open_positions


class HeldTrips:
    """A fills frame's round trips as the service keeps them: ``table``, without the trade id
    columns when ``ids`` makes them (on first use: the pages' trips ask them, the summaries
    and attributions do not); :meth:`full`, the trips as :meth:`TrackingService.trips`
    gives them."""

    def __init__(
        self, table: pd.DataFrame, ids: Callable[[], tuple[np.ndarray, np.ndarray]] | None
    ) -> None:
        self.table = table
        self._ids = ids
        self._made: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def full(self) -> pd.DataFrame:
        out = self.table.copy(deep=False)  # copy on write: the caller's own
        if self._ids is None:
            return out
        with self._lock:
            if self._made is None:
                self._made = self._ids()
        entries, exits = self._made
        at = out.columns.get_loc("holding_s")
        out.insert(at, "exit_trade_ids", exits)
        out.insert(at, "entry_trade_ids", entries)
        return out


def bars_of(sessions: sessionmaker[Session], fills: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each symbol's finest stored bars over the span of its fills."""
    from database.repositories.candles import CandleRepository
    from market.timeframes import Timeframe

    out: dict[str, pd.DataFrame] = {}
    with sessions() as session:
        repo = CandleRepository(session)
        for symbol, times in fills.groupby("symbol")["time"]:
            stored = repo.timeframes(str(symbol))
            if not stored:
                continue
            finest = min(stored, key=lambda t: Timeframe.parse(t).delta)
            start = times.min() - Timeframe.parse(finest).delta
            out[str(symbol)] = repo.frame(str(symbol), finest, start=start, end=times.max())
    return out


def open_positions_of(fills: pd.DataFrame) -> dict[str, float]:
    """Net quantity per symbol still open after the last fill (summed exactly, as the live
    state keeps it: services.live_accounts)."""
    signed = fills["volume"].where(fills["side"] == "buy", -fills["volume"])
    net = signed.groupby(fills["symbol"]).agg(exact_sum)
    return open_positions({str(s): float(q) for s, q in net.items()})


__all__ = ["HeldTrips", "bars_of", "open_positions_of"]
