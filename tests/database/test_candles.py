"""CandleRepository on SQLite and PostgreSQL: upsert, range queries, validation, bulk."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.exc import IntegrityError

from database.records import SeriesInfo
from database.repositories import CandleRepository, candles
from database.repositories._candle_io import BULK_MIN_ROWS, _parse_pg_binary
from market.candles import CANDLE_COLUMNS
from market.timeframes import to_epoch_ms
from tests.database.builders import candle_frame


def assert_candle_contract(frame: pd.DataFrame) -> None:
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "ts"
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique


def test_upsert_then_frame_round_trips_exactly(session):
    frame = candle_frame(500)

    written = CandleRepository(session).upsert("SP500", "1m", frame)
    back = CandleRepository(session).frame("SP500", "1m")

    assert written == 500
    assert_candle_contract(back)
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_freq=False)


def test_upsert_is_idempotent_and_updates_changed_bars(session_factory):
    frame = candle_frame(300)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1m", frame)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1m", frame)  # the same bars again
    with session_factory() as session:
        assert CandleRepository(session).count("SP500", "1m") == 300

    changed = frame.iloc[250:].copy()
    changed["close"] = changed["low"]
    changed["volume"] += 7.0
    newer = candle_frame(20, start=str(frame.index[-1] + pd.Timedelta("1min")), seed=3)
    with session_factory.begin() as session:
        written = CandleRepository(session).upsert("SP500", "1m", pd.concat([changed, newer]))

    expected = pd.concat([frame.iloc[:250], changed, newer])
    with session_factory() as session:
        back = CandleRepository(session).frame("SP500", "1m")
    assert written == 70
    assert len(back) == 320
    pd.testing.assert_frame_equal(back, expected, check_freq=False)


def test_series_are_keyed_by_symbol_and_timeframe(session):
    repo = CandleRepository(session)
    repo.upsert("SP500", "1m", candle_frame(10, base=100))
    repo.upsert("SP500", "5m", candle_frame(4, freq="5min", base=200))
    repo.upsert("NASDAQ", "1m", candle_frame(6, base=300))

    assert repo.count("SP500", "1m") == 10
    assert repo.frame("SP500", "5m")["open"].iloc[0] == 200
    assert repo.frame("NASDAQ", "1m")["open"].iloc[0] == 300
    assert repo.series() == [
        SeriesInfo("NASDAQ", "1m", 6, *_span(candle_frame(6))),
        SeriesInfo("SP500", "1m", 10, *_span(candle_frame(10))),
        SeriesInfo("SP500", "5m", 4, *_span(candle_frame(4, freq="5min"))),
    ]
    # key lookups, not a count: the timeframes of one symbol, a bar in a window
    repo.upsert("SP500", "1h", candle_frame(2, freq="1h", base=400))
    assert repo.timeframes("SP500") == ["1h", "1m", "5m"]
    assert repo.timeframes("NASDAQ") == ["1m"]
    assert repo.timeframes("DAX") == []
    first, last = _span(candle_frame(6))
    assert repo.has_bars("NASDAQ", "1m")
    assert repo.has_bars("NASDAQ", "1m", start=last, end=last)
    assert not repo.has_bars("NASDAQ", "1m", start=last + pd.Timedelta(seconds=1))
    assert not repo.has_bars("NASDAQ", "1m", end=first - pd.Timedelta(seconds=1))
    assert not repo.has_bars("NASDAQ", "5m")


def _span(frame: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    return frame.index[0], frame.index[-1]


@pytest.fixture
def stored(session) -> tuple[CandleRepository, pd.DataFrame]:
    frame = candle_frame(100)  # 2024-01-01 00:00 .. 01:39, one bar a minute
    repo = CandleRepository(session)
    repo.upsert("SP500", "1m", frame)
    return repo, frame


def test_start_and_end_are_inclusive(stored):
    repo, frame = stored
    start, end = frame.index[10], frame.index[20]

    back = repo.frame("SP500", "1m", start=start, end=end)

    pd.testing.assert_frame_equal(back, frame.loc[start:end], check_freq=False)
    assert len(back) == 11
    assert repo.count("SP500", "1m", start=start, end=end) == 11


def test_after_is_exclusive(stored):
    repo, frame = stored

    back = repo.frame("SP500", "1m", after=frame.index[95])

    assert list(back.index) == list(frame.index[96:])


def test_last_keeps_the_most_recent_bars_in_ascending_order(stored):
    repo, frame = stored

    pd.testing.assert_frame_equal(
        repo.frame("SP500", "1m", last=5), frame.iloc[-5:], check_freq=False
    )
    pd.testing.assert_frame_equal(
        repo.frame("SP500", "1m", end=frame.index[49], last=3), frame.iloc[47:50], check_freq=False
    )
    assert len(repo.frame("SP500", "1m", last=1000)) == 100
    assert_candle_contract(repo.frame("SP500", "1m", last=0))
    assert repo.frame("SP500", "1m", last=0).empty


@pytest.mark.parametrize("last", [-1, 2.5, True])
def test_last_must_be_a_count(stored, last):
    repo, _ = stored
    with pytest.raises(ValueError, match="last="):
        repo.frame("SP500", "1m", last=last)


def test_times_in_other_zones_mean_the_same_instant(stored):
    repo, frame = stored
    new_york = timezone(timedelta(hours=-5))
    start = datetime(2023, 12, 31, 19, 10, tzinfo=new_york)  # 2024-01-01 00:10 UTC

    assert repo.frame("SP500", "1m", start=start).index[0] == frame.index[10]
    assert repo.frame("SP500", "1m", start="2024-01-01T00:10:00Z").index[0] == frame.index[10]
    assert (
        repo.frame("SP500", "1m", end=pd.Timestamp("2024-01-01 01:10", tz="Europe/Paris"))[
            "close"
        ].size
        == 11
    )


def test_sub_millisecond_bounds_do_not_widen_the_range(stored):
    repo, frame = stored
    just_after = frame.index[10] + pd.Timedelta(microseconds=1)

    assert repo.frame("SP500", "1m", start=just_after).index[0] == frame.index[11]
    assert repo.frame("SP500", "1m", end=just_after).index[-1] == frame.index[10]
    assert repo.frame("SP500", "1m", after=just_after).index[0] == frame.index[11]


@pytest.mark.parametrize("bound", ["start", "end", "after"])
def test_a_naive_bound_is_refused(stored, bound):
    repo, _ = stored
    with pytest.raises(ValueError, match=f"{bound}=.*naive"):
        repo.frame("SP500", "1m", **{bound: datetime(2024, 1, 1)})


def test_empty_series(session):
    repo = CandleRepository(session)

    assert repo.last_ts("SP500", "1m") is None
    assert repo.count("SP500", "1m") == 0
    assert repo.series() == []
    assert_candle_contract(repo.frame("SP500", "1m"))
    assert repo.upsert("SP500", "1m", candle_frame(0)) == 0


def test_last_ts_and_delete_series(stored):
    repo, frame = stored
    repo.upsert("SP500", "5m", candle_frame(3, freq="5min"))

    assert repo.last_ts("SP500", "1m") == frame.index[-1]
    assert repo.last_ts("SP500", "1m").tz is not None
    assert repo.delete_series("SP500", "1m") == 100
    assert repo.last_ts("SP500", "1m") is None
    assert repo.count("SP500", "5m") == 3


def _with(frame: pd.DataFrame, column: str, position: int, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame.iloc[position, frame.columns.get_loc(column)] = value
    return frame


def _defects() -> dict[str, tuple[pd.DataFrame, str]]:
    # overlaps the last 10 stored bars with other values: none of them may change either
    good = candle_frame(30, start="2024-01-01 01:30", seed=9)
    index = good.index
    return {
        "missing column": (good.drop(columns=["volume"]), "missing column.*volume"),
        "NaN close": (_with(good, "close", 12, np.nan), "'close' holds NaN.*2024-01-01 01:42"),
        "infinite volume": (_with(good, "volume", 3, np.inf), "'volume' holds NaN or infinity"),
        "naive index": (good.tz_localize(None), "tz-aware UTC"),
        "non-UTC index": (good.tz_convert("America/New_York"), "UTC, got tz=America/New_York"),
        "unsorted index": (good.iloc[[0, 2, 1, *range(3, 30)]], "not sorted"),
        "duplicate times": (good.iloc[[0, 1, 1, *range(2, 30)]], "duplicate"),
        "not a DatetimeIndex": (good.reset_index(drop=True), "DatetimeIndex"),
        "NaT in index": (good.set_axis(index.where(index != index[5]), axis=0), "NaT"),
        "high below low": (_with(good, "high", 7, good["low"].iloc[7] - 1), "high >= low"),
        "close above high": (_with(good, "close", 8, good["high"].iloc[8] + 1), "close <= high"),
        "negative volume": (_with(good, "volume", 9, -5.0), "volume >= 0"),
        "zero price": (_with(_with(good, "low", 4, 0.0), "open", 4, 0.0), "low > 0"),
        "text column": (good.astype({"open": object}).pipe(_with, "open", 2, "n/a"), "numeric"),
        "sub-millisecond time": (
            good.set_axis(index + pd.Timedelta(microseconds=5), axis=0),
            "sub-millisecond",
        ),
    }


@pytest.mark.parametrize("defect", list(_defects()))
def test_a_defective_frame_raises_before_anything_is_written(stored, defect):
    repo, frame = stored
    bad, message = _defects()[defect]

    with pytest.raises(ValueError, match=message):
        repo.upsert("SP500", "1m", bad)

    # same transaction, no rollback: the failed call itself wrote nothing
    assert repo.count("SP500", "1m") == 100
    pd.testing.assert_frame_equal(repo.frame("SP500", "1m"), frame, check_freq=False)


@pytest.mark.parametrize(("symbol", "timeframe"), [("", "1m"), ("SP500", "7m"), ("SP500", "")])
def test_a_bad_series_key_is_refused(session, symbol, timeframe):
    with pytest.raises(ValueError, match=r"symbol|timeframe"):
        CandleRepository(session).upsert(symbol, timeframe, candle_frame(3))
    assert CandleRepository(session).series() == []


# 100 bars: one statement per chunk of 20; BULK_MIN_ROWS + 500: PostgreSQL's COPY path
@pytest.mark.parametrize("bars", [100, BULK_MIN_ROWS + 500])
def test_a_database_error_midway_leaves_the_stored_series_intact(
    session_factory, monkeypatch, bars
):
    frame = candle_frame(bars)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1m", frame)

    # bypass the frame checks so the database itself refuses a bar of the third chunk
    corrupt = frame.assign(close=frame["close"] + 0.001)
    corrupt.iloc[45, corrupt.columns.get_loc("high")] = corrupt["low"].iloc[45] - 1
    monkeypatch.setattr(candles, "_candle_arrays", _unchecked)
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        CandleRepository(session, chunk_rows=20).upsert("SP500", "1m", corrupt)

    with session_factory() as session:
        pd.testing.assert_frame_equal(
            CandleRepository(session).frame("SP500", "1m"), frame, check_freq=False
        )


def _unchecked(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return to_epoch_ms(frame.index), {c: frame[c].to_numpy(np.float64) for c in CANDLE_COLUMNS}


def test_a_bulk_write_of_new_history_keeps_a_non_ascii_series_key(session_factory):
    # PostgreSQL copies new history straight into candles, the key's text in every row
    frame = candle_frame(BULK_MIN_ROWS + 7, seed=3)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("ÄPFEL·€", "1m", frame)
        CandleRepository(session).upsert("A", "1m", frame)

    with session_factory() as session:
        repo = CandleRepository(session)
        assert [(s.symbol, s.bars) for s in repo.series()] == [
            ("A", BULK_MIN_ROWS + 7),
            ("ÄPFEL·€", BULK_MIN_ROWS + 7),
        ]
        pd.testing.assert_frame_equal(repo.frame("ÄPFEL·€", "1m"), frame, check_freq=False)


def test_a_database_error_in_new_history_writes_nothing(session_factory, monkeypatch):
    frame = candle_frame(BULK_MIN_ROWS + 500)
    frame.iloc[-1, frame.columns.get_loc("high")] = frame["low"].iloc[-1] - 1
    monkeypatch.setattr(candles, "_candle_arrays", _unchecked)
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1m", frame)

    with session_factory() as session:
        assert CandleRepository(session).series() == []


def test_bulk_upsert_of_100k_bars(session_factory):
    frame = candle_frame(100_000, seed=1)
    with session_factory.begin() as session:
        assert CandleRepository(session).upsert("BTCUSD", "1m", frame) == 100_000
    changed = frame.assign(volume=frame["volume"] + 1)
    with session_factory.begin() as session:
        assert CandleRepository(session).upsert("BTCUSD", "1m", changed) == 100_000

    with session_factory() as session:
        repo = CandleRepository(session)
        assert repo.count("BTCUSD", "1m") == 100_000
        pd.testing.assert_frame_equal(repo.frame("BTCUSD", "1m"), changed, check_freq=False)
        pd.testing.assert_frame_equal(
            repo.frame("BTCUSD", "1m", last=10), changed.iloc[-10:], check_freq=False
        )


def test_bulk_upserts_of_two_series_in_one_transaction_read_back_before_the_commit(session):
    # the COPY path's temporary table is dropped after each upsert, so a second one can follow
    first, second = candle_frame(BULK_MIN_ROWS + 1), candle_frame(BULK_MIN_ROWS * 2, seed=5)
    repo = CandleRepository(session)
    repo.upsert("AAA", "1m", first)
    repo.upsert("BBB", "1m", second)
    repo.upsert("AAA", "1m", first.assign(volume=first["volume"] * 2))

    pd.testing.assert_frame_equal(
        repo.frame("AAA", "1m"), first.assign(volume=first["volume"] * 2), check_freq=False
    )
    pd.testing.assert_frame_equal(
        repo.frame("BBB", "1m", last=5), second.iloc[-5:], check_freq=False
    )


def test_small_chunks_write_every_bar(session):
    frame = candle_frame(53)
    assert CandleRepository(session, chunk_rows=7).upsert("SP500", "1m", frame) == 53
    pd.testing.assert_frame_equal(
        CandleRepository(session).frame("SP500", "1m"), frame, check_exact=True, check_freq=False
    )


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not a copy", "no PostgreSQL binary header"),
        (b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\x00\x06" + b"\xff\xff", "unexpected layout"),
        (
            b"PGCOPY\n\xff\r\n\x00"
            + bytes(8)
            + (b"\x00\x06" + b"\xff\xff\xff\xff" + bytes(8) + (b"\x00\x00\x00\x08" + bytes(8)) * 5)
            + b"\xff\xff",
            "NULL",
        ),
    ],
)
def test_the_binary_copy_parser_refuses_what_it_does_not_expect(payload, problem):
    with pytest.raises(ValueError, match=problem):
        _parse_pg_binary(memoryview(payload))


def test_the_binary_copy_parser_reads_big_endian_rows():
    fields = [(1700000000000).to_bytes(8, "big")]
    fields += [np.array([v], ">f8").tobytes() for v in (1, 2, 0.5, 1.5, 9)]
    row = b"\x00\x06" + b"".join(b"\x00\x00\x00\x08" + field for field in fields)
    bars = _parse_pg_binary(memoryview(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + row + b"\xff\xff"))
    assert bars.tolist() == [(1700000000000, 1.0, 2.0, 0.5, 1.5, 9.0)]
    assert bars.dtype["ts"] == np.dtype("<i8")


def test_a_writer_thread_and_reader_threads_work_side_by_side(session_factory):
    # the app's shape: one background writer appending bars, request threads reading charts
    frame = candle_frame(400)
    errors: list[BaseException] = []
    writer_done = threading.Event()
    reads: list[int] = []

    def write() -> None:
        try:
            for start in range(0, 400, 20):
                with session_factory.begin() as session:
                    CandleRepository(session).upsert("SP500", "1m", frame.iloc[start : start + 20])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            writer_done.set()

    def read() -> None:
        try:
            while not writer_done.is_set():
                with session_factory() as session:
                    bars = CandleRepository(session).frame("SP500", "1m", last=50)
                assert bars.index.is_monotonic_increasing
                reads.append(len(bars))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert reads
    with session_factory() as session:
        pd.testing.assert_frame_equal(
            CandleRepository(session).frame("SP500", "1m"), frame, check_freq=False
        )


def test_bounds_far_in_the_past_or_future(stored):
    repo, frame = stored

    back = repo.frame(
        "SP500",
        "1m",
        start=pd.Timestamp("1800-01-01", tz="UTC"),
        end=pd.Timestamp("9999-12-31", tz="UTC"),
    )

    assert len(back) == len(frame)


def test_bulk_writes_after_before_and_around_stored_bars(session_factory):
    frame = candle_frame(BULK_MIN_ROWS * 4, seed=9)
    middle = frame.iloc[2000:2010]
    for part in (middle, frame.iloc[2010:], frame.iloc[:2000]):  # alone, after, before
        with session_factory.begin() as session:
            CandleRepository(session).upsert("SP500", "1m", part)
    with session_factory() as session:
        pd.testing.assert_frame_equal(
            CandleRepository(session).frame("SP500", "1m"), frame, check_freq=False
        )

    # a batch whose span holds stored bars it does not carry merges around them
    around = frame.drop(middle.index).assign(volume=lambda f: f["volume"] + 1)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1m", around)

    with session_factory() as session:
        back = CandleRepository(session).frame("SP500", "1m")
    pd.testing.assert_frame_equal(back, pd.concat([around, middle]).sort_index(), check_freq=False)


def test_two_bulk_writers_of_one_new_series_both_succeed(session_factory):
    frame = candle_frame(BULK_MIN_ROWS * 3, seed=2)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(volume_add: float) -> None:
        try:
            start.wait()
            with session_factory.begin() as session:
                changed = frame.assign(volume=frame["volume"] + volume_add)
                CandleRepository(session).upsert("NEW", "1m", changed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in (0.0, 0.5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with session_factory() as session:
        back = CandleRepository(session).frame("NEW", "1m")
    assert len(back) == len(frame)
    # one writer's bars, whole: the later one merged over the earlier one
    offset = back["volume"].iloc[0] - frame["volume"].iloc[0]
    pd.testing.assert_frame_equal(
        back, frame.assign(volume=frame["volume"] + offset), check_freq=False
    )
