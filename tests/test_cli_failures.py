"""Every failure of the command line and of start-up is one clear line and an exit code, never
a traceback: databases that cannot be reached or written (issue 12, item 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import app
from config.settings import Settings
from database.session import make_engine
from services.database_setup import check_writable, prepare_database


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+psycopg2://postgres:secret@127.0.0.1:1/x", "Connection refused"),
        ("postgresql+psycopg2://postgres@127.0.0.1:99999/x", 'invalid port number: "99999"'),
        ("sqlite:////proc/stratlens.db", "unable to open database file"),
    ],
    ids=["refused", "bad-port", "unopenable-sqlite"],
)
def test_a_database_that_cannot_be_reached_is_one_line(monkeypatch, capsys, url, reason):
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    for command in (["db", "current"], ["db", "upgrade"], ["indicator", "--symbol", "SP500",
                    "--timeframe", "1d", "--name", "rsi"]):  # fmt: skip
        assert app.main(command) == 1, command
        line = _one_line(capsys.readouterr().err)
        assert line.startswith("database error (")
        assert reason in line
        assert "secret" not in line  # the password never reaches the terminal


@pytest.mark.postgres
def test_an_unknown_postgresql_database_is_one_line(monkeypatch, capsys, postgres_server):
    url = postgres_server.url.set(database="stratlens_no_such_database").render_as_string(
        hide_password=False
    )
    monkeypatch.setenv("DATABASE_URL", url)
    assert app.main(["db", "current"]) == 1
    assert 'database "stratlens_no_such_database" does not exist' in _one_line(
        capsys.readouterr().err
    )


def _make_read_only(path: Path) -> bool:
    """True when ``path`` could be made read-only for this process (root ignores modes, so it
    takes the immutable attribute; not every file system has it)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)  # no journal file beside it either
        return True
    chattr = shutil.which("chattr")
    return bool(chattr) and subprocess.run([chattr, "+i", str(path)], check=False).returncode == 0


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False)
    else:
        path.parent.chmod(0o755)
        path.chmod(0o644)


def test_a_read_only_database_stops_the_server_at_start_with_one_line(
    monkeypatch, capsys, tmp_path
):
    folder = tmp_path / "db"
    folder.mkdir()
    url = f"sqlite:///{folder / 'stratlens.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    prepare_database(Settings.from_env()).dispose()  # migrated and seeded: only writes fail
    if not _make_read_only(folder / "stratlens.db"):
        pytest.skip("this file system cannot make a file read-only for root")
    try:
        engine = make_engine(url)
        try:
            with pytest.raises(Exception, match="readonly database"):
                check_writable(engine)
        finally:
            engine.dispose()
        assert app.main(["serve", "--port", "1"]) == 1  # refused before it binds
        assert "attempt to write a readonly database" in _one_line(capsys.readouterr().err)
    finally:
        _make_writable(folder / "stratlens.db")


def test_a_writable_database_passes_the_probe_and_keeps_its_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'stratlens.db'}"
    from database import migrate

    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        check_writable(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_log_lines_are_bounded():
    import logging

    from cli import MAX_LOG_LINE, BoundedFormatter

    formatter = BoundedFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "body %s", ("y" * 5_000_000,), None)
    text = formatter.format(record)
    assert len(text) < MAX_LOG_LINE + 100
    assert text.endswith("characters cut]")
    short = logging.LogRecord("x", logging.INFO, __file__, 1, "fine", (), None)
    assert formatter.format(short) == "INFO fine"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["db", "retention", "--days", "99999999999"], "from 0 to 100000 days"),
        (["db", "retention", "--days", "-3"], "from 0 to 100000 days"),
        (["metrics", "x.csv", "--risk-free", "-2"], "from -0.5 to 1"),
        (["metrics", "x.csv", "--risk-free", "nan"], "from -0.5 to 1"),
        (["metrics", "x.csv", "--risk-free", "inf"], "from -0.5 to 1"),
        (
            [
                "sweep",
                "--symbol",
                "S",
                "--timeframe",
                "1d",
                "--strategy",
                "sma_crossover",
                "--workers",
                "-3",
            ],
            "from 0 to 256",
        ),
        (["serve", "--port", "99999"], "from 1 to 65535"),
        (
            [
                "indicator",
                "--symbol",
                "SP500",
                "--timeframe",
                "1d",
                "--name",
                "rsi",
                "--start",
                "2020-01-01",
                "--end",
                "2019-01-01",
            ],
            "--start 2020-01-01",
        ),
        (
            [
                "backtest",
                "--symbol",
                "SP500",
                "--timeframe",
                "1d",
                "--strategy",
                "sma_crossover",
                "--start",
                "2020-01-01",
                "--end",
                "2019-01-01",
            ],
            "is after --end 2019-01-01",
        ),
        (["backtest", "--symbol", "SP500"], "required"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value[:2]),
)
def test_bad_arguments_are_one_line_and_exit_2(monkeypatch, capsys, tmp_path, argv, expected):
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        app.main(argv)
    assert exited.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert expected in line
    assert line.startswith("app.py")
    assert list(tmp_path.iterdir()) == []  # refused before any work: not even a database


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--metric", "Sharp"], "--metric 'Sharp' is not a numeric metric; did you mean 'Sharpe"),
        (["--metric", "Start"], "--metric 'Start' is not a numeric metric"),
        (["--symbol", "NOPE"], "NOPE is not stored (stored symbols: DEMO, NASDAQ, SP500)"),
        (["--start", "1990-01-01", "--end", "1991-01-01"], "no 1d candles of SP500 in this window"),
        (["--timeframe", "1h"], "SP500 is stored in 1d and cannot be resampled to 1h"),
    ],
    ids=["metric-typo", "metric-not-numeric", "unknown-symbol", "empty-window", "finer-timeframe"],
)
def test_a_sweep_is_checked_before_any_run(monkeypatch, capsys, tmp_path, extra, expected):
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    argv = ["sweep", "--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover",
            "--grid", "fast=5,10", "--workers", "0", *extra]  # fmt: skip
    assert app.main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == f"sweep: {expected}" or line.startswith(f"sweep: {expected}")
    from database.repositories import StrategyRunRepository
    from database.session import make_session_factory

    engine = make_engine(f"sqlite:///{tmp_path / 'stratlens.db'}")
    try:
        with make_session_factory(engine)() as session:
            assert StrategyRunRepository(session).list() == []  # no run, not even a failed one
    finally:
        engine.dispose()
