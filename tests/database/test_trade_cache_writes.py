"""The trade cache kept by the writers (database/repositories/_trade_cache_sync.py), on SQLite
and PostgreSQL: the rows a writer commits (the tracker's batches, the bulk import, a mix; odd
values) are appended to the account's cache as the database gives them back, byte for byte,
so that the first read after the writer reads no row; a batch rolled back (to a savepoint
too) appends nothing; a crash before the append leaves the cache behind and the read catches
up; a row committed late below a cached one (PostgreSQL, two connections) is found by the
read's count and its file deleted; the chain of segments stays short; two writer processes,
a damaged file and an unwritable directory cost speed only."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from database.models import DatabaseIdentity
from database.records import TradeRecord
from database.repositories import _trade_cache_sync as sync
from database.repositories import _trade_rows
from database.repositories._trade_cache import trade_cache_for
from database.repositories._trade_context import COMPACT_CONTEXT
from database.repositories.trades import (
    TradeRepository,
    _columns,
    _finished,
    _from_cache,
)
from services.tracking import TrackingService
from tests.conftest import ONLY_POSTGRESQL
from tests.tracking.test_bulk_import import _fills_csv, _store_bars

T0 = datetime(2024, 3, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "candles"
    monkeypatch.setenv("CANDLE_CACHE_DIR", str(folder))
    yield folder.parent / "trade_cache"
    sync._held.flush_all()  # nothing of this test's held for the next one


def trades(start: int, n: int, account: str = "acc", **changes) -> list[TradeRecord]:
    out = []
    for k in range(start, start + n):
        values = {
            "trade_id": f"t{k}", "account_id": account, "strategy_id": f"s{k % 2}",
            "symbol": ("BTC/USDT", "SP500")[k % 3 == 0], "side": ("buy", "sell")[k % 2],
            "price": 100.0 + k / 7, "volume": 1.0 + k % 4, "commission": 0.1,
            "execution_time": T0 + timedelta(minutes=k, microseconds=k),
            "labels": (("momentum", 'é "q" \\'), (), ("a",))[k % 3],
            "market_context": {"volatility_regime": ("high", None)[k % 2],
                               "market_session": "x"},
            "pnl": float(k % 5 - 2) / 3, "cumulative_pnl": float(k), "source": "csv",
            "order_id": None if k % 2 else f"o{k}",
        }  # fmt: skip
        values.update({name: value(k) for name, value in changes.items()})
        out.append(TradeRecord(**values))
    return out


def odd(start: int, n: int, account: str = "acc") -> list[TradeRecord]:
    """Values whose stored form is not the obvious one."""
    contexts = [
        {},
        {"volatility_regime": "low"},
        {"market_session": "asia", "volatility_regime": "mid"},  # not the regime first
        {"_compact": 3, "volatility_regime": "high"},  # wrapped: read back as no regime
        {"volatility_regime": 'a"b\\c\n', "market_session": "ü"},
        {"other": {"volatility_regime": "nested"}},
    ]
    numbers = [-0.0, 1e300, -1.5, 1e-310, 0.1 + 0.2, 5e15 + 0.5]
    return trades(
        start, n, account,
        market_context=lambda k: contexts[k % len(contexts)],
        pnl=lambda k: numbers[k % len(numbers)],
        commission=lambda k: abs(numbers[(k + 1) % len(numbers)]),
        labels=lambda k: (("x", "y\tz"), ("日本",), ())[k % 3],
        strategy_id=lambda k: (" s ", "s", "tab\there")[k % 3],
        order_id=lambda k: ("", None, "o")[k % 3],
    )  # fmt: skip


def add(session_factory, records) -> None:
    with session_factory.begin() as session:
        TradeRepository(session).add_many(records)


def written(session_factory, account: str = "acc"):
    """The account's cache as the writers left it (held rows written), read alone."""
    with session_factory() as session:
        token = session.scalar(select(DatabaseIdentity.token))
        cache = trade_cache_for(session.connection().engine.url)
    sync.flush(cache, token)
    return cache, token, cache.load(account, token)


def assert_cached_as_stored(session_factory, account: str = "acc") -> None:
    """The cache holds every row of the account as a read from the database gives them:
    the raw columns (labels' JSON text as the database renders it) and the frame."""
    _, _, hit = written(session_factory, account)
    with session_factory() as session:
        repo = TradeRepository(session)
        raw = repo._read(account, None, None, None, None, False)
        plain = repo.frame(account)
    assert hit is not None
    assert hit.count == len(plain)
    frame = _from_cache(hit.frame, account)
    pd.testing.assert_frame_equal(frame, raw)
    pd.testing.assert_frame_equal(_finished(frame, False), plain)


def read_rows(session_factory, monkeypatch, account: str = "acc") -> tuple[pd.DataFrame, list]:
    """A cached read, and the ``after`` of each read of rows it made."""
    afters: list[int] = []
    original = TradeRepository._read

    def counting(self, *args, after_id=None, **kwargs):
        afters.append(after_id)
        return original(self, *args, after_id=after_id, **kwargs)

    monkeypatch.setattr(TradeRepository, "_read", counting)
    with session_factory() as session:
        frame = TradeRepository(session).frame(account, cached=True)
    monkeypatch.setattr(TradeRepository, "_read", original)
    written(session_factory, account)  # the rows it read appended (in the cache's thread)
    with session_factory() as session:
        pd.testing.assert_frame_equal(frame, TradeRepository(session).frame(account))
    return frame, afters


def test_batches_are_appended_as_the_database_gives_them_back(session_factory, monkeypatch):
    assert _trade_rows._COMPACT == COMPACT_CONTEXT  # the writer's wrapped contexts
    monkeypatch.setattr(sync, "FLUSH_ROWS", 7)  # segments of a few batches, merged
    add(session_factory, trades(0, 5))
    for start in range(5, 200, 13):
        add(session_factory, trades(start, 13) + trades(start, 2, account="other"))
    add(session_factory, odd(300, 36))
    assert_cached_as_stored(session_factory)
    assert_cached_as_stored(session_factory, "other")
    cache, token, hit = written(session_factory)
    assert len(hit.files) <= 1 + math.ceil(math.log2(hit.count))
    assert len(cache.files("acc", token)) == len(hit.files)  # the merged ones deleted
    frame, afters = read_rows(session_factory, monkeypatch)
    assert afters == []  # no row read: the cache holds them all
    assert frame.attrs["stored_version"] == (token, hit.count, hit.last_id)


@pytest.mark.parametrize(
    ("parsed_up_to", "repeats"),
    [(0, 10**9), (10_000, 4), (0, 1)],
    ids=["matched", "parsed", "parsed-once-per-distinct-text"],
)
def test_contexts_given_as_text_alone(session_factory, monkeypatch, parsed_up_to, repeats):
    """A writer that gives the contexts' JSON text only (the bulk import): the two keys read
    from the text, matched column-wise at its start, parsed, or parsed once per distinct
    text, as the database extracts them."""
    monkeypatch.setattr(_trade_rows, "_PARSED_UP_TO", parsed_up_to)
    monkeypatch.setattr(_trade_rows, "_REPEATS_AT_LEAST", repeats)
    for start in (0, 100):
        columns = _columns(odd(start, 60) + trades(start + 60, 30))
        del columns["volatility_regime"], columns["market_session"]
        with session_factory.begin() as session:
            TradeRepository(session).add_columns([columns])
    assert_cached_as_stored(session_factory)


def test_the_tracker_and_the_bulk_import_keep_the_cache(session_factory, tmp_path, monkeypatch):
    _store_bars(session_factory)
    service = TrackingService(session_factory)
    first, more = tmp_path / "a.csv", tmp_path / "b.csv"
    _fills_csv(first, 700, seed=1)
    _fills_csv(more, 300, seed=2, start_minute=8000)
    with monkeypatch.context() as patched:  # its chunks converted as they pass, not held
        patched.setattr(_trade_rows, "CONVERTED_FROM", 100)
        service.import_file(first, "csv", "mixed")  # the bulk import, one transaction
    assert_cached_as_stored(session_factory, "mixed")
    records = [r for r in trades(0, 60, "mixed") if r.symbol == "SP500"]  # annotated
    futures = [service.tracker.submit(r) for r in records]  # streamed: group commits
    for future in futures:
        future.result(timeout=60)
    service.import_file(more, "csv", "mixed")
    service.tracker.record_many(odd(900, 30, "mixed"))
    assert_cached_as_stored(session_factory, "mixed")
    _, afters = read_rows(session_factory, monkeypatch, "mixed")
    assert afters == []  # read from the cache alone
    # a fresh service's first read after the writer reads no cached row again
    with session_factory() as session:
        total = len(TradeRepository(session).frame("mixed"))
    assert TrackingService(session_factory).performance("mixed") is not None
    assert total == 700 + len(records) + 300 + 30


def test_many_accounts_held_are_written_past_a_bound(session_factory, monkeypatch):
    monkeypatch.setattr(sync, "HELD_AT_MOST", 20)
    with session_factory() as session:
        token = session.scalar(select(DatabaseIdentity.token))
        cache = trade_cache_for(session.connection().engine.url)
    for account in "abc":
        add(session_factory, trades(0, 6, account))
    assert [len(cache.files(a, token)) for a in "abc"] == [0, 0, 0]  # 18 rows held
    add(session_factory, trades(0, 6, "d"))  # 24: every account's written
    assert [len(cache.files(a, token)) for a in "abcd"] == [1, 1, 1, 1]
    for account in "abcd":
        assert_cached_as_stored(session_factory, account)


def test_a_rolled_back_batch_appends_nothing(session_factory):
    add(session_factory, trades(0, 10))
    session = session_factory()
    with session.begin():
        TradeRepository(session).add_many(trades(10, 5))
        session.rollback()  # the caller fails after the insert
    session.close()
    with session_factory.begin() as session:  # a savepoint rolled back, the rest committed
        nested = session.begin_nested()
        TradeRepository(session).add_many(trades(20, 5))
        nested.rollback()
        TradeRepository(session).add_many(trades(30, 4))
    session = session_factory()  # a savepoint released, the transaction rolled back
    with session.begin():
        with session.begin_nested():
            TradeRepository(session).add_many(trades(35, 4))
        session.rollback()
    session.close()
    session = session_factory()  # closed without a commit, then used again
    TradeRepository(session).add_many(trades(40, 3))
    session.close()
    TradeRepository(session).add_many(trades(50, 2))
    session.commit()
    session.close()
    with session_factory.begin() as session, session.begin_nested():  # released, committed
        TradeRepository(session).add_many(trades(60, 3))
    assert_cached_as_stored(session_factory)
    _, _, hit = written(session_factory)
    assert hit.count == 19
    assert set(hit.frame["trade_id"]) >= {"t33", "t51", "t62"}


def test_a_crash_before_the_append_leaves_the_cache_behind(session_factory, monkeypatch):
    add(session_factory, trades(0, 10))
    _, _, hit = written(session_factory)
    with monkeypatch.context() as patched:
        patched.setattr(sync._Registry, "add", lambda self, batch: None)  # lost at the commit
        add(session_factory, trades(10, 6))
    frame, afters = read_rows(session_factory, monkeypatch)
    assert len(frame) == 16
    assert afters == [hit.last_id]  # the 6 rows read, then cached
    add(session_factory, trades(16, 3))  # and the writer goes on from there
    assert_cached_as_stored(session_factory)


def test_a_file_missing_a_row_is_found_and_deleted(session_factory, monkeypatch):
    add(session_factory, trades(0, 10))
    cache, token, hit = written(session_factory)
    frame = hit.frame.drop(index=3).reset_index(drop=True)  # as if a row came in late
    from database.repositories._trade_cache import table_of

    cache.discard("acc", token)
    assert cache.write("acc", token, table_of(frame.assign(time=pd.to_datetime(frame["time"],
                       utc=True))), 0, hit.last_id)  # fmt: skip
    add(session_factory, trades(10, 3))
    read_rows(session_factory, monkeypatch)
    assert_cached_as_stored(session_factory)


@pytest.mark.parametrize("database_backend", [ONLY_POSTGRESQL], indirect=True)
def test_a_row_committed_late_below_the_cached_ones(session_factory, monkeypatch, database_url):
    monkeypatch.setattr(sync, "FLUSH_ROWS", 1)
    add(session_factory, trades(0, 5))
    late = session_factory()
    late.begin()
    TradeRepository(late).add_many(trades(5, 2))  # ids taken, not committed
    add(session_factory, trades(7, 3))  # higher ids, committed first: appended
    _, _, hit = written(session_factory)
    assert hit.count == 8  # the two rows in between are not claimed
    late.commit()  # now they are there, below the cache's last row
    late.close()
    _, _, hit = written(session_factory)
    assert hit.count == 8  # their batch did not extend the chain: not appended
    frame, afters = read_rows(session_factory, monkeypatch)
    assert len(frame) == 10
    assert afters[-1] < hit.last_id  # the segment missing them: read again
    assert_cached_as_stored(session_factory)


def test_two_writer_processes(session_factory, database_url, cache_dir, monkeypatch):
    add(session_factory, trades(0, 3))
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from database.session import make_engine, make_session_factory, write_session_factory\n"
        "from database.repositories import _trade_cache_sync as sync\n"
        "from database.repositories.trades import TradeRepository\n"
        "from tests.database.test_trade_cache_writes import trades\n"
        "sync.FLUSH_ROWS = 5\n"
        "sessions = write_session_factory(make_session_factory(make_engine(sys.argv[2])))\n"
        "base = int(sys.argv[3])\n"
        "for k in range(base, base + 200, 10):\n"
        "    with sessions.begin() as session:\n"
        "        mine = trades(k, 3, 'mine' + str(base))\n"
        "        TradeRepository(session).add_many(trades(k, 10) + mine)\n"
    )  # fmt: skip
    env = dict(os.environ, CANDLE_CACHE_DIR=str(cache_dir.parent / "candles"))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ROOT), database_url, str(base)], env=env
        )
        for base in (1000, 5000)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    with session_factory() as session:
        token = session.scalar(select(DatabaseIdentity.token))
        cache = trade_cache_for(session.connection().engine.url)
    for account in ("acc", "mine1000", "mine5000"):
        for path in cache.files(account, token):  # every file whole
            assert path.read_bytes()[:6] == b"ARROW1"
        read_rows(session_factory, monkeypatch, account)
        assert_cached_as_stored(session_factory, account)


def test_unwritable_or_damaged_files_cost_speed_only(session_factory, cache_dir, monkeypatch):
    add(session_factory, trades(0, 10))
    cache, token, _ = written(session_factory)
    (path,) = cache.files("acc", token)
    path.write_bytes(b"ARROW1 torn")
    frame, afters = read_rows(session_factory, monkeypatch)
    assert afters == [None]  # every row read
    assert path.read_bytes()[:6] == b"ARROW1"
    assert_cached_as_stored(session_factory)
    cache.discard("acc", token)
    cache_dir.rmdir()
    cache_dir.write_text("not a directory")
    add(session_factory, trades(10, 5))
    frame, afters = read_rows(session_factory, monkeypatch)
    assert len(frame) == 15


def test_a_large_batch_is_written_while_it_commits(session_factory, cache_dir, monkeypatch):
    """A batch of FLUSH_ROWS rows of one account is written under a temporary name while
    its transaction commits: renamed into place by the commit (after the account's rows
    held before it), deleted when rolled back; nothing temporary is left."""
    monkeypatch.setattr(sync, "FLUSH_ROWS", 8)
    prepared: list[int] = []
    original = sync._Batch.prepare

    def spy(batch):
        prepared.append(batch.rows)
        original(batch)

    monkeypatch.setattr(sync._Batch, "prepare", spy)
    add(session_factory, trades(0, 5))  # held (5 < 8)
    add(session_factory, trades(5, 2) + trades(5, 9, account="other"))  # two accounts: held
    add(session_factory, odd(20, 9))  # prepared, after the held rows
    session = session_factory()
    with session.begin():  # prepared, rolled back
        TradeRepository(session).add_many(trades(40, 10))
        session.rollback()
    session.close()
    with session_factory.begin() as session:  # prepared in a savepoint rolled back
        nested = session.begin_nested()
        TradeRepository(session).add_many(trades(60, 10))
        nested.rollback()
    session = session_factory()  # prepared, closed without a commit
    TradeRepository(session).add_many(trades(80, 9))
    session.close()
    sync._preparing().submit(lambda: None).result()  # the thread's work done
    assert prepared == [9, 10, 10, 9]
    assert_cached_as_stored(session_factory)
    _, _, hit = written(session_factory)
    assert hit.count == 5 + 2 + 9
    assert not [p.name for p in cache_dir.iterdir() if p.name.endswith(".tmp")]
