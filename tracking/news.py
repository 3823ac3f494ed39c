"""The user's news calendar: read from a CSV file, checked, stored in ``news_events``.

>>> events = read_news("calendar.csv")     # columns time, title[, symbol]
>>> NewsRepository(session).add(events)    # what was new

``time``: epoch milliseconds or ISO 8601 with a zone (as the fills CSV); ``title``: the event
(non-empty, at most 256 characters); ``symbol``: optional, empty for an event of every symbol
(a central bank's decision). Every problem is named by file, row and column, and a file with
any problem is rejected whole (TradeImportError). The ``news_event`` label (docs/labels.md)
marks trades near an event; the tracker reads the calendar when it starts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tracking.importers.csv_fills import _read_table, timestamp
from tracking.importers.result import ProblemLog, RowCheck

COLUMNS = ("time", "title", "symbol")
MAX_TITLE = 256
MAX_SYMBOL = 64


def read_news(path: str | Path) -> pd.DataFrame:
    """The events of ``path`` (a frame: time UTC, title, symbol or None), in time order."""
    path = Path(path)
    log = ProblemLog(str(path))
    table = _read_table(path, log)
    header = [str(name).strip().lower() for name in table.iloc[0]]
    for name in ("time", "title"):
        if name not in header:
            log.add("header", name, "missing (required: time, title; optional: symbol)")
    log.raise_if_any()
    data = table.iloc[1:].fillna("")
    index = {name: header.index(name) for name in COLUMNS if name in header}
    rows = []
    for number, cells in enumerate(data.itertuples(index=False), start=1):
        row = {name: str(cells[i]).strip() for name, i in index.items()}
        if not any(row.values()):
            continue
        check = RowCheck(log, f"row {number}", row)
        when = check.get("time", timestamp)
        title, symbol = row["title"], row.get("symbol", "")
        if not title:
            check.problem("title", "empty: an event needs a title")
        elif len(title) > MAX_TITLE:
            check.problem("title", f"{len(title)} characters: at most {MAX_TITLE}")
        if len(symbol) > MAX_SYMBOL:
            check.problem("symbol", f"{len(symbol)} characters: at most {MAX_SYMBOL}")
        if check.ok:
            rows.append((when, title, symbol or None))
    log.raise_if_any()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


__all__ = ["COLUMNS", "read_news"]
