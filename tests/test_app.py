"""The command line: import, db upgrade, and start-up refusing bad configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import app
from database.repositories import CandleRepository
from database.session import make_engine, make_session_factory

ROOT = Path(__file__).resolve().parent.parent
GOOD = """timestamp,open,high,low,close,volume
2024-01-02 00:00,100,101,99,100.5,10
2024-01-02 00:01,100.5,102,100,101.5,12
2024-01-02 00:02,101.5,101.8,100.9,101,8
"""
BAD_HIGH = """timestamp,open,high,low,close,volume
2024-01-02 00:00,200,201,199,200.5,10
2024-01-02 00:01,200.5,199,198,199.5,12
2024-01-02 00:02,199.5,200,199,199.8,8
"""


@pytest.fixture
def env(monkeypatch, database_url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return database_url


def stored(database_url: str, symbol: str) -> pd.DataFrame:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return CandleRepository(session).frame(symbol, "1m")
    finally:
        engine.dispose()


def test_import_stores_a_valid_file_and_is_idempotent(env, tmp_path, capsys):
    path = tmp_path / "bars.csv"
    path.write_text(GOOD)
    args = ["import", str(path), "--symbol", "ABC", "--timeframe", "1m"]
    assert app.main(args) == 0
    assert "imported 3 bars of ABC 1m" in capsys.readouterr().out
    assert app.main(args) == 0
    bars = stored(env, "ABC")
    assert len(bars) == 3
    assert bars["close"].tolist() == [100.5, 101.5, 101.0]
    assert str(bars.index.tz) == "UTC"


def test_a_rejected_file_writes_nothing_and_names_file_line_and_column(env, tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text(BAD_HIGH)
    assert app.main(["import", str(good), "--symbol", "ABC", "--timeframe", "1m"]) == 0
    before = stored(env, "ABC")
    # same timestamps, other prices: a rejected file must not overwrite what is stored
    assert app.main(["import", str(bad), "--symbol", "ABC", "--timeframe", "1m"]) == 1
    err = capsys.readouterr().err
    assert "import rejected, nothing written" in err
    assert "bad.csv, line 3, column 'high'" in err
    pd.testing.assert_frame_equal(stored(env, "ABC"), before)


def test_skip_invalid_stores_the_valid_rows_and_reports_every_rejected_one(env, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_HIGH)
    args = ["import", str(bad), "--symbol", "XYZ", "--timeframe", "1m", "--skip-invalid"]
    assert app.main(args) == 0
    out, err = capsys.readouterr()
    assert "imported 2 bars of XYZ 1m" in out
    assert "skipped 1 invalid rows" in out
    assert "skipped: bad.csv, line 3, column 'high'" in err
    assert len(stored(env, "XYZ")) == 2


def test_an_unreadable_file_is_rejected_by_name(env, tmp_path, capsys):
    path = tmp_path / "notes.csv"
    path.write_bytes(b"\x00\x01\x02 not a table")
    assert app.main(["import", str(path), "--symbol", "ABC", "--timeframe", "1m"]) == 1
    assert "notes.csv" in capsys.readouterr().err


def test_invalid_configuration_stops_start_up_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("PORT", "eighty")
    assert app.main(["serve"]) == 2
    assert "configuration error: PORT='eighty' is invalid: expected an integer" in (
        capsys.readouterr().err
    )


def test_a_feed_for_a_symbol_not_stored_stops_start_up(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FEEDS", "SP500:replay,TSLA:random_walk")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    assert app.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "FEEDS=" in err
    assert "TSLA is not stored" in err


def test_db_upgrade_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "db", "upgrade"],
        env={"STRATLENS_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database at revision ")
    assert (tmp_path / "stratlens.db").exists()
