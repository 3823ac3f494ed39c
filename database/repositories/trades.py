"""TradeRepository: executed trades, append-only and immutable, keyed by (account, ``trade_id``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, NoReturn

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    String,
    Table,
    Text,
    cast,
    func,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from database.errors import DuplicateTradeError, TradeImmutableError
from database.gc_pause import collector_paused
from database.models import DatabaseIdentity, Trade
from database.records import TradeRecord
from database.repositories._arrow_reads import stored_times
from database.repositories._common import (
    DEFAULT_CHUNK_ROWS,
    TimeLike,
    accounts_with_source,
    aware_timestamp,
    ordered,
    stored_keys,
    where_matching,
)
from database.repositories._execution_io import fetched_columns
from database.repositories._market_bars import bar_parts
from database.repositories._trade_context import bar_refs, context_of, context_texts, json_text
from database.repositories._trade_copy import Halves, copied_rows
from database.repositories._trade_io import BARS, insert_trade_chunks
from database.repositories._trade_rows import context_values

TRADES: Table = Trade.__table__  # type: ignore[assignment]
_FRAME_COLUMNS = (
    "trade_id", "account_id", "strategy_id", "symbol", "side", "price", "volume", "commission",
    "time", "pnl", "cumulative_pnl", "labels", "volatility_regime", "market_session", "source",
    "order_id",
)  # fmt: skip
_NUMBERS = {"price", "volume", "commission", "pnl", "cumulative_pnl"}
_TEXT_COLUMNS = ("trade_id", "account_id", "strategy_id", "symbol", "side",
                 "volatility_regime", "market_session", "source", "order_id")  # fmt: skip


def _utc_array(times: list[Any]) -> np.ndarray:
    """UTC datetimes (TradeRecord's: aware, UTC) as datetime64[us]."""
    return pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None).as_unit("us").to_numpy()


def _label_texts(labels: list[tuple[str, ...]]) -> list[str]:
    """Each trade's labels as JSON text; a batch has few distinct label sets."""
    made: dict[tuple[str, ...], str] = {}
    out = []
    for value in labels:
        text = made.get(value)
        if text is None:
            text = made[value] = json_text(list(value))
        out.append(text)
    return out


def _columns(records: list[TradeRecord]) -> dict[str, Any]:
    """The records as the columns the writer takes (the JSON ones as their text)."""
    columns: dict[str, Any] = {
        name: [getattr(r, name) for r in records]
        for name in ("trade_id", "account_id", "strategy_id", "run_id", "symbol", "side",
                     "price", "volume", "commission", "pnl", "cumulative_pnl", "source",
                     "order_id")
    }  # fmt: skip
    columns["execution_time"] = _utc_array([r.execution_time for r in records])
    contexts = [r.market_context for r in records]
    columns[BARS] = bars = {}
    columns["market_context"] = context_texts(contexts, bars)
    # what the database extracts of them, for the trade cache (not stored: not a column)
    columns["volatility_regime"], columns["market_session"] = context_values(contexts)
    columns["labels"] = _label_texts([r.labels for r in records])
    return columns


def label_texts(labels: list[tuple[str, ...]]) -> list[str]:
    """Each trade's labels as the JSON text the table stores."""
    return _label_texts(labels)


class TradeRepository:
    """Executed trades: append-only, keyed by ``trade_id``."""

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def add_many(self, records: Iterable[TradeRecord], *, checked: bool = False) -> int:
        """Store new trades in bulk; returns how many.

        A trade id repeated in the batch or already stored in its account raises
        DuplicateTradeError naming them (and the account), and nothing is written.
        ``checked``: the caller knows the ids are new and not repeated (the trade tracker
        keeps each account's ids and refuses a repeat by name): nothing looks, the database's
        unique key still refuses one (IntegrityError).
        """
        batch = list(records)
        for record in batch:
            if not isinstance(record, TradeRecord):
                raise TypeError(f"expected TradeRecord, got {type(record).__name__}")
        if not checked:
            self._refuse_known(batch)
        step = self._chunk_rows
        chunks = (_columns(batch[start : start + step]) for start in range(0, len(batch), step))
        self.add_columns(chunks)
        return len(batch)

    def add_columns(
        self, chunks: Iterable[dict[str, Any]], whole: Future[Any] | None = None
    ) -> None:
        """Store new trades given as columns, chunk after chunk (each as
        ``_trade_io.insert_trades`` takes them: every name of TRADE_COLUMNS, the JSON ones
        as their text), in the session's transaction: the caller has checked every value and
        that the ids are new (the database's unique key still refuses one). Once committed,
        they are appended to their accounts' trade caches (``_trade_cache_sync.Writes``).
        ``whole``: the columns of every row the chunks hold, in order, once made (a bulk
        import's: the cache's file written while the rows are stored, ``_trade_cache_ahead``)."""
        from database.repositories._trade_cache_sync import Writes

        writes = Writes(self._session, whole)
        try:
            insert_trade_chunks(self._session, writes.chunks(chunks))
        except BaseException:
            writes.abandon()
            raise
        writes.stored()

    def _refuse_known(self, batch: list[TradeRecord]) -> None:
        """DuplicateTradeError naming the ids repeated in the batch or already stored."""
        by_account: dict[str, list[str]] = {}
        for record in batch:
            by_account.setdefault(record.account_id, []).append(record.trade_id)
        for account, ids in by_account.items():
            repeated = [trade_id for trade_id, n in Counter(ids).items() if n > 1]
            if repeated:
                raise DuplicateTradeError(repeated, where="within the batch", account=account)
        for account, ids in by_account.items():
            stored = self.stored_ids(account, ids)
            if stored:
                raise DuplicateTradeError(stored, where="already stored", account=account)

    def stored_ids(self, account_id: str, trade_ids: Iterable[str]) -> set[str]:
        """Which of ``trade_ids`` the account already has."""
        return stored_keys(self._session, TRADES, "trade_id", account_id, trade_ids)

    def get(self, trade_id: str, account_id: str | None = None) -> TradeRecord | None:
        """The trade ``trade_id`` of ``account_id`` (of any account when None: the first)."""
        statement = select(TRADES).where(TRADES.c.trade_id == trade_id)
        if account_id is not None:
            statement = statement.where(TRADES.c.account_id == account_id)
        row = self._session.execute(statement.order_by(TRADES.c.id)).mappings().first()
        return None if row is None else trade_records(self._session, [row])[0]

    def list(
        self,
        *,
        symbol: str | None = None,
        strategy_id: str | None = None,
        account_id: str | None = None,
        run_id: int | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
    ) -> list[TradeRecord]:
        """Trades matching every given filter (``start <= execution_time <= end``), in
        execution order."""
        statement = where_matching(
            select(TRADES),
            TRADES,
            {
                "symbol": symbol,
                "strategy_id": strategy_id,
                "account_id": account_id,
                "run_id": run_id,
            },
            within="execution_time",
            start=start,
            end=end,
        )
        statement = ordered(statement, (TRADES.c.execution_time, TRADES.c.id), limit)
        return trade_records(self._session, self._session.execute(statement).mappings().all())

    def frame(
        self,
        account_id: str,
        *,
        strategy_id: str | None = None,
        symbol: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        context: bool = False,
        cached: bool = False,
    ) -> pd.DataFrame:
        """The account's trades as the fills frame analytics reads (docs/tracking.md), in
        recording order: trade_id, account_id, strategy_id, symbol, side, price, volume,
        commission, time (UTC), pnl, cumulative_pnl, labels (tuples), volatility_regime,
        market_session, source, order_id; with ``context`` also market_context (dicts).

        Read column-wise: labels parsed once per distinct text, the two context fields the
        analyses group by extracted by the database, the whole context only when asked.
        ``cached``: through the account's columnar file cache (``_trade_cache``: only the rows
        stored since it was written are read from the database); for a session that has
        written nothing (only committed rows may be cached). Not with ``context``."""
        cache = None
        if cached and not context:
            from database.repositories._trade_cache import trade_cache_for

            cache = trade_cache_for(self._session.connection().engine.url)
        if cache is None:
            frame = self._read(account_id, strategy_id, symbol, start, end, context)
        else:
            frame = self._cached(cache, account_id)
            version = frame.attrs.get("stored_version")
            keep = np.ones(len(frame), dtype=bool)
            if strategy_id is not None:
                keep &= (frame["strategy_id"] == strategy_id).to_numpy()
            if symbol is not None:
                keep &= (frame["symbol"] == symbol).to_numpy()
            if start is not None:
                keep &= (frame["time"] >= aware_timestamp(start, "start")).to_numpy()
            if end is not None:
                keep &= (frame["time"] <= aware_timestamp(end, "end")).to_numpy()
            if not keep.all():
                frame = frame.loc[keep].reset_index(drop=True)
            if version is not None:
                frame.attrs["stored_version"] = version
        return _finished(frame, context, self._session)

    def rows_after(self, account_id: str, row: int) -> tuple[pd.DataFrame, int]:
        """(the account's trades stored after row ``row``, as :meth:`frame` gives them with
        an ``id`` column, in row order; how many trades the account holds in all). The count
        tells a reader that knows how many rows it read before whether one came in below
        ``row`` meanwhile: PostgreSQL numbers rows at insert and commits need not come in
        that order, so rows after a row id are not always every row it has not read."""
        total = self._session.scalar(select(func.count()).where(TRADES.c.account_id == account_id))
        rows = self._read(account_id, None, None, None, None, False, after_id=row, with_id=True)
        return _finished(rows, False), int(total or 0)

    def _read(
        self,
        account_id: str,
        strategy_id: str | None,
        symbol: str | None,
        start: TimeLike | None,
        end: TimeLike | None,
        context: bool,
        *,
        after_id: int | None = None,
        with_id: bool = False,
        committed: bool = False,
    ) -> pd.DataFrame:
        """The frame's rows from the database, labels as their JSON text; ``after_id``: only
        rows stored after that row; ``with_id``: an ``id`` column too; ``committed``: the
        session has written nothing (committed rows alone: others' connections or a child
        process may read a half of them, ``_trade_copy.Halves``)."""
        c = TRADES.c
        columns = [
            c.trade_id, c.account_id, c.strategy_id, c.symbol, c.side, c.price, c.volume,
            c.commission, type_coerce(c.execution_time, String), c.pnl, c.cumulative_pnl,
            cast(c.labels, Text), c.market_context["volatility_regime"].as_string(),
            c.market_context["market_session"].as_string(), c.source, c.order_id,
        ]  # fmt: skip
        names = [*_FRAME_COLUMNS]
        if context:
            columns.append(cast(c.market_context, Text))
            names.append("market_context")
        if with_id:
            columns.append(c.id)
            names.append("id")

        def query(columns: list[Any], above: int | None = after_id, upto: int | None = None) -> Any:
            statement = where_matching(
                select(*columns),
                TRADES,
                {"account_id": account_id, "strategy_id": strategy_id, "symbol": symbol},
                within="execution_time",
                start=start,
                end=end,
            )
            if above is not None:
                statement = statement.where(c.id > above)
            if upto is not None:
                statement = statement.where(c.id <= upto)
            return statement.order_by(c.id)

        postgresql = self._session.get_bind().dialect.name == "postgresql"
        if not postgresql or (start is None and end is None):  # straight into Arrow
            arrow = dict(zip(names, columns, strict=True))
            del arrow["account_id"]  # every row's is account_id: not read
            if postgresql:  # the COPY's
                arrow["time"] = func.timezone("UTC", c.execution_time)  # cheaper for the server
                arrow["labels"] = c.labels
            halves = None
            if committed:
                mine = select(func.min(c.id), func.max(c.id)).where(c.account_id == account_id)
                halves = Halves(
                    mine if after_id is None else mine.where(c.id > after_id),
                    lambda above, upto: query([*arrow.values()], above, upto), after_id,
                )  # fmt: skip
            copied = copied_rows(self._session, query([*arrow.values()]), [*arrow], _NUMBERS,
                                 halves)  # fmt: skip
            if copied is not None:
                from database.repositories._trade_cache import repeated_text

                copied.insert(1, "account_id", repeated_text(account_id, len(copied)))
                return copied
        with collector_paused():  # a tuple per row: no collection walks them meanwhile
            values = fetched_columns(self._session.execute(query(columns)), len(names))
            frame = pd.DataFrame(
                {name: _column(name, column) for name, column in zip(names, values, strict=True)}
            )
        times = values[names.index("time")]
        if times and isinstance(times[0], str):  # SQLite's texts: parsed by Arrow
            frame["time"] = pd.Series(stored_times(times).as_unit("ns"), index=frame.index)
        else:
            frame["time"] = _utc_times(frame["time"])
        return frame

    def _cached(self, cache: Any, account_id: str) -> pd.DataFrame:
        """Every row of the account (labels as JSON text), the cached ones from the files and
        the newer ones from the database; the cache brought up to date
        (``_trade_cache_sync.read_through``)."""
        from database.repositories._trade_cache_sync import read_through

        def read(after: int | None) -> pd.DataFrame:
            return self._read(account_id, None, None, None, None, False, after_id=after,
                              with_id=True, committed=True)  # fmt: skip

        return read_through(self._session, cache, account_id, read, _from_cache)

    def stored_version(self, account_id: str) -> tuple[str | None, int, int]:
        """(the database's identity token, the account's row count, its newest row id: 0
        without rows) in one statement: the count and the newest row each their own query
        (the newest an index lookup, not taken along the count's scan)."""
        c = TRADES.c
        mine = c.account_id == account_id
        token, total, last = self._session.execute(
            select(
                select(DatabaseIdentity.token).limit(1).scalar_subquery(),
                select(func.count()).select_from(TRADES).where(mine).scalar_subquery(),
                select(func.max(c.id)).where(mine).scalar_subquery(),
            )
        ).one()
        return token, int(total or 0), int(last or 0)

    def holds(self, account_id: str, version: Any) -> bool:
        """Whether the account's stored rows are still those ``version`` names (a frame's
        ``attrs["stored_version"]``, :meth:`stored_version`'s). On SQLite a new row's id is
        above every stored one (writers take turns, the id is the rowid, no row is ever
        deleted), so the token and the newest row id say it: two index lookups instead of
        counting the account's rows (~60 ms at 1,000,000). PostgreSQL numbers rows at insert
        and commits them in any order: the count too."""
        if version is None:
            return False
        if self._session.get_bind().dialect.name != "sqlite":
            return tuple(version) == self.stored_version(account_id)
        c = TRADES.c
        token, last = self._session.execute(
            select(
                select(DatabaseIdentity.token).limit(1).scalar_subquery(),
                select(func.max(c.id)).where(c.account_id == account_id).scalar_subquery(),
            )
        ).one()
        return (token, int(last or 0)) == (version[0], version[2])

    def accounts(self) -> list[tuple[str, int, str | None]]:
        """(account, trades, source of its first trade) of every account with trades."""
        return accounts_with_source(self._session, TRADES)

    def update(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored trade is immutable (record a correcting trade instead)."""
        raise TradeImmutableError("trades are immutable: a stored trade cannot be updated")

    def delete(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored trade is immutable."""
        raise TradeImmutableError("trades are immutable: a stored trade cannot be deleted")


def _column(name: str, values: tuple[Any, ...]) -> Any:
    """One column of the rows read: numbers as floats, texts (and the JSON texts) as the
    default text dtype converted at once when every value is a text or missing (else as
    pandas converts them: ``_finished``), the rest as read."""
    if name in _NUMBERS:
        return np.asarray(values, dtype=float)
    if name in _TEXT_COLUMNS or name in ("labels", "market_context"):
        from database.repositories._trade_cache import text_column

        try:
            return text_column(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return list(values)


def _from_cache(cached: pd.DataFrame, account_id: str) -> pd.DataFrame:
    """The cache file's columns as the frame's (labels still JSON text)."""
    from database.repositories._trade_cache import repeated_text

    frame = cached.rename(columns={"labels_text": "labels"})
    frame.insert(1, "account_id", repeated_text(account_id, len(frame)))
    frame["time"] = pd.DatetimeIndex(
        pd.to_datetime(frame["time"].to_numpy(), unit="ns", utc=True)
    ).as_unit("ns")
    return frame[list(_FRAME_COLUMNS)]


def _finished(frame: pd.DataFrame, context: bool, session: Session | None = None) -> pd.DataFrame:
    """Labels (and the context: its bars' parts read through ``session``) parsed from their
    JSON texts, the text columns one dtype."""
    frame["labels"] = _parsed(frame["labels"], tuple)
    if context:  # the bars' parts the distinct contexts name read first, at once
        codes, distinct = _distinct(frame["market_context"])
        bars = bar_parts(session, bar_refs(distinct)) if session is not None else {}
        contexts = [context_of(c, bars) for c in distinct]
        frame["market_context"] = _by_code(codes, contexts, context_of())
    for name in _TEXT_COLUMNS:  # one dtype whichever way it was read (missing: NaN)
        if frame[name].dtype != "str":
            frame[name] = frame[name].astype("str")
    return frame


def _utc_times(values: pd.Series) -> pd.Series:
    """Execution times as UTC datetimes: SQLite's stored UTC wall-time text, PostgreSQL's
    aware datetimes."""
    times = pd.DatetimeIndex(pd.to_datetime(values.to_numpy(), utc=True, format="ISO8601"))
    return pd.Series(times.as_unit("ns"), index=values.index)


def _parsed(texts: pd.Series, kind: Callable[..., Any]) -> list[Any]:
    """JSON texts parsed once per distinct text (an account's trades repeat few label sets),
    each row then given its text's value by position, not by a Python loop over the rows."""
    codes, distinct = _distinct(texts)
    return _by_code(codes, [kind(v) if v is not None else kind() for v in distinct], kind())


def _distinct(texts: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """(each row's code into the distinct values, the distinct JSON texts parsed; a missing
    text: code -1)."""
    codes, distinct = pd.factorize(texts, use_na_sentinel=True)
    loads = orjson.loads
    return codes, [loads(t) if isinstance(t, str | bytes) else t for t in distinct.tolist()]


def _by_code(codes: np.ndarray, values: list[Any], missing: Any) -> list[Any]:
    """Each row's value of ``values`` by its code (-1: ``missing``)."""
    out = np.empty(len(values) + 1, dtype=object)
    for k, value in enumerate(values):  # one by one: a tuple is a value, not a row of them
        out[k] = value
    out[-1] = missing
    return out[codes].tolist()


def trade_records(session: Session, rows: list[Any]) -> list[TradeRecord]:
    """The trades table's rows (mappings) as records, their contexts' bars read at once."""
    refs = bar_refs(row["market_context"] for row in rows)
    bars = bar_parts(session, refs) if refs else {}
    return [_trade_record(row, bars) for row in rows]


def _trade_record(row: Any, bars: Any = None) -> TradeRecord:
    return TradeRecord(
        trade_id=row["trade_id"],
        account_id=row["account_id"],
        strategy_id=row["strategy_id"],
        run_id=row["run_id"],
        symbol=row["symbol"],
        side=row["side"],
        price=row["price"],
        volume=row["volume"],
        commission=row["commission"],
        execution_time=row["execution_time"],
        market_context=context_of(row["market_context"], bars),
        labels=tuple(row["labels"]),
        pnl=row["pnl"],
        cumulative_pnl=row["cumulative_pnl"],
        source=row["source"],
        order_id=row["order_id"],
    )
