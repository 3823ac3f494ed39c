"""The run store of migration 0003, on SQLite and PostgreSQL: what an 0001 database held reads
back identically after the upgrade; a run's config is stored once; run integrity (unknown run
refused, a run's signals deleted with it, a run id never changes) without a FOREIGN KEY."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import timedelta

import pytest
from sqlalchemy import JSON, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from database.migrate import current_revision, downgrade, head_revision, upgrade
from database.models import StrategySignal, UTCDateTime
from database.records import SignalRecord
from database.repositories import StrategyRepository
from database.repositories._signal_io import signal_columns
from database.session import make_engine, make_session_factory
from tests.database.builders import T0, signal, signals

CONFIG = {"fast": 10, "slow": 30, "direction": "both", "backtest": {"cash": 10_000.0}}
ODD = 'a "quoted", comma\nnew line \\ back\tslash é ✓ 📈'


def _mixed_signals() -> list[SignalRecord]:
    """Metadata present, empty, odd; configs: the run's, none, own, own empty."""
    return [
        signal(timestamp=T0, strategy_config={}, metadata={}),
        signal(timestamp=T0 + timedelta(minutes=1), strategy_config=dict(CONFIG)),
        signal(
            timestamp=T0 + timedelta(minutes=2),
            strategy_config={"fast": 5, "note": ODD},
            metadata={"note": ODD, "nested": {"x": [1, None, 2.5]}, "n": 7, "ok": True},
        ),
        signal(timestamp=T0 + timedelta(minutes=3), metadata={"fast_sma": 1e-05, "atr": -0.0}),
    ]


def _store_everything(session) -> dict[str, list[SignalRecord]]:
    """Two runs (one of them a signals-only run without config) and signals without a run,
    some with a run id but stored through add_many; returns each run's signals as read."""
    repo = StrategyRepository(session)
    first = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", _mixed_signals())
    second = repo.save_run("sma_cross", {}, "SP500", "1d", "live", signals(3), status="running")
    repo.signals.add_many(
        [
            signal(timestamp=T0 + timedelta(days=9), strategy_config={}, metadata={}),
            signal(timestamp=T0 + timedelta(days=9, hours=1), run_id=first.id, strategy_config={}),
            signal(timestamp=T0 + timedelta(days=9, hours=2), run_id=second.id),
        ]
    )
    return {
        "all": repo.signals.list(),
        "first": repo.signals.list(run_id=first.id),
        "second": repo.signals.list(run_id=second.id),
    }


def test_an_0001_database_reads_back_the_same_after_the_upgrade(empty_database_url):
    upgrade(empty_database_url, "0001")
    engine = make_engine(empty_database_url)
    try:
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            # the 0001 schema has no NULL configs: write the rows as 0001's code did
            before = _store_with_0001_rows(session)
        upgrade(empty_database_url)
        assert current_revision(empty_database_url) == head_revision()
        with sessions() as session:
            repo = StrategyRepository(session)
            after = repo.signals.list()
            nulls = session.scalar(
                select(func.count()).where(StrategySignal.strategy_config.is_(None))
            )
        assert after == before
        assert nulls == 5  # four equal to their run's config, the {} without a run
    finally:
        engine.dispose()


def _store_with_0001_rows(session) -> list[SignalRecord]:
    """Runs and signals as 0001 stored them: every row with its config and metadata text."""
    runs = [
        ("sma_cross", '{"fast": 10, "slow": 30}', "backtest", "finished"),
        ("sma_cross", "{}", "live", "running"),
    ]
    ids = []
    for name, config, mode, status in runs:
        ids.append(
            session.execute(
                text(
                    "INSERT INTO strategy_runs (strategy_name, config, symbol, timeframe, mode, "
                    "started_at, finished_at, status) VALUES (:name, :config, 'SP500', '1d', "
                    ":mode, :started, :finished, :status) RETURNING id"
                ).bindparams(
                    bindparam("started", type_=UTCDateTime()),
                    bindparam("finished", type_=UTCDateTime()),
                ),
                {
                    "name": name,
                    "config": config,
                    "mode": mode,
                    "status": status,
                    "started": T0,
                    "finished": T0 if status != "running" else None,
                },
            ).scalar_one()
        )
    rows = [  # (config, metadata, run)
        ('{"fast": 10, "slow": 30}', '{"fast_sma": 4700.1, "reasons": ["cross"]}', ids[0]),
        ('{"fast": 10, "slow": 30}', "{}", ids[0]),
        ('{"fast": 10, "slow": 30}', json.dumps({"note": ODD}), ids[0]),
        ('{"fast": 5}', '{"a": 1}', ids[0]),  # its own config
        ("{}", "{}", ids[1]),  # the run's config is {} too
        ('{"fast": 10}', "{}", ids[1]),
        ("{}", '{"b": 2.5}', None),
        ('{"x": 1}', "{}", None),
    ]
    for index, (config, metadata, run) in enumerate(rows):
        session.execute(
            text(
                "INSERT INTO strategy_signals (strategy_name, strategy_config, symbol, "
                "timeframe, timestamp, signal_type, price, confidence, signal_metadata, run_id) "
                "VALUES ('sma_cross', :config, 'SP500', '1d', :ts, 'entry_long', 4742.83, 0.75, "
                ":metadata, :run)"
            ).bindparams(bindparam("ts", type_=UTCDateTime())),
            {"config": config, "metadata": metadata, "run": run, "ts": T0 + timedelta(hours=index)},
        )
    return _read_0001(session)


def _read_0001(session) -> list[SignalRecord]:
    """The signals of an 0001 database as its repository read them (every column as stored)."""
    statement = text(
        "SELECT id, strategy_name, strategy_config, symbol, timeframe, timestamp, signal_type, "
        "price, confidence, signal_metadata, run_id FROM strategy_signals ORDER BY timestamp, id"
    ).columns(timestamp=UTCDateTime(), strategy_config=JSON(), signal_metadata=JSON())
    rows = session.execute(statement).mappings().all()
    fields = [name for name in rows[0] if name != "signal_metadata"] if rows else []
    return [
        SignalRecord(**{k: row[k] for k in fields}, metadata=row["signal_metadata"]) for row in rows
    ]


def test_downgrade_to_0001_and_upgrade_again_keep_every_signal(empty_database_url):
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            before = _store_everything(session)["all"]
        downgrade(engine, "0001")
        with sessions() as session:  # 0001's shape: a config and metadata on every row
            assert (
                session.scalar(
                    text(
                        "SELECT count(*) FROM strategy_signals "
                        "WHERE strategy_config IS NULL OR signal_metadata IS NULL"
                    )
                )
                == 0
            )
        upgrade(engine)
        with sessions() as session:
            assert StrategyRepository(session).signals.list() == before
    finally:
        engine.dispose()


def test_a_run_config_is_stored_once_and_read_back_per_signal(session):
    stored = _store_everything(session)
    records = _mixed_signals()

    first = stored["first"]
    expected = [
        CONFIG,  # empty: the run's
        CONFIG,  # equal to the run's
        {"fast": 5, "note": ODD},
        {"fast": 10, "slow": 30},  # its own
    ]
    assert [s.strategy_config for s in first[:4]] == expected
    assert [s.metadata for s in first[:4]] == [r.metadata for r in records]
    # add_many of an empty config to an existing run kept {} (as it always did)
    assert first[4].strategy_config == {}
    assert [s.strategy_config for s in stored["second"]] == [{"fast": 10, "slow": 30}] * 4
    unattached = [s for s in stored["all"] if s.run_id is None]
    assert [(s.strategy_config, s.metadata) for s in unattached] == [({}, {})]
    rows = session.execute(
        text("SELECT strategy_config IS NULL, signal_metadata IS NULL FROM strategy_signals "
             "WHERE run_id = :run ORDER BY id"), {"run": first[0].run_id},
    ).all()  # fmt: skip
    assert [tuple(map(bool, r)) for r in rows] == [
        (True, True), (True, False), (False, False), (False, False), (False, False),
    ]  # fmt: skip


def test_the_stored_columns_name_null_only_where_it_reads_back_the_same():
    config = {"fast": 10}
    records = [
        signal(strategy_config={}, metadata={}),
        signal(strategy_config=config),
        signal(strategy_config={"fast": 10}),
        signal(strategy_config={"fast": 11}),
    ]
    run = signal_columns(records, 7, config)
    assert run["strategy_config"] == [None, None, None, '{"fast": 11}']
    assert run["signal_metadata"][0] is None
    assert run["run_id"] == [7] * 4
    loose = signal_columns([signal(strategy_config={}), signal(strategy_config={}, run_id=3)],
                           None, None)  # fmt: skip
    assert loose["strategy_config"] == [None, "{}"]


def test_a_nan_or_infinite_price_is_refused_by_name():
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match=r"price=.* is invalid"):
            signal(price=bad)


def test_a_large_run_round_trips(session):
    records = signals(30_011, step=timedelta(minutes=1))
    records = [
        dataclasses.replace(r, metadata={"fast_sma": i / 7, "slow_sma": -i * 1e-7, "atr": 0.0})
        for i, r in enumerate(records)
    ]
    repo = StrategyRepository(session, chunk_rows=7_000)
    run = repo.save_run("sma_cross", {"fast": 10, "slow": 30}, "SP500", "1d", "backtest", records)

    back = repo.signals.list(run_id=run.id)

    assert back == [
        dataclasses.replace(r, id=b.id, run_id=run.id) for r, b in zip(records, back, strict=True)
    ]
    frame = repo.signals.frame(run_id=run.id)
    assert frame["price"].tolist() == [r.price for r in records]
    assert frame["confidence"].tolist() == [r.confidence for r in records]


# -- integrity without a FOREIGN KEY ----------------------------------------------------------
def test_a_signal_of_an_unknown_run_is_refused_in_bulk_and_nothing_is_written(session_factory):
    records = [dataclasses.replace(r, run_id=999) for r in signals(5)]
    with (
        pytest.raises(IntegrityError, match="names no strategy run"),
        session_factory.begin() as session,
    ):
        StrategyRepository(session).signals.add_many([*signals(3), *records])
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(StrategySignal)) == 0


def test_moving_a_signal_to_an_unknown_run_is_refused(session):
    repo = StrategyRepository(session)
    run = repo.save_run("sma_cross", {}, "SP500", "1d", "backtest", signals(2))
    with pytest.raises(IntegrityError, match="names no strategy run"):
        session.execute(
            text("UPDATE strategy_signals SET run_id = :bad WHERE run_id = :run"),
            {"bad": run.id + 1, "run": run.id},
        )


def test_deleting_runs_deletes_their_signals_only(session):
    repo = StrategyRepository(session)
    gone = repo.save_run("sma_cross", {}, "SP500", "1d", "backtest", signals(4))
    kept = repo.save_run("sma_cross", {}, "SP500", "1d", "backtest", signals(3))
    repo.signals.add_many(signals(2))

    session.execute(text("DELETE FROM strategy_runs WHERE id = :run"), {"run": gone.id})

    assert repo.signals.count(run_id=gone.id) == 0
    assert repo.signals.count(run_id=kept.id) == 3
    assert repo.signals.count() == 5


def test_a_run_id_cannot_change(session):
    run = StrategyRepository(session).save_run("sma_cross", {}, "SP500", "1d", "backtest", [])
    with pytest.raises(IntegrityError, match="cannot change"):
        session.execute(
            text("UPDATE strategy_runs SET id = :new WHERE id = :run"),
            {"new": run.id + 100, "run": run.id},
        )
