"""The prebuilt (ahead-of-time) kernel: the JIT's results to the bit, its key, its fallbacks,
and a fresh process that runs a backtest without importing numba."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analytics import _aot, _kernel, _kernel_aot
from analytics._kernel_layout import DRAWDOWN_HALT, STOP_LOSS, TRAILING_STOP, pack_params
from analytics.backtest import BacktestSettings, kernel_params

ROOT = Path(__file__).resolve().parents[2]
BARS = 20_000


@pytest.fixture(scope="module")
def aot():
    """The prebuilt ``simulate`` of the checkout (built on first use, like the app does)."""
    simulate = _kernel_aot.load_or_build()
    assert simulate is not None, f"no ahead-of-time build: {_kernel_aot.artefact_path()}.failed"
    return simulate


@pytest.fixture(scope="module")
def bars() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A seeded random walk (prices) and random signals, 5% of the bars each (flags)."""
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, BARS)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, BARS))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, BARS))
    flags = [rng.random(BARS) < 0.05 for _ in range(4)]
    return [open_, high, low, close], flags


STOPS = {"stop_loss_pct": 0.02, "take_profit_pct": 0.04, "trailing_stop_pct": 0.03}
COSTS = {"commission_pct": 0.001, "commission_fixed": 1.0, "slippage_bps": 2, "spread_bps": 3}
BT_COSTS = {"commission_pct": 0.001, "commission_fixed": 1.0, "spread_bps": 3}  # no slippage
CASES = {
    "defaults": {},
    "stops, long only": {**STOPS, "direction": "long"},
    "stops, short only, costs": {**STOPS, **COSTS, "direction": "short"},
    "half-Kelly, stops": {**STOPS, "sizing": "half_kelly", "kelly_window": 20},
    "fill at close, costs": {**COSTS, "fill": "close"},
    "fill at close, stops": {**STOPS, "fill": "close"},
    "drawdown halt": {"max_drawdown_halt_pct": 0.3},
    "drawdown halt, fill at close": {"max_drawdown_halt_pct": 0.3, "fill": "close"},
    "quantity, whole units, open at the end": {
        "sizing": "quantity",
        "size": 3,
        "whole_units": True,
        "close_at_end": False,
    },
    "backtesting.py, costs": {**BT_COSTS, "compat": "backtesting.py"},
    "backtesting.py, fill at close, fraction": {
        **BT_COSTS,
        "compat": "backtesting.py",
        "fill": "close",
        "sizing": "fraction",
        "size": 0.5,
    },
}


@pytest.mark.parametrize("changes", CASES.values(), ids=CASES.keys())
def test_aot_equals_jit_element_wise(aot, bars, changes: dict) -> None:
    prices, flags = bars
    params = kernel_params(replace(BacktestSettings(cash=10_000), **changes))
    equity, trades, halt = aot(*prices, *flags, params)
    jit_equity, jit_trades, jit_halt = _kernel.simulate(*prices, *flags, params)
    assert len(trades) > 10  # a scenario that trades
    np.testing.assert_array_equal(equity, jit_equity)
    np.testing.assert_array_equal(trades, jit_trades)
    assert halt == jit_halt
    reasons = set(trades[:, 6].astype(int))
    if "stop_loss_pct" in changes:
        assert {STOP_LOSS, TRAILING_STOP} <= reasons
    if "max_drawdown_halt_pct" in changes:
        assert halt > 0
        assert DRAWDOWN_HALT in reasons


def test_aot_takes_strided_and_writable_columns(aot, bars) -> None:
    """The compiled module checks only item sizes: the wrapper hands it contiguous arrays."""
    prices, flags = bars
    params = kernel_params(BacktestSettings())
    doubled = [np.repeat(a, 2)[::2] for a in prices]  # strided views of the same values
    as_ints = [f.astype(np.int8) for f in flags]  # 0/1 of another dtype, same item size
    got = aot(*doubled, *as_ints, params)
    expected = _kernel.simulate(*prices, *flags, params)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("changes", CASES.values(), ids=CASES.keys())
def test_packed_params_unpack_to_the_same_tuple(changes: dict) -> None:
    params = kernel_params(replace(BacktestSettings(), **changes))
    back = _kernel.unpack_params(pack_params(params))
    assert back == params
    assert [type(v) for v in back] == [type(v) for v in params]  # typed as the JIT sees them
    assert _kernel.unpack_params.py_func(pack_params(params)) == params


def test_key_changes_with_any_kernel_source(tmp_path, monkeypatch) -> None:
    for name in _kernel_aot.SOURCES:
        shutil.copy(_kernel_aot.HERE / name, tmp_path / name)
    monkeypatch.setattr(_kernel_aot, "HERE", tmp_path)
    key = _kernel_aot.artefact_key()
    for name in _kernel_aot.SOURCES:
        with open(tmp_path / name, "a") as source:
            source.write("\n# an edit\n")
        assert _kernel_aot.artefact_key() != key, name
        key = _kernel_aot.artefact_key()


def test_failed_build_falls_back_once_and_is_not_retried(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false"))  # the build subprocess fails
    with caplog.at_level(logging.WARNING, logger="stratlens"):
        assert _kernel_aot.load_or_build(tmp_path) is None
    assert len(caplog.records) == 1
    assert "using numba's JIT" in caplog.text
    failed = _kernel_aot.artefact_path(tmp_path).with_name(
        _kernel_aot.artefact_path(tmp_path).name + ".failed"
    )
    assert "the build failed" in failed.read_text()

    def no_retry(*args, **kwargs):
        raise AssertionError("built again after a failure")

    monkeypatch.setattr(subprocess, "run", no_retry)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stratlens"):
        assert _kernel_aot.load_or_build(tmp_path) is None
    assert not caplog.records


def test_build_waits_for_the_lock_and_reuses_what_the_holder_built(tmp_path, monkeypatch) -> None:
    """A process that waited on the lock finds the artefact its holder built: no second build."""
    path = _kernel_aot.artefact_path(tmp_path)

    def no_build(*args, **kwargs):
        raise AssertionError("built although the artefact was there")

    monkeypatch.setattr(subprocess, "run", no_build)
    path.write_bytes(b"built by the process that held the lock")
    _aot.build_locked(path, "analytics._kernel_aot")
    path.unlink()
    with pytest.raises(AssertionError, match="built although"):
        _aot.build_locked(path, "analytics._kernel_aot")


@pytest.mark.slow
def test_lazy_build_replaces_older_builds(tmp_path, bars) -> None:
    stale = tmp_path / "_kernel_aot_0000000000000000.cpython-311-x86_64-linux-gnu.so"
    stale.write_bytes(b"an older build")
    note = tmp_path / "_kernel_aot_1111111111111111.so.failed"
    note.write_text("an older failure")
    simulate = _kernel_aot.load_or_build(tmp_path)
    assert simulate is not None
    assert _kernel_aot.artefact_path(tmp_path).exists()
    assert not stale.exists()
    assert not note.exists()
    prices, flags = bars
    params = kernel_params(BacktestSettings(fill="close"))
    for a, b in zip(
        simulate(*prices, *flags, params), _kernel.simulate(*prices, *flags, params), strict=True
    ):
        np.testing.assert_array_equal(a, b)


FRESH_RUN = """
import json, sys
import numpy as np, pandas as pd
from analytics._kernel_aot import kernel_source
from analytics.backtest import BacktestSettings, run_backtest
from strategies import registry
index = pd.date_range("2024-01-01", periods=500, freq="min", tz="UTC")
close = 100 + np.sin(np.arange(500) / 10)
candles = pd.DataFrame(
    {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1.0},
    index=index,
)
signals = registry.create("sma_crossover", fast=5, slow=20, direction="both").generate(candles)
result = run_backtest(candles, signals, BacktestSettings())
print(json.dumps([kernel_source(), "numba" in sys.modules, len(result.trades)]))
"""


@pytest.mark.parametrize(
    ("env", "source", "numba_imported"), [("", "aot", False), ("jit", "jit", True)]
)
def test_fresh_process_runs_the_prebuilt_kernel_without_numba(
    aot, env: str, source: str, numba_imported: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRESH_RUN],
        cwd=ROOT,
        env={**os.environ, "STRATLENS_KERNEL": env},
        capture_output=True,
        text=True,
        check=True,
    )
    kernel, numba, trades = json.loads(done.stdout)
    assert (kernel, numba) == (source, numba_imported)
    assert trades > 10
