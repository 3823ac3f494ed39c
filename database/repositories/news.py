"""NewsRepository: the user's news calendar (``news_events``, migration 0011)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from database.models import NewsEvent

NEWS: Table = NewsEvent.__table__  # type: ignore[assignment]


class NewsRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, events: pd.DataFrame) -> int:
        """Store the events (time, title, symbol) not stored yet; how many were new."""
        if events.empty:
            return 0
        stored = {
            (pd.Timestamp(t).tz_convert("UTC"), title, symbol)
            for t, title, symbol in self._session.execute(
                select(NEWS.c.time, NEWS.c.title, NEWS.c.symbol).where(
                    NEWS.c.time.between(events["time"].min(), events["time"].max())
                )
            )
        }
        new = []
        for when, title, symbol in zip(events["time"], events["title"], events["symbol"],
                                       strict=True):  # fmt: skip
            key = (pd.Timestamp(when), title, symbol if isinstance(symbol, str) else None)
            if key not in stored:
                stored.add(key)
                new.append({"time": key[0].to_pydatetime(), "title": title, "symbol": key[2]})
        if new:
            self._session.execute(insert(NEWS), new)
        return len(new)

    def frame(self) -> pd.DataFrame:
        """Every event, in time order: time (UTC), title, symbol (None: every symbol)."""
        rows = self._session.execute(
            select(NEWS.c.time, NEWS.c.title, NEWS.c.symbol).order_by(NEWS.c.time, NEWS.c.id)
        ).all()
        frame = pd.DataFrame(rows, columns=["time", "title", "symbol"])
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame


__all__ = ["NEWS", "NewsRepository"]
