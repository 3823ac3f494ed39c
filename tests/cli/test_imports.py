"""Each command imports only what it needs (issue 11): the dashboard stack (dash, plotly, flask,
our dashboard/ and components/) never loads in a command-line process, not even one that
backtests, stores its run and caches its indicators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_STACK = ("dash", "plotly", "flask", "flask_caching", "dashboard", "components")

# runs app.py as its __main__ would, then prints the modules that were imported
PROBE = """
import json, runpy, sys
sys.argv = ["app.py", *json.loads(sys.argv[1])]
try:
    runpy.run_path("app.py", run_name="__main__")
except SystemExit as stop:
    code = stop.code or 0
else:
    code = 0
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def loaded(args: list[str], tmp_path: Path) -> set[str]:
    """The top-level packages the command imported."""
    return {name.split(".")[0] for name in modules_of(args, tmp_path)}


def modules_of(args: list[str], tmp_path: Path) -> set[str]:
    """Every module the command imported, on a SQLite database."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CANDLE_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.rsplit("MODULES ", 1)[1]
    return set(json.loads(line))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        [
            "backtest",
            "--symbol",
            "SP500",
            "--timeframe",
            "1d",
            "--strategy",
            "sma_crossover",
            "--json",
        ],
        ["indicator", "--symbol", "SP500", "--timeframe", "1d", "--name", "rsi"],
    ],
    ids=["help", "backtest", "indicator"],
)
def test_a_command_never_imports_the_dashboard_stack(args, tmp_path):
    modules = loaded(args, tmp_path)
    assert "cli" in modules  # the probe saw the command's own imports
    assert not modules & set(DASHBOARD_STACK), sorted(modules & set(DASHBOARD_STACK))
    assert "ccxt" not in modules  # an exchange feed imports it when it starts, never a command


def test_help_imports_neither_pandas_nor_the_database(tmp_path):
    modules = loaded(["--help"], tmp_path)
    assert not modules & {"pandas", "sqlalchemy", "numba"}, modules & {"pandas", "sqlalchemy"}


def test_a_backtest_on_sqlite_never_imports_postgresql_s_dialect(tmp_path):
    """The models name JSONB and a PostgreSQL partial index without importing that dialect
    (database.models.PortableJSON, PartialIndex): about a tenth of the command's imports.
    The first run migrates the new database (the migrations name PostgreSQL's types)."""
    args = ["backtest", "--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover"]
    assert "alembic" in modules_of(args, tmp_path)
    modules = modules_of(args, tmp_path)
    assert "alembic" not in modules
    assert "database.models" in modules
    assert "sqlalchemy.dialects.sqlite" in modules
    assert "sqlalchemy.dialects.postgresql" not in modules
