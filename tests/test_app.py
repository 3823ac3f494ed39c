"""The command line (import, indicator, db upgrade), start-up refusing bad configuration, and
the debug view."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

import app
from analytics.metrics import PRESETS
from config.choices import METRIC_PRESETS
from config.settings import Settings
from dashboard.server import create_app
from database.repositories import CandleRepository, StrategyRepository
from database.session import make_engine, make_session_factory
from indicators import request
from market.resample import resample
from market.sample_data import load_sample
from tests.database.builders import signal

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


def test_help_loads_neither_the_dashboard_nor_pandas():
    """`app.py --help` stays fast: each command imports its heavy modules when it runs."""
    script = (
        "import sys, app\n"
        "try:\n    app.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('dash', 'dashboard', 'pandas', 'numpy', 'sqlalchemy')\n"
        "print([name for name in heavy if name in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"


def test_the_command_line_offers_every_metrics_preset():
    assert sorted(METRIC_PRESETS) == sorted(PRESETS)


def run_indicator(capsys, *args: str) -> tuple[int, pd.DataFrame | None, str]:
    code = app.main(["indicator", *args])
    out, err = capsys.readouterr()
    if code != 0:
        return code, None, err
    table = pd.read_csv(io.StringIO(out), index_col="timestamp", parse_dates=["timestamp"])
    return code, table, err


@pytest.fixture
def sample_env(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("STRATLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return tmp_path


def test_indicator_prints_the_series_as_csv_equal_to_talib(sample_env, capsys):
    code, table, _ = run_indicator(
        capsys, "--symbol", "SP500", "--timeframe", "1d", "--name", "macd", "--set", "fast=8"
    )
    assert code == 0
    assert list(table.columns) == ["macd", "signal", "hist"]
    sp500 = load_sample("SP500")
    expected = talib.MACD(sp500["close"].to_numpy(), 8, 26, 9)
    assert table.index[0] == sp500.index[0]
    assert len(table) == len(sp500)
    for column, values in zip(table.columns, expected, strict=True):
        np.testing.assert_allclose(table[column].to_numpy(), values, rtol=1e-12, equal_nan=True)


def test_indicator_on_a_resampled_timeframe_and_a_row_range(sample_env, capsys):
    code, table, _ = run_indicator(
        capsys, "--symbol", "SP500", "--timeframe", "1w", "--name", "rsi",
        "--set", "timeperiod=10", "--start", "2018-06-01", "--end", "2018-06-30",
    )  # fmt: skip
    assert code == 0
    weekly = resample(load_sample("SP500"), "1d", "1w")
    expected = pd.Series(talib.RSI(weekly["close"].to_numpy(), 10), index=weekly.index)
    expected = expected.loc["2018-06-01":"2018-06-30"]
    assert list(table.index) == list(expected.index)  # Mondays of June 2018
    np.testing.assert_allclose(table["rsi"].to_numpy(), expected.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "rsj"], "unknown indicator 'rsj' (did you mean 'rsi'?)"),
        (["--name", "rsi", "--set", "timeperiod=1"], "timeperiod=1 is out of range"),
        (["--name", "rsi", "--set", "period=3"], "did you mean 'timeperiod'?"),
        (["--name", "rsi", "--set", "timeperiod"], "expected PARAM=VALUE"),
    ],
)
def test_indicator_errors_name_what_is_wrong(sample_env, capsys, args, message):
    code, _, err = run_indicator(capsys, "--symbol", "SP500", "--timeframe", "1d", *args)
    assert code == 2
    assert message in err


def test_indicator_on_a_timeframe_that_cannot_be_derived(sample_env, capsys):
    code, _, err = run_indicator(capsys, "--symbol", "SP500", "--timeframe", "1h", "--name", "rsi")
    assert code == 2
    assert "SP500 is stored in 1d: 1h is neither stored nor resampled from those" in err


def test_debug_stats_shows_cache_counters_and_feeds(sample_env):
    settings = Settings.from_env(
        {"STRATLENS_DATA_DIR": str(sample_env), "FEEDS": "SP500:replay", "DEBUG_STATS": "1"}
    )
    dash_app = create_app(settings, start_feeds=False)
    services = dash_app.server.extensions["stratlens"]
    try:
        services.integrator.frame("SP500", "1d", requests=[request("rsi")], last=50)
        services.integrator.frame("SP500", "1d", requests=[request("rsi")], last=50)
        stats = dash_app.server.test_client().get("/debug/stats").get_json()
    finally:
        services.close()
    assert stats["indicators"]["computations"] == 1
    assert stats["indicators"]["hits"] == 1
    assert stats["chart_cache"]["backend"] == "simple"
    assert {f["symbol"]: f["feed"] for f in stats["feeds"]} == {
        "SP500": "replay",
        "NASDAQ": "none",
        "DEMO": "none",
    }


def test_strategy_commands_manage_user_configs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("STRATEGIES_DIR", str(tmp_path / "mine"))
    template = Path(app.__file__).parent / "config/strategies/templates/ema_crossover.json"
    assert app.main(["strategy", "import", str(template)]) == 0
    assert app.main(["strategy", "list"]) == 0
    out = capsys.readouterr().out
    assert "EMA crossover: ema_crossover(fast=12, slow=26, direction=long)" in out
    assert app.main(["strategy", "import", str(template)]) == 2  # exists: --replace to overwrite
    assert "exists" in capsys.readouterr().err
    assert app.main(["strategy", "export", "EMA crossover", str(tmp_path / "out.json")]) == 0
    assert app.main(["strategy", "delete", "EMA crossover"]) == 0
    assert app.main(["strategy", "list"]) == 0
    assert capsys.readouterr().out.strip().endswith("deleted 'EMA crossover'")


def test_strategy_validate_lists_every_problem(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"strategy": "rsi_reversion", "name": "r", "params": {"period": 1, "oversold": "low"}}'
    )
    assert app.main(["strategy", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: 2 problem(s)" in err
    assert "params.period: 1 is invalid" in err
    assert "params.oversold: 'low' is invalid: expected a value of type number" in err


def test_signals_runs_a_strategy_stores_the_run_and_retention_keeps_live_records(
    monkeypatch, database_url, tmp_path, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    args = ["--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover"]
    assert app.main(["signals", *args, "--set", "fast=10", "--set", "slow=30"]) == 0
    out, err = capsys.readouterr()
    rows = pd.read_csv(io.StringIO(out))
    assert list(rows.columns) == ["timestamp", "signal_type", "price", "confidence"]
    # pandas' rolling means give the same crossings (88 entries, the first on 1999-02-25)
    assert (rows["signal_type"] == "entry_long").sum() == 88
    assert rows["timestamp"].iloc[0] == "1999-02-25T00:00:00Z"
    assert "stored as run" in err
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            repo = StrategyRepository(session)
            assert repo.signals.count(strategy_name="sma_crossover") == len(rows)
            live = repo.runs.create("sma_crossover", {}, "SP500", "1d", "live")
            repo.signals.add_many([signal(strategy_name="sma_crossover", run_id=live.id)])
        assert app.main(["db", "retention", "--days", "0"]) == 0
        assert f"deleted {len(rows)} signals and 1 backtest runs" in capsys.readouterr().out
        with sessions() as session:
            repo = StrategyRepository(session)
            assert repo.signals.count(strategy_name="sma_crossover") == 1  # the live one
            assert repo.runs.get(live.id) is not None
    finally:
        engine.dispose()


def test_signals_refuses_what_cannot_run(sample_env, capsys):
    base = ["signals", "--symbol", "SP500", "--timeframe"]
    assert app.main([*base, "1d", "--strategy", "ema_crosover"]) == 2
    assert "did you mean 'ema_crossover'" in capsys.readouterr().err
    assert app.main([*base, "1d", "--strategy", "ema_crossover", "--set", "fast=40"]) == 2
    assert "fast=40 is not below slow" in capsys.readouterr().err
    assert app.main([*base, "1d", "--user", "nothing"]) == 2
    assert "no user strategy named 'nothing'" in capsys.readouterr().err


def test_backtest_prints_backtesting_py_statistics_and_trades_and_stores_the_run(
    sample_env, capsys
):
    args = ["backtest", "--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover"]
    assert app.main([*args, "--set", "direction=both", "--commission", "0.001", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["# Trades"] == len(result["trades"]) > 100
    for name in ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Win Rate [%]", "SQN"):
        assert isinstance(result[name], float), name
    trades = pd.DataFrame(result["trades"])
    equity_final = 10_000 + trades["pnl"].sum()
    assert result["Equity Final [$]"] == pytest.approx(equity_final, rel=1e-9)
    assert (trades["commission"] > 0).all()
    assert set(trades["side"]) == {"long", "short"}
    assert isinstance(result["run_id"], int)


def test_backtest_refuses_bad_parameters(sample_env, capsys):
    args = ["backtest", "--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover"]
    assert app.main([*args, "--set", "fast=50"]) == 2
    assert "fast=50 is not below slow" in capsys.readouterr().err
    assert app.main([*args, "--cash", "-5"]) == 2
    assert "cash=-5.0 is invalid" in capsys.readouterr().err


def test_a_sweep_stores_its_grid_points_without_results_unless_asked(sample_env, capsys):
    """Its own process and a worker (--workers 2) run the grid; each point is stored as a run
    with its config and window, its trades and equity only with --keep-results."""
    from database.repositories import StrategyRepository
    from database.session import make_engine, make_session_factory

    args = ["sweep", "--symbol", "SP500", "--symbol", "NASDAQ", "--timeframe", "1d",
            "--strategy", "sma_crossover", "--grid", "fast=5,10", "--grid", "slow=30",
            "--workers", "2"]  # fmt: skip
    assert app.main(args) == 0
    assert app.main([*args, "--keep-results"]) == 0
    assert capsys.readouterr().err.count("4 of 4 runs succeeded") == 2

    engine = make_engine(f"sqlite:///{sample_env / 'stratlens.db'}")
    try:
        with make_session_factory(engine)() as session:
            repo = StrategyRepository(session)
            runs = sorted(repo.runs.list(mode="backtest"), key=lambda run: run.id)
            assert len(runs) == 8
            assert {(r.symbol, r.status) for r in runs} == {
                ("SP500", "finished"),
                ("NASDAQ", "finished"),
            }
            lean, kept = runs[:4], runs[4:]
            assert all(repo.run_result(r.id) is None for r in lean)
            assert all(repo.signals.count(run_id=r.id) == 0 for r in lean)
            assert all("window" in r.config for r in lean)  # pinned: reopening runs it again
            assert all(repo.run_result(r.id) is not None for r in kept)
            assert all(repo.signals.count(run_id=r.id) > 0 for r in kept)
    finally:
        engine.dispose()


def test_sweep_prints_a_heatmap_table(sample_env, capsys):
    args = ["sweep", "--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover"]
    grid = ["--grid", "fast=5,10", "--grid", "slow=10,30", "--workers", "0", "--no-store"]
    assert app.main([*args, *grid]) == 0
    out = capsys.readouterr().out
    assert "SP500 1d sma_crossover: Sharpe Ratio" in out
    lines = out.strip().splitlines()
    assert lines[1].split() == ["fast", "5", "10"]
    assert lines[3].split()[0] == "10"
    assert lines[3].split()[2] == "NaN"  # fast=10, slow=10 is skipped: not a valid combination
