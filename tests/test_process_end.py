"""The end of a command's process (cli/process_end.py): engines' connections closed, then the
objects frozen for the interpreter's teardown; what a command stored is all there."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text

from database.session import dispose_engines, make_engine

ROOT = Path(__file__).resolve().parent.parent


def _sessions_named(url: str, name: str) -> int:
    watcher = make_engine(url)
    try:
        with watcher.connect() as c:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"
            return int(c.execute(text(query), {"n": name}).scalar_one())
    finally:
        watcher.dispose()


def test_every_engine_made_has_its_connections_closed(database_url, database_backend):
    name = f"end-{uuid.uuid4().hex[:12]}"
    args = {"connect_args": {"application_name": name}} if database_backend == "postgresql" else {}
    engines = [make_engine(database_url, **args) for _ in range(2)]
    for engine in engines:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        assert engine.pool.checkedin() == 1  # kept open by the pool
    if database_backend == "postgresql":
        assert _sessions_named(database_url, name) == 2
    dispose_engines()
    for engine in engines:
        assert engine.pool.checkedin() == 0
    if database_backend == "postgresql":  # the server saw both sessions end
        assert _sessions_named(database_url, name) == 0


def test_a_command_ends_with_its_database_closed_and_its_rows_kept(tmp_path):
    """SQLite deletes the write-ahead log when its last connection closes: after the command,
    none is left, and a new process reads every fill the import stored."""
    fills = tmp_path / "fills.csv"
    fills.write_text(
        "trade_id,symbol,side,price,volume,timestamp\n"
        + "".join(f"t{k},BTC,{'buy' if k % 2 else 'sell'},{100 + k},1,2024-01-01T00:0{k}:00Z\n"
                  for k in range(6))
    )  # fmt: skip
    env = {"STRATLENS_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "FEEDS": "none"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "app.py"), *args], env=env, capture_output=True,
            text=True, timeout=180, check=False,
        )  # fmt: skip

    imported = run("trades", "import", str(fills), "--format", "csv", "--account", "desk")
    assert imported.returncode == 0, imported.stderr
    database = tmp_path / "data" / "stratlens.db"
    assert database.exists()
    assert not Path(f"{database}-wal").exists()  # the last connection closed: log folded in
    listed = run("trades", "accounts")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:3] == ["desk", "6", "trades"]
