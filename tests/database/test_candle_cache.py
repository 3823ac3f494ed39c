"""The columnar candle cache, on SQLite and PostgreSQL: a hit is the frame the database gives,
every write replaces the series' version (so nothing stale is ever served), defective files
and unwritable folders cost only speed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from database.repositories import CandleRepository
from database.repositories._candle_cache import cache_for
from database.repositories._candle_io import BULK_MIN_ROWS
from database.repositories.candles import VERSIONS
from database.session import make_engine, make_session_factory
from tests.database.builders import candle_frame

ROOT = Path(__file__).resolve().parents[2]
UTC = "UTC"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CANDLE_CACHE_DIR", str(folder))
    return folder


def _bypass_the_version(engine: Engine) -> None:
    """Change every stored bar behind the repository's back (raw SQL keeps the version): a
    read that still returns the old bars came from the cache, not from the database."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE candles SET volume = volume + 1000"))


def _store(session_factory, symbol: str, frame: pd.DataFrame) -> None:
    with session_factory.begin() as session:
        CandleRepository(session).upsert(symbol, "1m", frame)


def _read(session_factory, symbol: str = "SP500", **bounds) -> pd.DataFrame:
    with session_factory() as session:
        return CandleRepository(session).frame(symbol, "1m", **bounds)


def _from_database(session_factory, monkeypatch, symbol: str = "SP500", **bounds) -> pd.DataFrame:
    with monkeypatch.context() as patch:
        patch.setenv("CANDLE_CACHE_DIR", "off")
        return _read(session_factory, symbol, **bounds)


def _version(session_factory, symbol: str = "SP500") -> str | None:
    with session_factory() as session:
        return session.scalar(select(VERSIONS.c.version).where(VERSIONS.c.symbol == symbol))


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.bars")) if folder.is_dir() else []


FRAME = candle_frame(3000, seed=11)
T = FRAME.index
BOUNDS = {
    "whole": {},
    "start": {"start": T[100]},
    "start between bars": {"start": T[100] + pd.Timedelta("30s")},
    "end": {"end": T[2500]},
    "start and end": {"start": T[10], "end": T[20]},
    "end before start": {"start": T[20], "end": T[10]},
    "after": {"after": T[2990]},
    "after and end": {"after": T[5], "end": T[9]},
    "last": {"last": 7},
    "last of a range": {"end": T[50], "last": 20},
    "last zero": {"last": 0},
    "last beyond the series": {"last": 10_000},
    "sub-millisecond bounds": {
        "start": T[3] + pd.Timedelta(1, "us"),
        "end": T[6] + pd.Timedelta(999, "us"),
    },
    "other time zone": {"start": T[60].tz_convert("Asia/Tokyo")},
    "after the series": {"start": T[-1] + pd.Timedelta("1min")},
    "far past and future": {
        "start": pd.Timestamp("0001-01-01", tz=UTC),
        "end": pd.Timestamp("9999-12-31", tz=UTC),
    },
}


@pytest.mark.parametrize("bounds", BOUNDS.values(), ids=BOUNDS.keys())
def test_a_hit_is_exactly_the_frame_the_database_returns(
    session_factory, engine, cache_dir, monkeypatch, bounds
):
    _store(session_factory, "SP500", FRAME)
    _read(session_factory)  # the whole series: fills the cache
    assert len(_files(cache_dir)) == 1
    expected = _from_database(session_factory, monkeypatch, **bounds)
    _bypass_the_version(engine)

    cached = _read(session_factory, **bounds)

    pd.testing.assert_frame_equal(cached, expected, check_exact=True)
    assert cached.index.name == "ts"
    assert cached.index.dtype == expected.index.dtype


def test_every_write_replaces_the_version_and_is_seen_by_another_engine(
    database_url, cache_dir, monkeypatch
):
    engines = [make_engine(database_url), make_engine(database_url)]  # two "processes"
    writer, reader = (make_session_factory(e) for e in engines)
    try:
        _store(writer, "SP500", FRAME.iloc[:2000])
        pd.testing.assert_frame_equal(_read(reader), FRAME.iloc[:2000], check_freq=False)
        versions = [_version(reader)]

        _store(writer, "SP500", FRAME.iloc[2000:])  # new bars
        pd.testing.assert_frame_equal(_read(reader), FRAME, check_freq=False)
        versions.append(_version(reader))

        changed = FRAME.iloc[100:101].assign(volume=123.0)  # one changed bar
        _store(writer, "SP500", changed)
        assert _read(reader)["volume"].iloc[100] == 123.0
        versions.append(_version(reader))

        with writer.begin() as session:
            assert CandleRepository(session).delete_series("SP500", "1m") == 3000
        assert _read(reader).empty
        assert _version(reader) is None

        _store(writer, "SP500", FRAME.iloc[:5])  # recreated: a version never seen before
        pd.testing.assert_frame_equal(_read(reader), FRAME.iloc[:5], check_freq=False)
        versions.append(_version(reader))
        assert len(set(versions)) == len(versions) == 4
        assert all(len(v) == 32 for v in versions)
        assert len(_files(cache_dir)) == 1  # older versions' files are removed
    finally:
        for e in engines:
            e.dispose()


def test_an_unchanged_rewrite_keeps_the_version_and_its_cache(session_factory, cache_dir):
    _store(session_factory, "SP500", FRAME)
    _read(session_factory)
    before, files = _version(session_factory), _files(cache_dir)

    _store(session_factory, "SP500", FRAME.iloc[10:500])  # the same bars again

    assert _version(session_factory) == before
    assert _files(cache_dir) == files


def test_an_import_into_another_process_is_seen_at_once(database_url, cache_dir, tmp_path):
    """A server holding a warm cache, `app.py import` of new and changed bars beside it."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        _store(sessions, "SP500", FRAME.iloc[:2000])
        pd.testing.assert_frame_equal(_read(sessions), FRAME.iloc[:2000], check_freq=False)
        update = FRAME.iloc[1500:].assign(volume=FRAME["volume"].iloc[1500:] + 0.5)
        csv = tmp_path / "update.csv"
        update.rename_axis("timestamp").to_csv(csv)

        command = [sys.executable, str(ROOT / "app.py"), "import", str(csv)]
        command += ["--symbol", "SP500", "--timeframe", "1m"]
        done = subprocess.run(
            command, capture_output=True, text=True, env=_env(database_url, cache_dir), cwd=ROOT
        )
        assert done.returncode == 0, done.stderr

        expected = pd.concat([FRAME.iloc[:1500], update])
        pd.testing.assert_frame_equal(_read(sessions), expected, check_freq=False)
        pd.testing.assert_frame_equal(
            _read(sessions, start=T[1400], end=T[1600]),
            expected.loc[T[1400] : T[1600]],
            check_freq=False,
        )
    finally:
        engine.dispose()


def _env(database_url: str, cache_dir: Path) -> dict[str, str]:
    return os.environ | {"DATABASE_URL": database_url, "CANDLE_CACHE_DIR": str(cache_dir)}


def test_a_transaction_sees_its_own_writes_and_a_rollback_restores_the_cache(
    session_factory, cache_dir
):
    _store(session_factory, "SP500", FRAME)
    _read(session_factory)
    changed = FRAME.assign(close=FRAME["low"])

    with session_factory() as session:
        repo = CandleRepository(session)
        repo.upsert("SP500", "1m", changed)
        pd.testing.assert_frame_equal(repo.frame("SP500", "1m"), changed, check_freq=False)
        pd.testing.assert_frame_equal(
            repo.frame("SP500", "1m", last=3), changed.iloc[-3:], check_freq=False
        )
        session.rollback()
        pd.testing.assert_frame_equal(repo.frame("SP500", "1m"), FRAME, check_freq=False)

    with session_factory() as session:
        repo = CandleRepository(session)
        repo.delete_series("SP500", "1m")
        assert repo.frame("SP500", "1m").empty


def test_a_bulk_write_into_an_empty_series_fills_the_cache_once_committed(
    session_factory, engine, cache_dir
):
    frame = candle_frame(BULK_MIN_ROWS * 3, seed=4)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("NEW", "1m", frame)
        assert _files(cache_dir) == []  # not before the commit
    assert len(_files(cache_dir)) == 1
    _bypass_the_version(engine)

    pd.testing.assert_frame_equal(_read(session_factory, "NEW"), frame, check_freq=False)

    with session_factory() as session:  # rolled back: no file for a version never committed
        CandleRepository(session).upsert("GONE", "1m", frame)
        session.rollback()
    assert len(_files(cache_dir)) == 1


def test_a_bulk_write_beside_stored_bars_does_not_fill_the_cache(session_factory, cache_dir):
    frame = candle_frame(BULK_MIN_ROWS * 3, seed=4)
    _store(session_factory, "SP500", frame.iloc[:10])
    _store(session_factory, "SP500", frame.iloc[10:])  # the batch is not the whole series
    assert _files(cache_dir) == []
    pd.testing.assert_frame_equal(_read(session_factory), frame, check_freq=False)
    assert len(_files(cache_dir)) == 1


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip a price", "bad magic", "empty", "swap with another series"],
)
def test_a_defective_cache_file_is_ignored_and_rebuilt(
    session_factory, engine, cache_dir, caplog, damage
):
    _store(session_factory, "SP500", FRAME)
    _store(session_factory, "OTHER", FRAME.assign(volume=1.0))
    _read(session_factory)
    _read(session_factory, "OTHER")
    cache = cache_for(engine.url)
    assert cache is not None
    path = cache.path("SP500", "1m", _version(session_factory, "SP500"))
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 8]
    elif damage == "flip a price":
        data[128 + 8 * len(FRAME) + 5] ^= 0xFF
    elif damage == "bad magic":
        data[0:8] = b"NOTBARS!"
    elif damage == "empty":
        data = bytearray()
    else:
        other = next(p for p in _files(cache_dir) if p != path)
        data = bytearray(other.read_bytes())
    cache._verified.clear()  # as a new process would: check the checksum again
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="database.repositories._candle_cache"):
        back = _read(session_factory)

    pd.testing.assert_frame_equal(back, FRAME, check_freq=False)
    assert "ignoring candle cache file" in caplog.text
    assert path.stat().st_size == 128 + 48 * len(FRAME)  # rebuilt
    _bypass_the_version(engine)
    pd.testing.assert_frame_equal(_read(session_factory), FRAME, check_freq=False)


def test_an_unwritable_cache_folder_only_costs_speed(
    session_factory, tmp_path, monkeypatch, caplog
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CANDLE_CACHE_DIR", str(blocker / "cache"))
    # a test before this one may have configured logging (dictConfig disables the loggers
    # that existed then): this test reads the cache's own warnings, whatever ran before
    cache_log = logging.getLogger("database.repositories._candle_cache")
    monkeypatch.setattr(cache_log, "disabled", False)
    monkeypatch.setattr(cache_log, "propagate", True)

    with caplog.at_level(logging.WARNING, logger="database.repositories._candle_cache"):
        _store(session_factory, "SP500", FRAME)
        for _ in range(3):
            pd.testing.assert_frame_equal(_read(session_factory), FRAME, check_freq=False)

    assert caplog.text.count("candle cache disabled for writing") == 1


def test_any_symbol_text_makes_a_safe_file_name(session_factory, cache_dir):
    symbol = "../../etc/passwd ∆ BTC/USDT\\x"
    _store(session_factory, symbol, FRAME.iloc[:100])
    pd.testing.assert_frame_equal(
        _read(session_factory, symbol), FRAME.iloc[:100], check_freq=False
    )
    (path,) = _files(cache_dir)
    assert path.parent == cache_dir
    assert all(c in "0123456789abcdef-." for c in path.name.removesuffix(".bars"))


def test_a_small_request_on_a_miss_does_not_read_the_whole_series(
    session_factory, engine, cache_dir
):
    _store(session_factory, "SP500", FRAME)
    for path in _files(cache_dir):  # the bulk write filled it; start from a miss
        path.unlink()
    pd.testing.assert_frame_equal(_read(session_factory, last=5), FRAME.iloc[-5:], check_freq=False)
    pd.testing.assert_frame_equal(
        _read(session_factory, start=T[1], end=T[3]), FRAME.iloc[1:4], check_freq=False
    )

    assert _files(cache_dir) == []  # nothing filled: the whole series was never read


def test_versions_are_not_written_by_reads(session_factory, cache_dir):
    _store(session_factory, "SP500", FRAME)
    before = _version(session_factory)
    for bounds in BOUNDS.values():
        _read(session_factory, **bounds)
    assert _version(session_factory) == before


def test_an_in_memory_database_has_no_cache(cache_dir):
    assert cache_for("sqlite://") is None
    assert cache_for("sqlite:///:memory:") is None
    assert cache_for("sqlite:////tmp/x.db") is not None


def test_the_cache_keeps_the_bars_written_not_the_callers_arrays(session_factory, cache_dir):
    bars = candle_frame(BULK_MIN_ROWS * 2, seed=6)
    values = bars.to_numpy().copy()
    frame = pd.DataFrame(values, index=bars.index, columns=bars.columns, copy=False)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("NEW", "1m", frame)
        values[:, 4] += 1.0  # the caller reuses its arrays before the commit

    pd.testing.assert_frame_equal(_read(session_factory, "NEW"), bars, check_freq=False)
