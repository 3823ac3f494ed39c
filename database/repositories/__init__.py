"""Repositories: typed reads and bulk writes over a Session the caller owns.

A repository never commits; the service around it owns the transaction::

    with factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", frame)
        TradeRepository(session).add_many(trades)

Bulk paths use Core statements on the tables (executemany, raw rows), not ORM objects.

One module per aggregate, each with its table handle and repository: ``candles``, ``runs``,
``signals``, ``trades``; ``strategies`` is the facade over runs and signals. Paper trading's
(``trading``) and the alerts' (``alerts``) are imported from their modules, not from here: the
command line's one-shot commands never load their models. What
they share (chunking, aware times, argument checks, the equal/within filters) is in ``_common``.
"""

from database.repositories._common import DEFAULT_CHUNK_ROWS, TimeLike
from database.repositories.candles import CANDLES, CandleRepository
from database.repositories.runs import RUNS, StrategyRunRepository
from database.repositories.signals import (
    SIGNAL_FRAME_COLUMNS,
    SIGNAL_GROUP_KEYS,
    SIGNALS,
    SignalFilters,
    SignalRepository,
    utc_day,
)
from database.repositories.strategies import StrategyRepository
from database.repositories.trades import TRADES, TradeRepository

__all__ = [
    "CANDLES",
    "DEFAULT_CHUNK_ROWS",
    "RUNS",
    "SIGNALS",
    "SIGNAL_FRAME_COLUMNS",
    "SIGNAL_GROUP_KEYS",
    "TRADES",
    "CandleRepository",
    "SignalFilters",
    "SignalRepository",
    "StrategyRepository",
    "StrategyRunRepository",
    "TimeLike",
    "TradeRepository",
    "utc_day",
]
