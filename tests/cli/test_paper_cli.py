"""`app.py paper replay` as a real process on a fresh data folder: its trades equal
`app.py backtest`'s, bad inputs exit 2 naming the problem and store nothing, and a replay
killed with SIGKILL resumes to exactly what an uninterrupted run stores."""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("accounts", "deployments", "orders", "fills", "positions", "strategy_runs")


def environment(data_dir: Path) -> dict[str, str]:
    drop = ("REDIS_URL", "DATABASE_URL")
    return {k: v for k, v in os.environ.items() if k not in drop} | {
        "STRATLENS_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }


def app(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple]:
    connection = sqlite3.connect(data_dir / "stratlens.db", timeout=30)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def counts(data_dir: Path) -> dict[str, int]:
    return {t: query(data_dir, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the module: the database is created and the bundled series
    loaded once (by the first command)."""
    folder = tmp_path_factory.mktemp("paper_cli")
    done = app(folder, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return folder


SERIES = shlex.split(
    "--symbol SP500 --timeframe 1d --strategy sma_crossover --set direction=both --set fast=10"
    " --commission 0.001 --slippage-bps 2"
)


def test_paper_replay_trades_equal_the_backtest_commands(data_dir: Path):
    backtest = app(data_dir, "backtest", *SERIES, "--json", "--no-store")
    assert backtest.returncode == 0, backtest.stderr
    paper = app(data_dir, "paper", "replay", *SERIES, "--account", "equal-1", "--json")
    assert paper.returncode == 0, paper.stderr
    expected = json.loads(backtest.stdout)["trades"]
    document = json.loads(paper.stdout)
    got = document["trades"]
    assert document["account"] == "equal-1"
    assert document["resumed_from"] is None
    assert len(expected) > 20
    assert len(got) == len(expected)
    for i, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        assert list(mine) == list(theirs), i
        wrong = {k: (mine[k], theirs[k]) for k in theirs if not same_value(mine[k], theirs[k])}
        assert not wrong, (i, wrong)
    pnl = sum(t["pnl"] for t in got)
    assert math.isclose(document["equity"], 10_000 + pnl, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "sma_crosover"], "sma_crosover"),
        (["--strategy", "sma_crossover", "--set", "fast"], "fast"),
        (["--strategy", "sma_crossover", "--set", "fast=1"], "fast=1 is out of range"),
        (["--strategy", "sma_crossover", "--stop-loss", "-0.1"], "stop_loss_pct=-0.1 is invalid"),
        (["--strategy", "sma_crossover", "--sizing", "lots"], "sizing='lots' is invalid"),
        (["--strategy", "sma_crossover", "--symbol", "NOPE"], "NOPE"),
    ],
    ids=[
        "unknown-strategy",
        "set-without-value",
        "bad-param",
        "negative-stop",
        "bad-sizing",
        "unknown-symbol",
    ],
)
def test_bad_input_exits_2_naming_the_problem_and_stores_nothing(data_dir, args, message):
    before = counts(data_dir)
    base = {"--symbol": "SP500", "--timeframe": "1d"}
    given = dict(zip(args[::2], args[1::2], strict=False))
    flags = [x for k, v in base.items() if k not in given for x in (k, v)]
    done = app(data_dir, "paper", "replay", *flags, *args, "--account", "bad-input", "--json")
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("paper replay: "), done.stderr
    assert counts(data_dir) == before
    assert query(data_dir, "SELECT count(*) FROM accounts WHERE name = 'bad-input'") == [(0,)]


def test_a_finished_replays_account_is_not_reused(data_dir: Path):
    args = shlex.split(
        "paper replay --symbol NASDAQ --timeframe 1w --strategy ema_crossover"
        " --account used-once --json"
    )
    first = app(data_dir, *args)
    assert first.returncode == 0, first.stderr
    before = counts(data_dir)
    again = app(data_dir, *args)
    assert again.returncode == 2
    assert "account 'used-once' exists and holds no interrupted replay" in again.stderr
    assert counts(data_dir) == before


# -- kill -9 and resume ----------------------------------------------------------------------
# the second half of the bundled one-minute series (14,400 bars): long enough to be killed
# after its first committed batch (500 bars), short enough for a test
KILL_BARS = 14_400
KILL_ARGS = shlex.split(
    "--symbol DEMO --timeframe 1m --start 2024-01-11 --strategy ema_crossover"
    " --set direction=both --commission 0.0005 --commission-fixed 0.5 --slippage-bps 1"
    " --stop-loss 0.004 --take-profit 0.006 --trailing-stop 0.005 --json"
)


def stored(data_dir: Path, account: str) -> dict[str, Any]:
    """What a replay stored, with the deployment's id taken out of its client order ids."""
    (account_id,) = query(data_dir, "SELECT id FROM accounts WHERE name = ?", account)[0]
    (deployment_id,) = query(
        data_dir, "SELECT id FROM deployments WHERE name = ?", f"replay:{account}"
    )[0]
    prefix = f"d{deployment_id}-"

    def plain(cid: str) -> str:
        assert cid.startswith(prefix), cid
        return cid[len(prefix) :]

    orders = query(
        data_dir,
        "SELECT client_order_id, side, order_type, status, quantity, filled_quantity,"
        " average_price, fees, limit_price, stop_price, purpose FROM orders"
        " WHERE account_id = ? ORDER BY client_order_id",
        account_id,
    )
    fills = query(
        data_dir,
        "SELECT fill_id, side, price, quantity, fee, realised_pnl, seq FROM fills"
        " WHERE account_id = ? ORDER BY fill_id",
        account_id,
    )
    positions = query(
        data_dir,
        "SELECT symbol, quantity, average_price, realised_pnl FROM positions WHERE account_id = ?",
        account_id,
    )
    cash = query(data_dir, "SELECT cash, fees, realised_pnl FROM accounts WHERE id = ?", account_id)
    return {
        "orders": [(plain(o[0]), *o[1:]) for o in orders],
        "fills": [(plain(f[0]), *f[1:]) for f in fills],
        "positions": positions,
        "account": cash,
        "client_ids": [o[0] for o in orders],
    }


def assert_rows_equal(a: list[tuple], b: list[tuple], what: str) -> None:
    assert len(a) == len(b), (what, len(a), len(b))
    for row_a, row_b in zip(a, b, strict=True):
        assert all(same_value(x, y) for x, y in zip(row_a, row_b, strict=True)), (
            what,
            row_a,
            row_b,
        )


def test_a_replay_killed_with_sigkill_resumes_to_what_an_uninterrupted_run_stores(
    data_dir: Path,
):
    process = subprocess.Popen(
        [sys.executable, "app.py", "paper", "replay", *KILL_ARGS, "--account", "killed"],
        cwd=ROOT,
        env=environment(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        committed = None
        while time.monotonic() < deadline and process.poll() is None:
            rows = query(
                data_dir, "SELECT last_bar_ts FROM deployments WHERE name = 'replay:killed'"
            )
            if rows and rows[0][0] is not None:
                committed = rows[0][0]
                break
            time.sleep(0.02)  # polling the database for the first committed batch
        assert committed is not None, "no batch was committed before the replay ended"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]
    assert process.returncode == -signal.SIGKILL, "the replay finished before it was killed"
    (status,) = query(data_dir, "SELECT status FROM deployments WHERE name = 'replay:killed'")[0]
    assert status == "running"
    (stored_bar,) = query(
        data_dir, "SELECT last_bar_ts FROM deployments WHERE name = 'replay:killed'"
    )[0]
    assert stored_bar >= committed

    before = counts(data_dir)
    other = [a if a != "0.004" else "0.01" for a in KILL_ARGS]  # another stop loss
    refused = app(data_dir, "paper", "replay", *other, "--account", "killed")
    assert refused.returncode == 2, refused.stderr
    assert "was started with settings" in refused.stderr
    assert "resume it with the same arguments" in refused.stderr
    assert counts(data_dir) == before

    resumed = app(data_dir, "paper", "replay", *KILL_ARGS, "--account", "killed")
    assert resumed.returncode == 0, resumed.stderr
    whole = app(data_dir, "paper", "replay", *KILL_ARGS, "--account", "whole")
    assert whole.returncode == 0, whole.stderr
    after, reference = json.loads(resumed.stdout), json.loads(whole.stdout)

    assert reference["resumed_from"] is None
    assert reference["bars"] == KILL_BARS
    assert after["resumed_from"] is not None
    resumed_from = int(pd.Timestamp(after["resumed_from"]).value // 1_000_000)
    assert resumed_from == stored_bar
    assert 0 < after["bars"] < KILL_BARS
    assert len(reference["trades"]) > 50
    assert_rows_equal(
        [tuple(t.values()) for t in after["trades"]],
        [tuple(t.values()) for t in reference["trades"]],
        "trades",
    )
    assert math.isclose(after["equity"], reference["equity"], rel_tol=1e-12)

    killed, uninterrupted = stored(data_dir, "killed"), stored(data_dir, "whole")
    assert len(set(killed["client_ids"])) == len(killed["client_ids"])
    for what in ("orders", "fills", "positions", "account"):
        assert_rows_equal(killed[what], uninterrupted[what], what)
    assert [p[1] for p in killed["positions"]] == [0.0]


# -- kill -9 of `app.py runner` ----------------------------------------------------------------
RUNNER_ENV = {
    "FEEDS": "SP500:replay",
    "FEED_SPEED": "100",
    "FEED_UPDATES_PER_CANDLE": "0",
    "REPLAY_BARS": "600",
}
DEPLOY = shlex.split(
    "--account acc --strategy sma_crossover --set fast=2 --set slow=4 --set direction=both"
    " --symbol SP500 --timeframe 1d --commission 0.001 --stop-loss 0.02 --take-profit 0.04"
)


def _deployed(folder: Path) -> None:
    for args in (
        ("db", "upgrade"),
        ("paper", "account", "create", "acc", "--cash", "10000"),
        ("paper", "deploy", "dep", *DEPLOY),
        ("paper", "start", "dep"),
    ):
        done = app(folder, *args)
        assert done.returncode == 0, (args, done.stderr)


def _runner(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "app.py", "runner"],
        cwd=ROOT,
        env=environment(folder) | RUNNER_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _last_bar(folder: Path) -> int | None:
    rows = query(folder, "SELECT last_bar_ts FROM deployments WHERE name = 'dep'")
    return rows[0][0] if rows else None


def _until_bar(folder: Path, process: subprocess.Popen[bytes], reached, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        bar = _last_bar(folder)
        if bar is not None and reached(bar):
            return bar
        time.sleep(0.05)  # polling the database for the runner's committed bars
    raise AssertionError(f"the runner did not get there in {timeout:g} s: {_last_bar(folder)}")


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]


def _book(folder: Path) -> dict[str, list[tuple]]:
    return {
        "orders": query(
            folder,
            "SELECT client_order_id, side, order_type, status, quantity, filled_quantity,"
            " average_price, fees, limit_price, stop_price, purpose FROM orders"
            " ORDER BY client_order_id",
        ),
        "fills": query(
            folder,
            "SELECT fill_id, side, price, quantity, fee, realised_pnl, seq, bar_ts FROM fills"
            " ORDER BY fill_id",
        ),
        "positions": query(folder, "SELECT symbol, quantity, average_price FROM positions"),
        "account": query(folder, "SELECT cash, fees, realised_pnl FROM accounts"),
    }


def test_the_runner_killed_with_sigkill_resumes_to_what_an_uninterrupted_run_stores(
    tmp_path: Path,
):
    """`app.py runner` trading a replay, killed with SIGKILL mid-way and started again (at
    once: its lease's holder is gone), stores the same orders, fills, positions and account
    as a runner that was never interrupted: no order placed twice, no fill lost."""
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for folder in (killed, whole):
        folder.mkdir()
        _deployed(folder)
    last = query(killed, "SELECT max(ts) FROM candles WHERE symbol = 'SP500'")[0][0]

    first = _runner(killed)
    try:
        start = _until_bar(killed, first, lambda bar: True)
        _until_bar(killed, first, lambda bar: bar >= start + 150 * 86_400_000)
    finally:
        _stop(first, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    interrupted_at = _last_bar(killed)
    assert interrupted_at is not None
    assert interrupted_at < last
    again = _runner(killed)
    try:
        _until_bar(killed, again, lambda bar: bar >= last)
    finally:
        _stop(again, signal.SIGTERM)

    uninterrupted = _runner(whole)
    try:
        _until_bar(whole, uninterrupted, lambda bar: bar >= last)
    finally:
        _stop(uninterrupted, signal.SIGTERM)

    mine, reference = _book(killed), _book(whole)
    assert len(reference["fills"]) > 10
    ids = [o[0] for o in mine["orders"]]
    assert len(ids) == len(set(ids))  # no order placed twice
    for what in ("orders", "fills", "positions", "account"):
        assert_rows_equal(mine[what], reference[what], what)
