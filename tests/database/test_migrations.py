"""The schema comes from the migrations, and the migrations match the models."""

from __future__ import annotations

import threading

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Column, Engine, Integer, MetaData, inspect

from database.migrate import alembic_config, current_revision, downgrade, head_revision, upgrade
from database.models import Base
from database.session import make_engine

TABLES = {"candles", "strategy_runs", "strategy_run_results", "strategy_signals", "trades"}


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


def test_migrated_schema_matches_the_models(engine):
    assert _schema_diff(engine, Base.metadata) == []


def test_schema_comparison_sees_a_model_change(engine):
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["candles"].append_column(Column("spread", Integer()))

    diff = _schema_diff(engine, drifted)

    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "candles", "spread")]


def test_check_constraints_of_the_models_are_in_the_database(engine):
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
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
        assert _schema_diff(engine, Base.metadata) == []
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
