"""A bulk import's trade cache file written while PostgreSQL stores its rows
(database/repositories/_trade_cache_ahead.py): used when the rows took the ids the sequence
said (the cache then holds every row as a read from the database gives it, and the first read
reads no row); deleted, and the batch appended the usual way, when another writer took an id
meanwhile or the sequence could not be read; nothing left when the import is rolled back."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from database.repositories import _trade_cache_ahead as ahead
from database.repositories import _trade_cache_sync as sync
from services.tracking import TrackingService
from tests.conftest import ONLY_POSTGRESQL
from tests.database.test_trade_cache_writes import assert_cached_as_stored, read_rows, written
from tests.tracking.test_bulk_import import _fills_csv, _store_bars
from tracking.importers import TradeImportError

pytestmark = pytest.mark.parametrize("database_backend", [ONLY_POSTGRESQL], indirect=True)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "candles"
    monkeypatch.setenv("CANDLE_CACHE_DIR", str(folder))
    yield folder.parent / "trade_cache"
    sync._held.flush_all()


@pytest.fixture
def taken(monkeypatch):
    """The files ahead handed over (True) or not (False); the batches prepared after."""
    from tracking.importers import csv_fills

    monkeypatch.setattr(csv_fills, "HEAD_FROM_ROWS", 100)  # a head stored first
    monkeypatch.setattr(csv_fills, "HEAD_SHARE", 4)
    monkeypatch.setattr(ahead, "AHEAD_FROM_ROWS", 100)
    monkeypatch.setattr(sync, "FLUSH_ROWS", 100)  # else: prepared while it commits
    seen: dict[str, list] = {"taken": [], "prepared": []}
    take, prepare = ahead.FileAhead.take, sync._Batch.prepare

    def spy_take(self, *args):
        made = take(self, *args)
        seen["taken"].append(made is not None)
        return made

    monkeypatch.setattr(ahead.FileAhead, "take", spy_take)
    monkeypatch.setattr(
        sync._Batch, "prepare", lambda batch: seen["prepared"].append(batch.rows) or prepare(batch)
    )
    return seen


def _import(session_factory, path, account: str = "cols") -> None:
    TrackingService(session_factory).import_file(path, "csv", account)
    sync._preparing().submit(lambda: None).result()  # the cache's thread done


def _no_temporary(cache_dir) -> bool:
    return not [p.name for p in cache_dir.iterdir() if p.name.endswith(".tmp")]


def test_the_file_written_ahead_is_the_cache(session_factory, tmp_path, cache_dir, taken,
                                              monkeypatch):  # fmt: skip
    _store_bars(session_factory)
    _import(session_factory, _fills_csv(tmp_path / "fills.csv", 1200, seed=21, ordered=True))
    assert taken == {"taken": [True], "prepared": []}
    assert_cached_as_stored(session_factory, "cols")
    _, afters = read_rows(session_factory, monkeypatch, "cols")
    assert afters == []  # every row from the file
    assert _no_temporary(cache_dir)


@pytest.mark.parametrize("how", ["another writer", "no sequence"])
def test_a_file_for_other_ids_is_deleted(session_factory, tmp_path, cache_dir, taken,
                                          monkeypatch, how):  # fmt: skip
    """Another writer takes an id once the sequence was read (the import's rows take the
    next ones), or the sequence cannot be read: the batch is appended the usual way."""
    if how == "no sequence":
        monkeypatch.setattr(ahead, "_NEXT_ID", text("SELECT no_such_function()"))
    else:
        original = ahead.FileAhead.__init__

        def then_an_id_taken(self, session, *args):
            original(self, session, *args)
            with session_factory.begin() as other:
                other.execute(text("SELECT nextval(pg_get_serial_sequence('trades', 'id'))"))

        monkeypatch.setattr(ahead.FileAhead, "__init__", then_an_id_taken)
    _store_bars(session_factory)
    _import(session_factory, _fills_csv(tmp_path / "fills.csv", 1200, seed=22, ordered=True))
    assert taken == {"taken": [False], "prepared": [1200]}
    assert_cached_as_stored(session_factory, "cols")
    assert _no_temporary(cache_dir)


def test_an_import_rolled_back_leaves_no_file(session_factory, tmp_path, cache_dir, taken):
    path = _fills_csv(tmp_path / "bad.csv", 1200, seed=23, ordered=True)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[1099, "price"] = "abc"
    frame.to_csv(path, index=False)
    with pytest.raises(TradeImportError, match="row 1100, column 'price'"):
        _import(session_factory, path)
    sync._preparing().submit(lambda: None).result()
    assert written(session_factory, "cols")[2] is None
    assert not cache_dir.exists() or _no_temporary(cache_dir)
