"""The columnar cache of an account's trades (database/repositories/_trade_cache.py), on SQLite
and PostgreSQL: a cached read equals the database read, whatever the filters, after new trades
(only those read from the database), with a damaged or foreign file, and with the cache off."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select, update

from database.models import DatabaseIdentity
from database.records import TradeRecord
from database.repositories import _trade_cache_sync as sync
from database.repositories._trade_cache import TradeFileCache, trade_cache_for
from database.repositories.trades import TradeRepository
from tests.database.builders import copy_recorder

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "candles"
    monkeypatch.setenv("CANDLE_CACHE_DIR", str(folder))
    return folder.parent / "trade_cache"


def trades(start: int, n: int, account: str = "acc") -> list[TradeRecord]:
    return [
        TradeRecord(
            trade_id=f"t{k}", account_id=account, strategy_id=f"s{k % 2}",
            symbol=("BTC/USDT", "SP500")[k % 3 == 0], side=("buy", "sell")[k % 2],
            price=100.0 + k, volume=1.0 + k % 4, commission=0.1,
            execution_time=T0 + timedelta(minutes=k), labels=(("momentum",), ())[k % 2],
            market_context={"volatility_regime": ("high", None)[k % 2], "market_session": "x"},
            pnl=float(k % 5 - 2), cumulative_pnl=float(k), source="csv",
            order_id=None if k % 2 else f"o{k}",
        )
        for k in range(start, start + n)
    ]  # fmt: skip


def add(session_factory, records) -> None:
    with session_factory.begin() as session:
        TradeRepository(session).add_many(records)


def both(session_factory, **filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the database read, the cached read), the rows the latter read appended to the cache
    (in the cache's thread) before it returns."""
    with session_factory() as session:
        repo = TradeRepository(session)
        plain, cached = repo.frame("acc", **filters), repo.frame("acc", cached=True, **filters)
        token = session.scalar(select(DatabaseIdentity.token))
        sync.flush(trade_cache_for(session.connection().engine.url), token)
    return plain, cached


def test_a_read_appends_its_rows_in_the_cache_thread(session_factory, monkeypatch):
    """The reader has its frame while the rows it read are written; the next read of the
    account waits for them and reads none from the database."""
    add(session_factory, trades(0, 12))
    with session_factory() as session:
        token = session.scalar(select(DatabaseIdentity.token))
        cache = trade_cache_for(session.connection().engine.url)
    sync.flush(cache, token)
    cache.discard("acc", token)  # the writer's file: the read reads every row
    release = threading.Event()
    appending = TradeFileCache.append

    def held(*args, **kwargs):
        assert threading.current_thread() is not threading.main_thread()
        release.wait(30)
        return appending(*args, **kwargs)

    monkeypatch.setattr(TradeFileCache, "append", held)
    with session_factory() as session:
        first = TradeRepository(session).frame("acc", cached=True)  # returns while held
    assert len(first) == 12
    assert cache.load("acc", token) is None  # not written yet
    threading.Timer(0.2, release.set).start()
    reads = []
    monkeypatch.setattr(TradeRepository, "_read", lambda *a, **k: reads.append(a) or 1 / 0)
    with session_factory() as session:  # waits for the append, then reads the file alone
        again = TradeRepository(session).frame("acc", cached=True)
    pd.testing.assert_frame_equal(again, first)
    assert reads == []


FILTERS = [
    {},
    {"strategy_id": "s1"},
    {"symbol": "SP500"},
    {"start": T0 + timedelta(minutes=10), "end": T0 + timedelta(minutes=30)},
    {"strategy_id": "s0", "symbol": "BTC/USDT", "start": T0 + timedelta(minutes=5)},
]


def test_a_cached_read_equals_the_database_read_as_the_account_grows(session_factory, cache_dir):
    add(session_factory, trades(0, 40))
    for filters in FILTERS:  # the first builds the file, the others read it
        plain, cached = both(session_factory, **filters)
        pd.testing.assert_frame_equal(cached, plain)
    files = list(cache_dir.glob("*.trades.arrow"))
    assert len(files) == 1

    add(session_factory, trades(40, 25))  # newer rows: read after the cached ones
    with session_factory() as session:
        hit = trade_cache_for(session.connection().engine.url).load(
            "acc", session.scalar(select(DatabaseIdentity.token))
        )
    assert hit.count == 40
    for filters in FILTERS:
        plain, cached = both(session_factory, **filters)
        pd.testing.assert_frame_equal(cached, plain)
    assert len(plain) < 65
    with session_factory() as session:
        hit = trade_cache_for(session.connection().engine.url).load(
            "acc", session.scalar(select(DatabaseIdentity.token))
        )
    assert hit.count == 65  # the file grew with them
    # another account is its own file; an account without trades is an empty frame
    add(session_factory, trades(0, 3, account="other"))
    with session_factory() as session:
        repo = TradeRepository(session)
        assert len(repo.frame("other", cached=True)) == 3
        assert repo.frame("nobody", cached=True).empty


def test_a_damaged_or_foreign_file_is_read_again_from_the_database(session_factory, cache_dir):
    add(session_factory, trades(0, 30))
    plain, _ = both(session_factory)
    (path,) = cache_dir.glob("*.trades.arrow")
    path.write_bytes(b"not arrow at all")
    _, cached = both(session_factory)
    pd.testing.assert_frame_equal(cached, plain)
    assert path.read_bytes()[:6] == b"ARROW1"  # rebuilt

    # a database rebuilt under the same URL has another identity: the old file is not read
    with session_factory.begin() as session:
        session.execute(update(DatabaseIdentity).values(token="f" * 32))
    add(session_factory, trades(30, 2))
    plain, cached = both(session_factory)
    pd.testing.assert_frame_equal(cached, plain)
    assert len(list(cache_dir.glob("*.trades.arrow"))) == 2

    # a file holding more rows than the database (rows it should not know of): rebuilt
    with session_factory() as session:
        cache = trade_cache_for(session.connection().engine.url)
        token = session.scalar(select(DatabaseIdentity.token))
        frame = TradeRepository(session).frame("acc").rename(columns={"labels": "labels_text"})
    frame["labels_text"] = "[]"
    frame = pd.concat([frame, frame.tail(1).assign(trade_id="ghost")], ignore_index=True)
    assert cache.store("acc", token, frame, last_id=10**9)
    plain, cached = both(session_factory)
    pd.testing.assert_frame_equal(cached, plain)
    assert "ghost" not in set(cached["trade_id"])


def test_with_the_cache_off_the_database_is_read(session_factory, cache_dir, monkeypatch):
    monkeypatch.setenv("CANDLE_CACHE_DIR", "off")
    add(session_factory, trades(0, 10))
    plain, cached = both(session_factory)
    pd.testing.assert_frame_equal(cached, plain)
    assert not cache_dir.exists()


def test_a_copied_read_equals_the_row_read(session_factory, monkeypatch):
    """The rows read into Arrow columns (_trade_copy: PostgreSQL's copied as CSV and parsed
    by Arrow, SQLite's regrouped a chunk at a time) are the frame the rows read one by one
    give: texts with commas, quotes, line breaks and non-ASCII, empty texts beside missing
    ones, every float's exact double."""
    import database.repositories.trades as trades_module

    odd = [
        TradeRecord(
            trade_id=f'id,"{k}"\nx', account_id="acc", strategy_id=(" s", "s é")[k % 2],
            symbol=("BTC/€", "a,b")[k % 2], side=("buy", "sell")[k % 2],
            price=0.1 + k / 3, volume=1 / 3 + k, commission=(1e-300, 0.0)[k % 2],
            execution_time=T0 + timedelta(microseconds=123457 * k + 1), labels=(("q\"u,o",
            "l\nb"), ())[k % 2], market_context={"volatility_regime": ('a"b,c', "")[k % 2],
            "market_session": (None, "x")[k % 2]}, pnl=(None, 2 / 7)[k % 2],
            cumulative_pnl=(-1e17 / 3, None)[k % 2], source=("", None)[k % 2],
            order_id=(None, "")[k % 2],
        )
        for k in range(6)
    ]  # fmt: skip
    add(session_factory, odd)
    copied, spy = copy_recorder()

    def read(copy: bool) -> list[pd.DataFrame]:
        monkeypatch.setattr(trades_module, "copied_rows", spy if copy else lambda *a, **k: None)
        with session_factory() as session:
            repo = TradeRepository(session)
            after = repo.rows_after("acc", 2)[0]
            return [repo.frame("acc"), repo.frame("acc", context=True), after]

    for fast, slow in zip(read(True), read(False), strict=True):
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert copied == [True] * 3
