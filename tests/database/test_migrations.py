"""The schema comes from the migrations, and the migrations match the models."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import CheckConstraint, Column, Engine, Integer, MetaData, inspect, text
from sqlalchemy.exc import IntegrityError

from database.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from database.models import all_tables
from database.repositories import StrategyRepository
from database.session import make_engine, make_session_factory
from tests.database.builders import signal, signals

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "candles",
    "market_bars",
    "candle_series_versions",
    "candle_imports",
    "strategy_runs",
    "strategy_run_results",
    "strategy_signal_blocks",
    "strategy_signals",
    "accounts",
    "deployments",
    "orders",
    "fills",
    "positions",
    "order_requests",
    "runner_leases",
    "alert_rules",
    "alerts",
    "alert_deliveries",
    "trades",
    "news_events",
    "api_tokens",
    "execution_orders",
    "execution_fills",
    "database_identity",
}


def _schema_diff(engine: Engine, metadata: MetaData) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)


def test_upgrade_builds_the_schema_from_an_empty_database(empty_database_url):
    assert current_revision(empty_database_url) is None

    upgrade(empty_database_url)

    assert current_revision(empty_database_url) == head_revision()
    engine = make_engine(empty_database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_at_head_is_a_no_op(engine):
    upgrade(engine)

    assert current_revision(engine) == head_revision()


def test_the_fast_head_check_reads_the_same_head_as_alembic():
    from database.migrate import _head_from_files

    assert _head_from_files() == head_revision()


def test_a_database_behind_the_head_is_still_upgraded(empty_database_url):
    """The fast path must not mistake an older revision for the head."""
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'older'")
        assert current_revision(engine) == "older"
        # 'older' is unknown to Alembic, so the upgrade goes through Alembic and says so
        with pytest.raises(CommandError, match="older"):
            upgrade(engine)
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(engine):
    assert _schema_diff(engine, all_tables()) == []


def test_schema_comparison_sees_a_model_change(engine):
    drifted = MetaData(naming_convention=all_tables().naming_convention)
    for table in all_tables().sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["candles"].append_column(Column("spread", Integer()))

    diff = _schema_diff(engine, drifted)

    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "candles", "spread")]


def test_check_constraints_of_the_models_are_in_the_database(engine):
    inspector = inspect(engine)
    for table in all_tables().sorted_tables:
        expected = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        stored = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert stored == expected, table.name
        assert expected, table.name


def test_downgrade_to_base_drops_everything_and_upgrade_rebuilds_it(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        upgrade(engine)
        assert _schema_diff(engine, all_tables()) == []
    finally:
        engine.dispose()


def test_concurrent_upgrades_both_succeed(empty_database_url):
    # app start-up runs upgrade in every worker process at once
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(empty_database_url)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert current_revision(empty_database_url) == head_revision()


def test_sqlite_engine_is_set_up_for_a_writer_thread_and_readers(tmp_path):
    path = tmp_path / "not" / "yet" / "there.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() >= 5000
        assert path.exists()
    finally:
        engine.dispose()


def test_autogenerate_writes_self_contained_revisions(tmp_path):
    config = alembic_config(f"sqlite:///{tmp_path / 'empty.db'}")
    config.set_main_option("version_locations", str(tmp_path))

    command.revision(config, "probe", autogenerate=True, rev_id="probe", version_path=tmp_path)

    source = (tmp_path / "probe_probe.py").read_text()
    compile(source, "probe_probe.py", "exec")
    assert "op.create_table('trades'" in source
    assert "sa.DateTime(timezone=True)" in source
    assert "import database" not in source
    assert "UTCDateTime" not in source
    assert "(astext_type=Text())" not in source


def test_upgrade_to_0002_gives_every_stored_series_a_version(empty_database_url):
    upgrade(empty_database_url, "0001")
    engine = make_engine(empty_database_url)
    insert = text(
        "INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume) "
        "VALUES (:symbol, :timeframe, :ts, 10, 12, 9, 11, 100)"
    )
    try:
        with engine.begin() as connection:
            for symbol, timeframe, ts in [("A", "1m", 0), ("A", "1m", 60_000), ("B", "1d", 0)]:
                connection.execute(insert, {"symbol": symbol, "timeframe": timeframe, "ts": ts})

        upgrade(engine)

        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT symbol, timeframe, version FROM candle_series_versions ORDER BY 1")
            ).all()
    finally:
        engine.dispose()
    assert [(s, t) for s, t, _ in rows] == [("A", "1m"), ("B", "1d")]
    assert all(len(v) == 32 and int(v, 16) >= 0 for _, _, v in rows)
    assert rows[0][2] != rows[1][2]


def test_upgrade_imports_alembic_only_when_the_database_is_behind(empty_database_url):
    probe = (
        "import sys; from database import migrate; migrate.upgrade(sys.argv[1]); "
        "print('alembic' in sys.modules)"
    )

    def alembic_loaded() -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, empty_database_url],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        return done.stdout.strip()

    upgrade(empty_database_url, "0001")
    assert alembic_loaded() == "True"  # behind: migrated by Alembic
    assert current_revision(empty_database_url) == head_revision()
    assert alembic_loaded() == "False"  # at head: one query


def _stored_bars(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT symbol, timeframe, ts, open, high, low, close, volume FROM candles "
            "ORDER BY symbol, timeframe, ts"
        ).all()


def test_0004_keys_candles_by_symbol_timeframe_ts_and_keeps_every_bar(empty_database_url):
    upgrade(empty_database_url, "0002")
    engine = make_engine(empty_database_url)
    insert = text(
        "INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume) "
        "VALUES (:symbol, :timeframe, :ts, :open, :high, :low, :close, :volume)"
    )
    # stored out of key order, with values that must survive bit for bit
    bars = [
        {
            "symbol": s,
            "timeframe": tf,
            "ts": ts,
            "open": 0.1 + abs(ts) % 1000,
            "high": 1e300,
            "low": 5e-324,
            "close": 1 / 3,
            "volume": 0.0,
        }
        for s, tf, ts in [
            ("B", "1d", 86_400_000),
            ("A", "1m", 60_000),
            ("A", "1m", -60_000),
            ("B", "1d", 0),
            ("A", "5m", 2**53 + 1),
        ]
    ]
    try:
        with engine.begin() as connection:
            connection.execute(insert, bars)
        before = _stored_bars(engine)

        upgrade(engine, "0004")

        assert _stored_bars(engine) == before
        inspector = inspect(engine)
        assert inspector.get_pk_constraint("candles")["constrained_columns"] == [
            "symbol",
            "timeframe",
            "ts",
        ]
        assert "id" not in {c["name"] for c in inspector.get_columns("candles")}
        with engine.begin() as connection, pytest.raises(IntegrityError):
            connection.execute(insert, bars[0])

        downgrade(engine, "0002")

        assert _stored_bars(engine) == before
        inspector = inspect(engine)
        assert inspector.get_pk_constraint("candles")["constrained_columns"] == ["id"]
        with engine.begin() as connection:  # the surrogate id numbers new bars again
            connection.execute(insert, {**bars[0], "ts": 1})
            ids = connection.exec_driver_sql("SELECT id FROM candles ORDER BY id").scalars()
            assert len(set(ids)) == len(before) + 1
    finally:
        engine.dispose()


SERIES_INDEX = "ix_strategy_signals_strategy_name_symbol_timeframe_timestamp"


def _index_definition(engine: Engine, name: str) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = "SELECT pg_get_indexdef(CAST(:name AS regclass))"
        else:
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        return connection.execute(text(query), {"name": name}).scalar_one()


def _signal_rows(session) -> list[tuple]:
    """Every stored signal row as the database holds it (read at an old revision, where
    today's repositories may name tables that do not exist yet)."""
    return session.execute(text("SELECT * FROM strategy_signals ORDER BY id")).all()


def test_0005_indexes_by_series_only_the_signals_without_a_run(empty_database_url):
    upgrade(empty_database_url, "0004")
    engine = make_engine(empty_database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            repo = StrategyRepository(session)
            run = repo.save_run("sma_cross", {}, "SP500", "1d", "backtest", signals(4))
            repo.signals.add_many(signals(2, price=10.0))
        with sessions() as session:
            before = _signal_rows(session)
        assert "WHERE" not in _index_definition(engine, SERIES_INDEX).upper()

        upgrade(engine, "0005")

        assert (
            _index_definition(engine, SERIES_INDEX)
            .upper()
            .replace("(", "")
            .replace(")", "")
            .endswith("WHERE RUN_ID IS NULL")
        )
        with sessions() as session:
            assert _signal_rows(session) == before
        # one statement naming a stored run and a missing one: refused, nothing written
        with (
            pytest.raises(IntegrityError, match="names no strategy run"),
            sessions.begin() as session,
        ):
            StrategyRepository(session).signals.add_many(
                [signal(run_id=run.id), signal(run_id=run.id + 1)]
            )
        with sessions() as session:
            assert len(_signal_rows(session)) == len(before)

        downgrade(engine, "0004")

        assert "WHERE" not in _index_definition(engine, SERIES_INDEX).upper()
        with sessions() as session:
            assert _signal_rows(session) == before
        with (
            pytest.raises(IntegrityError, match="names no strategy run"),
            sessions.begin() as session,
        ):
            StrategyRepository(session).signals.add_many([signal(run_id=run.id + 1)])
    finally:
        engine.dispose()


def test_the_downgrade_below_0018_keeps_the_bars_trades_name(empty_database_url):
    """market_bars holds a part of the stored contexts: not dropped while a trade names one."""
    from datetime import UTC, datetime

    from database.records import TradeRecord
    from database.repositories.trades import TradeRepository
    from tests.database.test_market_bars import bar_part, of_fill

    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        downgrade(engine, "0017")  # no trade names a bar: the table goes
        assert "market_bars" not in inspect(engine).get_table_names()
        upgrade(engine)
        record = TradeRecord(
            trade_id="t0", account_id="acc", strategy_id="s", symbol="BTC", side="buy",
            price=100.0, volume=1.0, commission=0.0,
            execution_time=datetime(2024, 3, 1, tzinfo=UTC),
            market_context=of_fill(bar_part(), 100.0),
        )  # fmt: skip
        with make_session_factory(engine).begin() as session:
            TradeRepository(session).add_many([record])
        with pytest.raises(RuntimeError, match="market_bars"):
            downgrade(engine, "0017")
        assert current_revision(engine) == head_revision()
        with make_session_factory(engine)() as session:
            assert TradeRepository(session).get("t0", "acc") == record
    finally:
        engine.dispose()
