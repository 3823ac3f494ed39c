"""Executed trades (fills) read from a bot's database or a CSV file, as TradeRecords.

>>> result = read_trades("tradesv3.sqlite", "freqtrade", account="ft-live")  # doctest: +SKIP
>>> result.records[0].trade_id, result.records[0].order_id  # doctest: +SKIP
('freqtrade:1:dry_run_buy_BTC/USDT_1704189600.0', 'dry_run_buy_BTC/USDT_1704189600.0')
>>> print(result.summary())  # doctest: +SKIP
freqtrade file tradesv3.sqlite: 3 orders read, 2 fills imported, 1 skipped (1 cancelled, ...)

Formats: ``freqtrade`` (tradesv3.sqlite: tables trades and orders), ``hummingbot`` (its
database's TradeFill table), ``csv`` (documented columns), ``orders-csv`` (orders and their
fills, one row per fill). All but ``csv`` also give the orders behind the fills
(``executions``: docs/tca.md "Sources") for transaction-cost analysis. Each reader opens
its file read-only, checks every row, and either returns every fill or raises
:class:`TradeImportError` listing every problem (file, row, column, reason): a rejected file
yields nothing. Reading never writes to any database; storing is the tracker's job. The
records carry no market context, labels or PnL (the tracker adds them); their ``trade_id`` is
deterministic, so reading a file twice gives the same ids. Mappings: the readers' docstrings
and docs/tracking.md.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracking.importers.result import (
        FORMATS,
        ImportedTrades,
        ImportProblem,
        ImportSource,
        TradeImportError,
    )


def __getattr__(name: str) -> Any:
    """The names of :mod:`tracking.importers.result`, imported when first used: importing a
    light module of the package (``csv_arrow``: pyarrow and numpy alone) does not import the
    records' ORM models and pandas, so a CSV import starts Arrow's read before those load."""
    if name in __all__ and name != "read_trades":
        from tracking.importers import result

        return getattr(result, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "ImportProblem",
    "ImportSource",
    "ImportedTrades",
    "TradeImportError",
    "read_trades",
]

# each format's reader (module, function), imported when a file of it is read: a process
# that reads one format does not import the others (and what they import)
_READERS: dict[str, tuple[str, str]] = {
    "freqtrade": ("tracking.importers.freqtrade", "read_freqtrade"),
    "hummingbot": ("tracking.importers.hummingbot", "read_hummingbot"),
    "csv": ("tracking.importers.csv_fills", "read_csv_fills"),
    "orders-csv": ("tracking.importers.orders_csv", "read_orders_csv"),
}


def read_trades(path: str | Path, fmt: str, account: str) -> ImportedTrades:
    """The fills of ``path`` read as ``fmt`` (one of FORMATS), as TradeRecords of ``account``.

    Raises ValueError for an unknown format or an empty account, TradeImportError (a
    ValueError) for a file that is rejected.
    """
    from tracking.importers.result import FORMATS

    if fmt not in _READERS:
        raise ValueError(f"format={fmt!r} is invalid: expected one of {', '.join(FORMATS)}")
    if not isinstance(account, str) or not account.strip():
        raise ValueError(f"account={account!r} is invalid: expected a non-empty account name")
    module, name = _READERS[fmt]
    reader = getattr(importlib.import_module(module), name)
    return reader(path, account)
