"""StrategyRepository: runs saved with their signals, queries, aggregations and retention, on
SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from database.models import StrategyRun, StrategySignal
from database.records import RetentionPolicy, RetentionReport
from database.repositories import SIGNAL_FRAME_COLUMNS, StrategyRepository, TradeRepository
from tests.database.builders import T0, signal, signals, trade

CONFIG = {"fast": 10, "slow": 30}
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _save(repo: StrategyRepository, mode: str = "backtest", **changes):
    values = {
        "strategy_name": "sma_cross",
        "config": CONFIG,
        "symbol": "SP500",
        "timeframe": "1d",
        "mode": mode,
        "signals": signals(3),
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=5),
    }
    values.update(changes)
    return repo.save_run(**values)


def _counts(session) -> tuple[int, int]:
    """How many runs and signals are stored."""
    return (
        session.scalar(select(func.count()).select_from(StrategyRun)),
        session.scalar(select(func.count()).select_from(StrategySignal)),
    )


# -- save_run ---------------------------------------------------------------------------------
def test_save_run_stores_the_run_and_its_signals(session_factory):
    records = [
        signal(timestamp=T0, strategy_config={}),
        signal(timestamp=T0 + timedelta(days=1), strategy_config={"fast": 5}),
    ]
    with session_factory.begin() as session:
        run = _save(StrategyRepository(session), signals=records)

    with session_factory() as session:
        repo = StrategyRepository(session)
        assert repo.runs.get(run.id) == run
        back = repo.signals.list(run_id=run.id)
    assert run.status == "finished"
    assert run.finished_at == T0 + timedelta(minutes=5)
    assert run.config == CONFIG
    assert [s.run_id for s in back] == [run.id, run.id]
    assert [s.timestamp for s in back] == [T0, T0 + timedelta(days=1)]
    # a signal without its own config takes the run's
    assert [s.strategy_config for s in back] == [CONFIG, {"fast": 5}]
    assert back[0].metadata == records[0].metadata


def test_save_run_defaults_finish_now_and_can_store_a_running_run(session):
    repo = StrategyRepository(session)
    before = datetime.now(UTC)

    finished = repo.save_run("s", {}, "SP500", "1d", "paper", [])
    running = repo.save_run(
        "s", {}, "SP500", "1d", "live", [signal(strategy_name="s")], status="running"
    )

    assert before <= finished.started_at <= finished.finished_at <= datetime.now(UTC)
    assert running.status == "running"
    assert running.finished_at is None
    assert repo.signals.count(run_id=running.id) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "forward"}, "mode='forward'"),
        ({"status": "done"}, "status='done'"),
        ({"started_at": datetime(2024, 1, 2)}, "started_at=.* is naive"),
        ({"finished_at": datetime(2024, 1, 2)}, "finished_at=.* is naive"),
        ({"finished_at": T0 - timedelta(seconds=1)}, "before started_at"),
        ({"status": "running"}, "status='running'"),
        ({"symbol": " "}, "symbol=' '"),
        ({"signals": [signal(), signal(symbol="NASDAQ")]}, "signal 1 has symbol='NASDAQ'"),
        ({"signals": [signal(timeframe="1h")]}, "signal 0 has timeframe='1h'"),
        ({"signals": [signal(strategy_name="rsi")]}, "signal 0 has strategy_name='rsi'"),
        ({"signals": [signal(run_id=7)]}, "signal 0 already names run 7"),
        ({"signals": [signal(id=3)]}, "signal 3 is already stored"),
    ],
)
def test_save_run_names_what_is_wrong_before_writing(session, changes, message):
    repo = StrategyRepository(session)

    with pytest.raises(ValueError, match=message):
        _save(repo, **changes)

    assert _counts(session) == (0, 0)


def test_save_run_takes_only_signal_records(session):
    repo = StrategyRepository(session)
    with pytest.raises(TypeError, match="signal 1: expected SignalRecord, got dict"):
        _save(repo, signals=[signal(), {"signal_type": "entry_long"}])
    assert _counts(session) == (0, 0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"signal_type": "buy"}, "signal_type='buy' is invalid: expected one of entry_long"),
        ({"confidence": 1.5}, "confidence=1.5 is invalid: expected 0 to 1"),
        ({"confidence": -0.1}, "confidence=-0.1 is invalid"),
        ({"timestamp": datetime(2024, 1, 2)}, "timestamp=.* is naive"),
    ],
)
def test_a_bad_signal_in_a_stream_stops_the_batch_before_anything_is_written(
    session, changes, message
):
    def stream():
        yield from signals(5)
        yield signal(**changes)

    with pytest.raises(ValueError, match=message):
        _save(StrategyRepository(session), signals=stream())

    assert _counts(session) == (0, 0)


def test_a_batch_failing_in_the_database_leaves_nothing_behind(session_factory):
    records = signals(250)
    # a record corrupted behind its validation: only the CHECK constraint can refuse it, after
    # the run and two chunks of signals were written
    object.__setattr__(records[240], "confidence", 1.5)

    with pytest.raises(IntegrityError), session_factory.begin() as session:
        _save(StrategyRepository(session, chunk_rows=100), signals=records)

    with session_factory() as session:
        assert _counts(session) == (0, 0)


def test_save_run_writes_many_signals_in_chunks(session):
    records = signals(12_345, step=timedelta(minutes=1))
    repo = StrategyRepository(session, chunk_rows=5_000)

    run = _save(repo, signals=records)

    back = repo.signals.list(run_id=run.id)
    assert back == [
        dataclasses.replace(r, id=b.id, run_id=run.id) for r, b in zip(records, back, strict=True)
    ]


def test_save_run_keeps_odd_text_and_json(session):
    odd = 'a "quoted", comma\nnew line \\ back\tslash é ✓'
    record = signal(strategy_name=odd, metadata={"note": odd, "nested": {"x": [1, None, 2.5]}})
    repo = StrategyRepository(session)

    run = _save(repo, strategy_name=odd, signals=[record], config={"text": odd})

    (back,) = repo.signals.list(run_id=run.id)
    assert back.strategy_name == odd
    assert back.metadata == {"note": odd, "nested": {"x": [1, None, 2.5]}}
    assert back.strategy_config == {"fast": 10, "slow": 30}
    assert back.price == record.price


# -- queries ----------------------------------------------------------------------------------
@pytest.fixture
def stored(session):
    """A backtest, a live and a paper run, and one signal without a run."""
    repo = StrategyRepository(session)
    backtest = _save(
        repo, signals=[signal(timestamp=T0 + timedelta(hours=i), confidence=c) for i, c in
                       enumerate([0.2, 0.5, 0.9])],
    )  # fmt: skip
    live = _save(
        repo, "live", signals=[signal(timestamp=T0 + timedelta(hours=10), signal_type="exit_long")]
    )
    paper = _save(repo, "paper", signals=[signal(timestamp=T0 + timedelta(hours=20))])
    repo.signals.add_many([signal(timestamp=T0 + timedelta(hours=30), confidence=1.0)])
    return repo, backtest, live, paper


def test_signal_queries_filter_by_confidence_mode_and_order(stored):
    repo, *_ = stored

    def hours(**filters: object) -> list[float]:
        return [(s.timestamp - T0) / timedelta(hours=1) for s in repo.signals.list(**filters)]

    assert hours() == [0, 1, 2, 10, 20, 30]
    assert hours(newest_first=True) == [30, 20, 10, 2, 1, 0]
    assert hours(newest_first=True, limit=2) == [30, 20]
    assert hours(min_confidence=0.5) == [1, 2, 10, 20, 30]
    assert hours(min_confidence=0.75) == [2, 10, 20, 30]  # builder's default is 0.75
    assert hours(mode="backtest") == [0, 1, 2]
    assert hours(mode=["live", "paper"]) == [10, 20]
    assert hours(signal_types="exit_long") == [10]
    assert hours(mode="backtest", min_confidence=0.5, start=T0 + timedelta(hours=2)) == [2]
    assert repo.signals.count(mode="live") == 1
    assert repo.signals.count(min_confidence=1) == 1


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"signal_types": ["entry_long", "buy"]}, "unknown 'buy'; expected among entry_long"),
        ({"mode": "forward"}, "unknown 'forward'; expected among backtest"),
        ({"min_confidence": 1.5}, "min_confidence=1.5 is invalid: expected a number from 0"),
        ({"min_confidence": "high"}, "min_confidence='high'"),
        ({"limit": -1}, "limit=-1"),
        ({"end": datetime(2024, 1, 1)}, "naive"),
    ],
)
def test_signal_queries_name_a_bad_filter(session, filters, message):
    with pytest.raises(ValueError, match=message):
        StrategyRepository(session).signals.list(**filters)


def test_signal_frame_is_the_list_without_json(stored):
    repo, *_ = stored

    frame = repo.signals.frame(mode=["backtest", "live"], newest_first=True)
    records = repo.signals.list(mode=["backtest", "live"], newest_first=True)

    assert list(frame.columns) == list(SIGNAL_FRAME_COLUMNS)
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["price"].dtype == "float64"
    assert frame["run_id"].dtype == "Int64"
    assert frame["id"].tolist() == [r.id for r in records]
    assert frame["timestamp"].tolist() == [pd.Timestamp(r.timestamp) for r in records]
    assert frame["confidence"].tolist() == [r.confidence for r in records]
    empty = repo.signals.frame(symbol="nothing")
    assert list(empty.columns) == list(SIGNAL_FRAME_COLUMNS)
    assert empty.empty


# -- aggregations -----------------------------------------------------------------------------
def _set_session_time_zone(session, database_backend: str) -> None:
    # bucketing must not follow the connection's time zone: make it far from UTC
    if database_backend == "postgresql":
        session.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))


def test_signals_count_per_strategy_and_utc_day(session, database_backend):
    _set_session_time_zone(session, database_backend)
    repo = StrategyRepository(session)
    last_second = datetime(2024, 3, 9, 23, 59, 59, tzinfo=UTC)
    midnight = datetime(2024, 3, 10, tzinfo=UTC)
    repo.signals.add_many(
        [
            signal(timestamp=last_second),
            signal(timestamp=last_second - timedelta(hours=23, minutes=59, seconds=59)),
            signal(timestamp=midnight),
            signal(timestamp=midnight, strategy_name="rsi", signal_type="exit_long"),
        ]
    )

    counts = repo.signals.signal_counts()

    assert list(counts.columns) == ["strategy_name", "day", "signals"]
    assert counts.to_dict("records") == [
        {"strategy_name": "rsi", "day": pd.Timestamp("2024-03-10", tz="UTC"), "signals": 1},
        {"strategy_name": "sma_cross", "day": pd.Timestamp("2024-03-09", tz="UTC"), "signals": 2},
        {"strategy_name": "sma_cross", "day": pd.Timestamp("2024-03-10", tz="UTC"), "signals": 1},
    ]
    by_type = repo.signals.signal_counts(by=["day", "signal_type"], strategy_name="sma_cross")
    assert by_type.to_dict("records") == [
        {"day": pd.Timestamp("2024-03-09", tz="UTC"), "signal_type": "entry_long", "signals": 2},
        {"day": pd.Timestamp("2024-03-10", tz="UTC"), "signal_type": "entry_long", "signals": 1},
    ]
    filtered = repo.signals.signal_counts(by=("day",), start=midnight)
    assert filtered["signals"].tolist() == [2]


def test_signal_counts_per_mode_and_overall(stored):
    repo, *_ = stored

    by_mode = repo.signals.signal_counts(by=("mode",))
    assert dict(zip(by_mode["mode"].fillna("no run"), by_mode["signals"], strict=True)) == {
        "backtest": 3,
        "live": 1,
        "paper": 1,
        "no run": 1,
    }
    assert repo.signals.signal_counts(by=())["signals"].tolist() == [6]
    assert repo.signals.signal_counts(by=("run_id",))["run_id"].dtype == "Int64"
    assert repo.signals.signal_counts(symbol="none").empty
    with pytest.raises(ValueError, match="by=\\('week',\\) is invalid: expected distinct"):
        repo.signals.signal_counts(by=("week",))
    with pytest.raises(ValueError, match="distinct"):
        repo.signals.signal_counts(by=("day", "day"))


def test_average_confidence_per_strategy(session):
    repo = StrategyRepository(session)
    repo.signals.add_many(
        [
            signal(confidence=0.2),
            signal(confidence=0.6),
            signal(strategy_name="rsi", confidence=1.0),
        ]
    )

    averages = repo.signals.average_confidence()

    assert list(averages.columns) == ["strategy_name", "signals", "mean_confidence"]
    assert averages["strategy_name"].tolist() == ["rsi", "sma_cross"]
    assert averages["signals"].tolist() == [1, 2]
    assert averages["mean_confidence"].tolist() == pytest.approx([1.0, 0.4])
    high = repo.signals.average_confidence(min_confidence=0.5)
    assert high["mean_confidence"].tolist() == pytest.approx([1.0, 0.6])


# -- retention --------------------------------------------------------------------------------
def _populate_for_retention(session) -> dict[str, int]:
    """Old and recent runs of every mode (old: 200 days before NOW, recent: 2 days)."""
    repo = StrategyRepository(session)
    old, recent = NOW - timedelta(days=200), NOW - timedelta(days=2)
    runs = {}
    for age, started in (("old", old), ("recent", recent)):
        for mode in ("backtest", "live", "paper"):
            # a backtest of old history made recently is recent analysis: bar times are old
            records = signals(4, start=datetime(2015, 1, 5, tzinfo=UTC))
            runs[f"{age} {mode}"] = _save(
                repo, mode, signals=records, started_at=started, finished_at=started
            ).id
    runs["old running backtest"] = _save(
        repo, signals=signals(2), started_at=old, finished_at=None, status="running"
    ).id
    runs["old traded backtest"] = _save(
        repo, signals=signals(2), started_at=old, finished_at=old
    ).id
    TradeRepository(session).add_many([trade(run_id=runs["old traded backtest"])])
    repo.signals.add_many(
        [signal(timestamp=old), signal(timestamp=recent), signal(timestamp=old, strategy_name="x")]
    )
    return runs


def test_retention_deletes_old_analysis_and_keeps_live_and_paper(session_factory):
    with session_factory.begin() as session:
        runs = _populate_for_retention(session)

    with session_factory.begin() as session:
        report = StrategyRepository(session).apply_retention(
            RetentionPolicy(keep_analysis_days=30), now=NOW
        )

    assert report == RetentionReport(
        deleted_signals=4 + 2, deleted_runs=1, cutoff=NOW - timedelta(days=30)
    )
    with session_factory() as session:
        repo = StrategyRepository(session)
        kept_runs = {r.id for r in repo.runs.list()}
        assert kept_runs == set(runs.values()) - {runs["old backtest"]}
        per_run = repo.signals.signal_counts(by=("run_id",))
        counts = dict(zip(per_run["run_id"], per_run["signals"], strict=True))
        for name in ("old live", "old paper", "recent live", "recent paper", "recent backtest"):
            assert counts[runs[name]] == 4, name
        assert counts[runs["old running backtest"]] == 2
        assert runs["old traded backtest"] not in counts  # its signals went, its row stays
        assert runs["old backtest"] not in counts
        assert repo.signals.count() == 4 * 5 + 2 + 3  # the 3 signals without a run are kept
        assert len(TradeRepository(session).list()) == 1


def test_retention_can_include_signals_without_a_run(session):
    _populate_for_retention(session)
    repo = StrategyRepository(session)
    before = repo.signals.signal_counts(by=("mode",))
    unattached = int(before.loc[before["mode"].isna(), "signals"].iloc[0])

    report = repo.apply_retention(
        RetentionPolicy(keep_analysis_days=30, include_unattached_signals=True), now=NOW
    )

    assert unattached == 3
    assert report.deleted_signals == 4 + 2 + 2  # the two old signals without a run
    after = repo.signals.signal_counts(by=("mode",))
    assert int(after.loc[after["mode"].isna(), "signals"].iloc[0]) == 1


def test_retention_never_deletes_live_or_paper_whatever_their_age(session):
    repo = StrategyRepository(session)
    ancient = datetime(2001, 1, 1, tzinfo=UTC)
    for mode in ("live", "paper"):
        _save(repo, mode, signals=signals(3, start=ancient), started_at=ancient)

    report = repo.apply_retention(
        RetentionPolicy(keep_analysis_days=0, include_unattached_signals=True), now=NOW
    )

    assert (report.deleted_signals, report.deleted_runs) == (0, 0)
    assert repo.signals.count() == 6
    assert len(repo.runs.list()) == 2


def test_retention_deletes_in_one_statement_per_table(session, engine):
    repo = StrategyRepository(session)
    old = NOW - timedelta(days=90)
    for _ in range(20):
        _save(repo, signals=signals(50), started_at=old, finished_at=old)
    _save(repo, "live", signals=signals(5), started_at=old, finished_at=old)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        report = repo.apply_retention(RetentionPolicy(keep_analysis_days=30), now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert (report.deleted_signals, report.deleted_runs) == (1000, 20)
    deletes = [s.split()[2] for s in statements if s.lstrip().upper().startswith("DELETE")]
    assert deletes == ["strategy_signals", "strategy_signal_blocks", "strategy_runs"]
    assert not [s for s in statements if "trades" in s.split("WHERE")[0]]
    assert repo.signals.count() == 5


def test_retention_needs_a_valid_policy_and_an_aware_now(session):
    repo = StrategyRepository(session)
    for days in (-1, 1.5, True, "30"):
        with pytest.raises(ValueError, match=f"keep_analysis_days={days!r}"):
            RetentionPolicy(keep_analysis_days=days)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"now=.* is naive"):
        repo.apply_retention(RetentionPolicy(keep_analysis_days=1), now=datetime(2024, 1, 1))
    with pytest.raises(TypeError, match="RetentionPolicy"):
        repo.apply_retention(30)  # type: ignore[arg-type]
