"""SQLAlchemy 2 declarative models: the schema of record (Alembic migrations build it).

Candle times are stored as ``ts``: BigInteger epoch milliseconds (UTC) of the bar's open. An
integer key keeps bulk upserts and range scans fast on both databases and is the convention of
exchanges and ccxt. Every other time is a ``UTCDateTime``: timezone-aware UTC in and out.

CHECK constraints repeat the records' validation so that even raw SQL cannot store a corrupt
row. ``x < 1e308`` rejects NaN and infinity on PostgreSQL (NaN sorts above every number there);
SQLite stores NaN as NULL, which NOT NULL rejects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
    util,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    mapped_column,
    object_session,
)
from sqlalchemy.types import TypeDecorator

from database.errors import TradeImmutableError
from database.records import RUN_MODES, RUN_STATUSES, SIGNAL_TYPES, TRADE_SIDES, utc_datetime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")
# an identifier's text: PostgreSQL's "C" collation (memcmp), SQLite's default BINARY alike
BYTE_ORDERED_ID = String(128).with_variant(String(128, collation="C"), "postgresql")
FINITE_MAX = "1e308"


class PortableJSON(TypeDecorator[Any]):
    """JSON on every backend, JSONB on PostgreSQL (``JSON().with_variant(JSONB(), ...)``
    without naming JSONB here): the PostgreSQL type is chosen when that dialect compiles or
    binds the column, so a process on SQLite never imports PostgreSQL's dialect (about a
    tenth of a one-shot command's imports)."""

    impl = JSON
    cache_ok = True

    def __init__(self, none_as_null: bool = False) -> None:
        super().__init__(none_as_null=none_as_null)

    @property
    def should_evaluate_none(self) -> bool:  # JSON's: None is stored as JSON null
        return not self.impl_instance.none_as_null

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=self.impl_instance.none_as_null))
        return dialect.type_descriptor(self.impl_instance)


class PartialIndex(Index):
    """``Index(..., sqlite_where=where, postgresql_where=where)`` whose PostgreSQL option is
    set when that dialect first asks for it (it compiles the index, alembic compares it):
    ``postgresql_where`` given here would import PostgreSQL's dialect in every process."""

    def __init__(self, *columns: str, where: str) -> None:
        self._where = where
        super().__init__(None, *columns, sqlite_where=text(where))

    @util.memoized_property
    def dialect_options(self) -> util.PopulateDict:
        def options(dialect_name: str) -> Any:
            found = self._kw_reg_for_dialect_cls(dialect_name)
            if dialect_name == "postgresql":
                found["where"] = text(self._where)
            return found

        return util.PopulateDict(options)


JSON_TYPE = PortableJSON()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive values raise ValueError.

    PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time as text, which sorts in
    time order. Values come back as ``datetime`` in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc_datetime(value, "UTCDateTime value")
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, allowed: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in allowed)})"


def _finite(column: str) -> str:
    return f"{column} > -{FINITE_MAX} AND {column} < {FINITE_MAX}"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Candle(Base):
    """One OHLCV bar of one (symbol, timeframe) series."""

    __tablename__ = "candles"
    __table_args__ = (
        CheckConstraint("length(symbol) > 0", name="symbol_not_empty"),
        CheckConstraint("length(timeframe) > 0", name="timeframe_not_empty"),
        CheckConstraint("low > 0", name="low_positive"),
        CheckConstraint("high >= low", name="high_ge_low"),
        CheckConstraint(f"high < {FINITE_MAX}", name="high_finite"),
        CheckConstraint("open >= low AND open <= high", name="open_in_range"),
        CheckConstraint("close >= low AND close <= high", name="close_in_range"),
        CheckConstraint(f"volume >= 0 AND volume < {FINITE_MAX}", name="volume_valid"),
        # SQLite: one b-tree clustered on the key (no rowid table beside the key's index)
        {"sqlite_with_rowid": False},
    )

    # the primary key is also the index of every chart query: a ts range or the last N bars
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(16), primary_key=True)
    ts: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, comment="bar open time, epoch milliseconds UTC"
    )
    open: Mapped[float] = mapped_column(Double)
    high: Mapped[float] = mapped_column(Double)
    low: Mapped[float] = mapped_column(Double)
    close: Mapped[float] = mapped_column(Double)
    volume: Mapped[float] = mapped_column(Double)


class CandleSeriesVersion(Base):
    """The data version of one candle series: a random token every write of its bars replaces.

    Written in the same transaction as the bars, so a reader that sees a token sees exactly
    the bars written with it. Tokens are uuid4 hex and never repeat, not even after the
    database is recreated, so a columnar cache keyed by the token can never serve stale bars.
    """

    __tablename__ = "candle_series_versions"
    __table_args__ = (CheckConstraint("length(version) = 32", name="version_is_token"),)

    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))


class CandleImport(Base):
    """An import in progress: its bars wait in its staging table (``candle_import_<id>``) until
    one transaction merges them into candles. ``owner`` tells a crashed import from a running
    one (database/repositories/candle_staging.py)."""

    __tablename__ = "candle_imports"
    __table_args__ = (CheckConstraint("length(import_id) = 32", name="import_id_is_token"),)

    import_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StrategyRun(Base):
    """One backtest, live or paper run of a strategy with its JSON config."""

    __tablename__ = "strategy_runs"
    __table_args__ = (
        CheckConstraint(_in("mode", RUN_MODES), name="mode_valid"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status_valid"),
        CheckConstraint(
            "(status = 'running' AND finished_at IS NULL)"
            " OR (status <> 'running' AND finished_at IS NOT NULL)",
            name="finished_matches_status",
        ),
        CheckConstraint(
            "finished_at IS NULL OR finished_at >= started_at", name="finished_after_start"
        ),
        Index(None, "strategy_name", "started_at"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    strategy_name: Mapped[str] = mapped_column(String(128))
    config: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    symbol: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    # the config its signals share when it is not ``config`` (theirs is NULL then)
    signal_config: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON(none_as_null=True))
    # the metadata keys of its signals stored typed (``signal_metadata_values``), once per run
    signal_metadata_keys: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))


class StrategyRunResult(Base):
    """What a finished backtest run showed, stored once with it: its trade list and equity
    curve as Arrow IPC streams (``format`` 1; see database/repositories/run_results.py), so a
    saved run reopens to exactly these even if strategy code changes later. Deleted with its
    run (ON DELETE CASCADE)."""

    __tablename__ = "strategy_run_results"
    __table_args__ = (
        CheckConstraint("format = 1", name="format_known"),
        CheckConstraint("warmup_bars >= 0", name="warmup_bars_valid"),
    )

    run_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("strategy_runs.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[int] = mapped_column(Integer)
    trades: Mapped[bytes] = mapped_column(LargeBinary)
    equity: Mapped[bytes] = mapped_column(LargeBinary)
    warmup_bars: Mapped[int] = mapped_column(Integer)
    drawdown_halt: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StrategySignalBlock(Base):
    """A run's signals stored as one columnar block instead of a row each (format 1: an Arrow
    IPC stream of time, type, price, confidence and the run's typed metadata; see
    database/repositories/signal_blocks.py): what ``save_run`` stores for a run saved from a
    :class:`~database.records.SignalBlock` (a backtest's signals), read back through the same
    ``SignalRepository`` queries as rows. Their config and metadata keys are the run's; they
    have no row id. ``first_ts`` / ``last_ts`` let a time filter skip a block unread. Deleted
    with its run (ON DELETE CASCADE)."""

    __tablename__ = "strategy_signal_blocks"
    __table_args__ = (
        CheckConstraint("format = 1", name="format_known"),
        CheckConstraint("signal_count > 0", name="signal_count_positive"),
        CheckConstraint("first_ts <= last_ts", name="span_ordered"),
    )

    run_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("strategy_runs.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[int] = mapped_column(Integer)
    signal_count: Mapped[int] = mapped_column(Integer)
    first_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class StrategySignal(Base):
    """A signal a strategy emitted on a closed bar.

    ``strategy_config`` is NULL when the signal's config is its run's (one run's signals share
    one config, stored once on the run) and ``signal_metadata`` is NULL when the signal has none
    or has it typed (``signal_metadata_values``: the float values of its run's
    ``signal_metadata_keys``): the repository reads both back as before ({} without a run or
    metadata). Both are plain JSON
    (text) on PostgreSQL too: nothing queries inside them, and JSONB's parse was a third of a
    bulk write. ``run_id`` has no FOREIGN KEY: a per-row check doubled a bulk write on
    PostgreSQL; triggers (migration 0003) enforce the same rules once per statement there and
    per row on SQLite: an unknown run is refused, a run's signals go with it, a run id never
    changes.
    """

    __tablename__ = "strategy_signals"
    __table_args__ = (
        CheckConstraint(_in("signal_type", SIGNAL_TYPES), name="signal_type_valid"),
        CheckConstraint(f"price > 0 AND price < {FINITE_MAX}", name="price_valid"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_valid"),
        # a run's signals (its queries, retention, the run-delete trigger): a new run's
        # entries go at its end
        Index(None, "run_id"),
        # the signals stored without a run (a few at a time), by series and time; a run's are
        # not in it: among every earlier run's of the same series at the same times, they made
        # a run's bulk write touch nearly every page of the index (migration 0005)
        PartialIndex("strategy_name", "symbol", "timeframe", "timestamp", where="run_id IS NULL"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    strategy_name: Mapped[str] = mapped_column(String(128))
    strategy_config: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    symbol: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(16))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    signal_type: Mapped[str] = mapped_column(String(16))
    price: Mapped[float] = mapped_column(Double)
    confidence: Mapped[float] = mapped_column(Double)
    signal_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    run_id: Mapped[int | None] = mapped_column(ID_TYPE)
    # metadata stored typed: float64 values, little-endian, in the order of the run's
    # ``signal_metadata_keys`` (then ``signal_metadata`` is NULL)
    signal_metadata_values: Mapped[bytes | None] = mapped_column(LargeBinary)


class Trade(Base):
    """An executed trade (a fill). Immutable: ORM events here and database triggers refuse
    changes. ``trade_id`` is unique within its account (0010); ``source`` says where it came
    from (paper, freqtrade, hummingbot, csv, api), ``order_id`` the order it fills."""

    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("account_id", "trade_id"),
        CheckConstraint("length(trade_id) > 0", name="trade_id_not_empty"),
        CheckConstraint(_in("side", TRADE_SIDES), name="side_valid"),
        CheckConstraint(f"price > 0 AND price < {FINITE_MAX}", name="price_valid"),
        CheckConstraint(f"volume > 0 AND volume < {FINITE_MAX}", name="volume_valid"),
        CheckConstraint(_finite("commission"), name="commission_finite"),
        CheckConstraint(f"pnl IS NULL OR ({_finite('pnl')})", name="pnl_finite"),
        CheckConstraint(
            f"cumulative_pnl IS NULL OR ({_finite('cumulative_pnl')})",
            name="cumulative_pnl_finite",
        ),
        # every read names the account and goes by row id (0014); the run's trades only (0015)
        Index(None, "account_id", "id"),
        PartialIndex("run_id", where="run_id IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    # ids compared byte by byte on PostgreSQL too, as SQLite's BINARY does (0017)
    trade_id: Mapped[str] = mapped_column(BYTE_ORDERED_ID)
    account_id: Mapped[str] = mapped_column(BYTE_ORDERED_ID)
    strategy_id: Mapped[str] = mapped_column(String(128))
    # no cascade: a run that has trades cannot be deleted, the trades stay as they were
    run_id: Mapped[int | None] = mapped_column(ID_TYPE, ForeignKey("strategy_runs.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[float] = mapped_column(Double)
    volume: Mapped[float] = mapped_column(Double)
    commission: Mapped[float] = mapped_column(Double)
    execution_time: Mapped[datetime] = mapped_column(UTCDateTime)
    market_context: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    labels: Mapped[list[str]] = mapped_column(JSON_TYPE)
    pnl: Mapped[float | None] = mapped_column(Double)
    cumulative_pnl: Mapped[float | None] = mapped_column(Double)
    source: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(160))


class DatabaseIdentity(Base):
    """One random token made when the schema was built (0014): what keys the trade cache's
    files to this database, not to another one built later at the same path or URL."""

    __tablename__ = "database_identity"
    __table_args__ = (CheckConstraint("length(token) = 32", name="token_hex"),)

    token: Mapped[str] = mapped_column(String(32), primary_key=True)


class MarketBar(Base):
    """A closed bar's part of the stored trades' market contexts (0018): every indicator
    value read from that bar, as JSON text, stored once and shared by every fill read
    against it. Keyed by the digest of its text (BLAKE2b 128-bit hex): the same bar read the
    same way is one row whichever writer stored it. Immutable (database triggers)."""

    __tablename__ = "market_bars"
    __table_args__ = (CheckConstraint("length(key) = 32", name="key_hex"),)

    key: Mapped[str] = mapped_column(
        String(32).with_variant(String(32, collation="C"), "postgresql"), primary_key=True
    )
    body: Mapped[str] = mapped_column(Text)


class NewsEvent(Base):
    """One event of the user's news calendar (migration 0011): scheduled economic releases,
    earnings, ... The ``news_event`` label marks trades near one. ``symbol`` None: an event
    of every symbol. Unique on (time, title, symbol): importing a calendar twice adds
    nothing."""

    __tablename__ = "news_events"
    __table_args__ = (
        UniqueConstraint("time", "title", "symbol"),
        CheckConstraint("length(title) > 0", name="title_not_empty"),
        Index(None, "time"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    title: Mapped[str] = mapped_column(String(256))
    symbol: Mapped[str | None] = mapped_column(String(64))


@event.listens_for(Trade, "before_update")
def _refuse_trade_update(_mapper: Mapper[Trade], _connection: Any, target: Trade) -> None:
    session = object_session(target)
    # the ORM calls this for every dirty instance, even one without a net change
    if session is None or session.is_modified(target, include_collections=False):
        raise TradeImmutableError(f"trade {target.trade_id!r} is stored and cannot be changed")


@event.listens_for(Trade, "before_delete")
def _refuse_trade_delete(_mapper: Mapper[Trade], _connection: Any, target: Trade) -> None:
    raise TradeImmutableError(f"trade {target.trade_id!r} is stored and cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_trade_changes(state: ORMExecuteState) -> None:
    """Refuse ``session.execute(update(Trade) ...)`` / ``delete(Trade)``, which skip the
    mapper events above."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) == Trade.__tablename__:
        action = "updated" if state.is_update else "deleted"
        raise TradeImmutableError(f"trades are immutable: stored trades cannot be {action}")


# paper trading's tables (accounts, deployments, orders, fills, positions), the alerts'
# (alert_rules, alerts, alert_deliveries) and the imported orders' (execution_orders,
# execution_fills) live in their own modules, loaded by what uses them
# (a one-shot command never does): ``all_tables()`` gives Base.metadata with every table, for
# Alembic and the schema tests


def all_tables() -> MetaData:
    """``Base.metadata`` once every model module is loaded (every table of the schema)."""
    from database import alert_models, execution_models, token_models, trading_models  # noqa: F401

    return Base.metadata
