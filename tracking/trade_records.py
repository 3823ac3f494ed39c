"""TradeRecords made from values already checked, a field at a time through each slot's
setter: the tracker's stored records (a record with its context, labels and pnl added) and
the CSV importer's (cells checked a column at a time); the checks of a batch given to the
tracker (records, no id repeated within an account); and (from :mod:`database.gc_pause`)
the garbage collector held off while many are made.

:func:`database.records.unchecked_trade` does the same by keyword; its sixteen keywords cost
about three times these positional setters (~2 us against ~0.7 us a record), which counted
at hundreds of thousands of records a second.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable
from typing import Any

from database.errors import DuplicateTradeError
from database.gc_pause import collector_paused  # the tracker's and importers' batches
from database.records import TradeRecord

FIELDS = ("trade_id", "account_id", "strategy_id", "symbol", "side", "price", "volume",
          "execution_time", "commission", "market_context", "labels", "pnl", "cumulative_pnl",
          "run_id", "source", "order_id")  # fmt: skip
if tuple(f.name for f in dataclasses.fields(TradeRecord)) != FIELDS:
    raise TypeError("trade_records sets every field of TradeRecord in order: its fields changed")
_PUT = tuple(TradeRecord.__dict__[name].__set__ for name in FIELDS)  # each slot's setter
_NEW = object.__new__


def checked_record(
    trade_id: str, account_id: str, strategy_id: str, symbol: str, side: str, price: float,
    volume: float, execution_time: Any, commission: float, market_context: Any,
    labels: tuple[str, ...], pnl: float | None, cumulative_pnl: float | None,
    run_id: int | None, source: str | None, order_id: str | None,
) -> TradeRecord:  # fmt: skip
    """A TradeRecord of these values as they are (positional, :data:`FIELDS`' order): the
    caller has made every check ``TradeRecord.__post_init__`` makes (texts non-empty and
    within the table's lengths, the side, finite positive price and volume, a UTC time...)."""
    put = _PUT
    out = _NEW(TradeRecord)
    put[0](out, trade_id), put[1](out, account_id), put[2](out, strategy_id)
    put[3](out, symbol), put[4](out, side), put[5](out, price), put[6](out, volume)
    put[7](out, execution_time), put[8](out, commission), put[9](out, market_context)
    put[10](out, labels), put[11](out, pnl), put[12](out, cumulative_pnl)
    put[13](out, run_id), put[14](out, source), put[15](out, order_id)
    return out


def refuse_repeated(batch: list[TradeRecord]) -> None:
    """DuplicateTradeError naming the ids an account repeats within ``batch``."""
    ids: dict[str, set[str]] = {}
    for record in batch:
        seen = ids.setdefault(record.account_id, set())
        if record.trade_id in seen:
            repeated = [r.trade_id for r in batch if r.account_id == record.account_id]
            twice = {t for t in repeated if repeated.count(t) > 1}
            raise DuplicateTradeError(twice, where="within the batch", account=record.account_id)
        seen.add(record.trade_id)


_KEY = operator.attrgetter("account_id", "trade_id")


def unrepeated(
    batch: list[TradeRecord], outcomes: list[Any]
) -> tuple[list[TradeRecord], list[int]]:
    """The trades of a streamed group but those repeating an (account, id) before them in it
    (each one's outcome set to the DuplicateTradeError naming it), and their places in it."""
    keys = list(map(_KEY, batch))
    if len(set(keys)) == len(keys):  # the common case: none repeated
        return batch, list(range(len(batch)))
    accepted: list[TradeRecord] = []
    places: list[int] = []
    seen: set[tuple[str, str]] = set()
    for k, (record, key) in enumerate(zip(batch, keys, strict=True)):
        if key in seen:
            outcomes[k] = DuplicateTradeError(
                [record.trade_id], where="within the batch", account=record.account_id
            )
            continue
        seen.add(key)
        accepted.append(record)
        places.append(k)
    return accepted, places


def checked_records(records: Iterable[TradeRecord]) -> list[TradeRecord]:
    """``records`` as a list, TypeError naming the first that is not a TradeRecord."""
    out = list(records)
    for k, record in enumerate(out):
        if not isinstance(record, TradeRecord):
            raise TypeError(f"record {k}: expected TradeRecord, got {type(record).__name__}")
    return out


__all__ = [
    "FIELDS",
    "checked_record",
    "checked_records",
    "collector_paused",
    "refuse_repeated",
    "unrepeated",
]
