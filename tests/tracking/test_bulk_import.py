"""A CSV of fills recorded a column at a time (tracking.bulk_import) stores the rows the
tracker stores for the same file (SQLite and PostgreSQL): the same columns, context JSON,
labels, pnl and row order, over several symbols (bars read at once, bars fed one at a time,
fills before the first bar, a symbol without bars), both sides, partial closes and flips,
ties in time; the account then goes on through the tracker as if it had recorded them."""

from __future__ import annotations

import logging

import numpy as np
import orjson
import pandas as pd
import pytest
from sqlalchemy import text

from database.repositories._market_bars import bar_parts
from database.repositories._trade_context import bar_refs, context_of
from database.repositories.candles import CandleRepository
from market.sample_data import generate_random_walk
from services.tracking import TrackingService
from tracking.importers import TradeImportError

T0 = pd.Timestamp("2024-01-02", tz="UTC")
COLUMNS = (
    "trade_id, strategy_id, run_id, symbol, side, price, volume, commission, execution_time,"
    " market_context, labels, pnl, cumulative_pnl, source, order_id"
)


def _store_bars(session_factory) -> None:
    with session_factory.begin() as session:
        repo = CandleRepository(session)
        # many bars: a batch over them reads them at once (FrameBars)
        repo.upsert("RW1", "1m", generate_random_walk("RW1", "1m", T0, 9000, seed=1))
        # few: fed one at a time after the warm-up
        repo.upsert("RW2", "5m", generate_random_walk("RW2", "5m", T0, 900, seed=2))


def _fills_csv(
    path, n: int, seed: int, start_minute: int = 0, *, iso: bool = False, ordered: bool = False
):
    rng = np.random.default_rng(seed)
    symbols = np.array(["RW1", "RW2", "NOBARS"])
    minutes = np.sort(rng.integers(start_minute, start_minute + 8000, size=n))
    position: dict[str, float] = {}
    rows = []
    for k, minute in enumerate(minutes.tolist()):
        symbol = str(symbols[rng.integers(0, 3)])
        held = position.get(symbol, 0.0)
        side = "buy" if rng.random() < 0.5 - 0.3 * np.sign(held) else "sell"
        volume = float(rng.integers(1, 6)) / 2
        position[symbol] = held + (volume if side == "buy" else -volume)
        when = T0 + pd.Timedelta(minutes=minute) - pd.Timedelta(hours=3)  # some before bars
        when += pd.Timedelta(milliseconds=int(rng.integers(0, 3)) * 250)
        stamp = when.isoformat() if iso else str(when.value // 1_000_000)
        rows.append({
            "trade_id": f"t{seed}-{k}", "timestamp": stamp, "symbol": symbol,
            "side": side.upper() if k % 7 == 0 else side,
            "price": round(100 * (1 + rng.normal(0, 0.01)), 4), "volume": volume,
            "commission": "" if k % 5 == 0 else round(float(rng.random()), 3),
            "strategy_id": "" if k % 4 == 0 else f"st{k % 3}",
            "order_id": "" if k % 3 else f"o{k // 2}",
        })  # fmt: skip
    if ordered:  # in time order in the file (the milliseconds above may step back)
        rows.sort(key=lambda row: pd.Timestamp(row["timestamp"]) if iso
                  else int(row["timestamp"]))  # fmt: skip
    else:
        rows.reverse()  # not in time order in the file
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _rows(session_factory, account: str) -> list[tuple]:
    with session_factory() as session:
        found = session.execute(
            text(f"SELECT {COLUMNS} FROM trades WHERE account_id = :a ORDER BY id"), {"a": account}
        ).all()
        out = []
        for row in found:
            values = list(row)
            for k in (9, 10):  # JSON: text on SQLite, jsonb on PostgreSQL
                if isinstance(values[k], str):
                    values[k] = orjson.loads(values[k])
            out.append(values)
        # the contexts whole: their bars' parts (stored once in market_bars) read back
        bars = bar_parts(session, bar_refs(v[9] for v in out))
    return [(*v[:9], context_of(v[9], bars), *v[10:]) for v in out]


@pytest.mark.parametrize("iso", [False, True])
def test_column_wise_import_stores_the_trackers_rows(session_factory, tmp_path, iso):
    _store_bars(session_factory)
    first = _fills_csv(tmp_path / "fills.csv", 1500, seed=7, iso=iso)
    report = TrackingService(session_factory).import_file(first, "csv", "cols")
    record = TrackingService(session_factory).import_file(first, "csv", "recs", columns=False)
    assert (report.read, report.stored, report.already_stored) == (1500, 1500, 0)
    assert report.summary == record.summary
    cols, recs = _rows(session_factory, "cols"), _rows(session_factory, "recs")
    assert len(cols) == 1500
    assert cols == recs
    labelled = [r for r in cols if r[10]]
    assert labelled
    assert any(r[9].get("atr") is not None for r in cols)
    assert {r[3] for r in cols} == {"RW1", "RW2", "NOBARS"}


def test_the_account_goes_on_through_the_tracker(session_factory, tmp_path):
    _store_bars(session_factory)
    first = _fills_csv(tmp_path / "first.csv", 600, seed=3)
    more = _fills_csv(tmp_path / "more.csv", 300, seed=4, start_minute=8100)
    cols, recs = TrackingService(session_factory), TrackingService(session_factory)
    cols.import_file(first, "csv", "cols")
    recs.import_file(first, "csv", "recs", columns=False)
    # the same file again: nothing new; then more trades continuing the positions
    again = cols.import_file(first, "csv", "cols")
    assert (again.stored, again.already_stored) == (0, 600)
    assert cols.import_file(more, "csv", "cols").stored == 300
    recs.import_file(more, "csv", "recs", columns=False)
    assert _rows(session_factory, "cols") == _rows(session_factory, "recs")
    seen, wanted = cols.live("cols"), recs.live("recs")
    for key in ("fills", "trade_summary", "labels", "attribution"):
        assert seen[key] == wanted[key]


def test_a_file_with_a_problem_stores_nothing(session_factory, tmp_path):
    path = _fills_csv(tmp_path / "bad.csv", 50, seed=5)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[3, "price"] = "abc"
    frame.to_csv(path, index=False)
    with pytest.raises(TradeImportError, match=r"row 4, column 'price': 'abc' is not a number"):
        TrackingService(session_factory).import_file(path, "csv", "cols")
    assert _rows(session_factory, "cols") == []


def test_the_trailing_medians_are_the_sorted_windows():
    from analytics.label_config import load_label_config
    from analytics.market_context import SortedWindow
    from tracking.bulk_labels import _medians

    config = load_label_config()
    entries = config.entry_sizes
    rng = np.random.default_rng(11)
    for trial in range(60):
        n = int(rng.integers(1, 400))
        opened = np.where(rng.random(n) < 0.6, rng.integers(1, 4, n) / 2, 0.0)
        price = np.round(rng.lognormal(4, 1 + trial % 3, n), 2 + trial % 4)
        window, wanted = SortedWindow(entries.window), np.full(n, np.nan)
        for j in np.flatnonzero(opened > 0).tolist():
            if len(window) >= entries.min_history:
                wanted[j] = window.median()
            window.push(float(opened[j]) * float(price[j]))
        assert np.array_equal(_medians(config, opened, price), wanted, equal_nan=True)


def test_the_stripped_spaces_are_those_of_str_strip():
    import sys

    from tracking.importers.csv_arrow import SPACES

    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == SPACES


def _both(session_factory, path, **kwargs):
    """Import ``path`` into "cols" column-wise and into "recs" by the tracker: each one's
    report, or the error it raised (its text with the account's name made alike)."""
    out = []
    for account, columns in (("cols", True), ("recs", False)):
        try:
            report = TrackingService(session_factory).import_file(
                path, "csv", account, columns=columns, **kwargs
            )
            out.append((report.read, report.stored, report.already_stored, report.summary))
        except ValueError as exc:
            out.append((type(exc).__name__, str(exc).replace(repr(account), "ACCOUNT")))
    return out


def test_stored_trades_are_left_out_or_refused_as_the_tracker_does(session_factory, tmp_path):
    _store_bars(session_factory)
    first = _fills_csv(tmp_path / "first.csv", 400, seed=8)
    _both(session_factory, first)
    frame = pd.read_csv(first, dtype=str, keep_default_na=False)
    later = pd.read_csv(_fills_csv(tmp_path / "later.csv", 200, seed=9, start_minute=8100),
                        dtype=str, keep_default_na=False)  # fmt: skip
    # some stored again (the same values) and new ones after them: the new ones stored
    pd.concat([frame.iloc[::3], later]).to_csv(tmp_path / "mixed.csv", index=False)
    cols, recs = _both(session_factory, tmp_path / "mixed.csv")
    assert cols == recs
    assert cols[1:3] == (200, len(frame.iloc[::3]))
    assert _rows(session_factory, "cols") == _rows(session_factory, "recs")
    # a stored trade with another price: refused, naming it, nothing written
    changed = later.copy()
    changed.loc[5, "price"] = "123.5"
    changed.to_csv(tmp_path / "changed.csv", index=False)
    cols, recs = _both(session_factory, tmp_path / "changed.csv")
    assert cols == recs
    assert cols[0] == "ConflictingTradeError"
    # a new trade older than the account's last of its symbol: refused
    older = later.iloc[:1].copy()
    older["trade_id"] = "new-but-old"
    older["timestamp"] = frame["timestamp"].iloc[-1]
    older["symbol"] = "RW1"
    older.to_csv(tmp_path / "older.csv", index=False)
    cols, recs = _both(session_factory, tmp_path / "older.csv")
    assert cols == recs
    assert cols[0] == "OutOfOrderTradeError"
    assert _rows(session_factory, "cols") == _rows(session_factory, "recs")


@pytest.mark.parametrize("differ", [False, True])
def test_the_head_written_while_the_rest_is_made_stores_the_same_rows(
    session_factory, tmp_path, monkeypatch, caplog, differ
):
    """A large first import writes its head while a thread makes the whole file's columns:
    the rows are the tracker's. Were the head ever to differ from the whole's first rows,
    it is rolled back to a savepoint and every row written from the whole (logged)."""
    from tracking import bulk_import

    monkeypatch.setattr(bulk_import, "PIPELINED_ROWS", 100)
    monkeypatch.setattr(bulk_import, "HEAD_SHARE", 4)
    made = []
    real = bulk_import._columns
    monkeypatch.setattr(bulk_import, "_columns",
                        lambda *a: made.append(len(a[1].trade_ids)) or real(*a))  # fmt: skip
    if differ:
        monkeypatch.setattr(bulk_import, "_same_rows", lambda *a: False)
    caplog.set_level(logging.INFO, logger="tracking.bulk_import")
    _store_bars(session_factory)
    path = _fills_csv(tmp_path / "fills.csv", 1200, seed=11)
    report = TrackingService(session_factory).import_file(path, "csv", "cols")
    TrackingService(session_factory).import_file(path, "csv", "recs", columns=False)
    assert sorted(made) == [300, 1200]  # the head (a quarter) and the whole
    assert (report.stored, report.already_stored) == (1200, 0)
    cols = _rows(session_factory, "cols")
    assert len(cols) == 1200
    assert cols == _rows(session_factory, "recs")
    assert any(r[10] for r in cols)
    assert ("differ from the whole" in caplog.text) is differ


def _streamed(monkeypatch) -> list[int]:
    """A file of 100 rows or more read with a head of its first quarter (csv_fills); the
    sizes of the tables whose columns bulk_import makes, in order."""
    from tracking import bulk_import
    from tracking.importers import csv_fills

    monkeypatch.setattr(csv_fills, "HEAD_FROM_ROWS", 100)
    monkeypatch.setattr(csv_fills, "HEAD_SHARE", 4)
    made: list[int] = []
    real = bulk_import._columns
    monkeypatch.setattr(bulk_import, "_columns",
                        lambda *a: made.append(len(a[1].trade_ids)) or real(*a))  # fmt: skip
    return made


@pytest.mark.parametrize("older", [False, True])
def test_a_head_read_first_is_stored_while_the_rest_is_read(
    session_factory, tmp_path, monkeypatch, caplog, older
):
    """A file in time order: its first quarter is checked and stored while the rest is read
    and checked, the rows are the tracker's. ``older``: a row of the head moved to the end
    of the file (the whole's first rows are not the head's): the head is rolled back to its
    savepoint and every row written from the whole."""
    made = _streamed(monkeypatch)
    caplog.set_level(logging.INFO, logger="tracking.bulk_import")
    _store_bars(session_factory)
    path = _fills_csv(tmp_path / "fills.csv", 1200, seed=12, ordered=True)
    if older:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        pd.concat([frame.drop(index=10), frame.iloc[[10]]]).to_csv(path, index=False)
    report = TrackingService(session_factory).import_file(path, "csv", "cols")
    TrackingService(session_factory).import_file(path, "csv", "recs", columns=False)
    assert sorted(made) == [300, 1200]  # the head and the whole
    assert (report.read, report.stored, report.already_stored) == (1200, 1200, 0)
    cols = _rows(session_factory, "cols")
    assert len(cols) == 1200
    assert cols == _rows(session_factory, "recs")
    assert ("differ from the whole" in caplog.text) is older


@pytest.mark.parametrize("problem", ["price", "trade_id"])
def test_a_problem_past_the_stored_head_stores_nothing(
    session_factory, tmp_path, monkeypatch, problem
):
    """The head is stored before the rest is checked: a bad cell (or a repeated trade id)
    past it rolls it back, and the careful reading names the row and column."""
    made = _streamed(monkeypatch)
    path = _fills_csv(tmp_path / "bad.csv", 1200, seed=13, ordered=True)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if problem == "price":
        frame.loc[1099, "price"] = "abc"
        match = r"row 1100, column 'price': 'abc' is not a number"
    else:
        frame.loc[1099, "trade_id"] = frame.loc[5, "trade_id"]
        match = r"row 1100, column 'trade_id': '.*' repeats row 6"
    frame.to_csv(path, index=False)
    with pytest.raises(TradeImportError, match=match):
        TrackingService(session_factory).import_file(path, "csv", "cols")
    assert made == [300]  # the head's columns were made (and written)
    assert _rows(session_factory, "cols") == []
    again = TrackingService(session_factory).import_file(
        _fills_csv(tmp_path / "good.csv", 1200, seed=13, ordered=True), "csv", "cols"
    )
    assert again.stored == 1200  # nothing of the first was kept
