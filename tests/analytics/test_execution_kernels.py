"""The execution kernels (analytics.tca._kernels, analytics.dataset._kernels) compiled ahead of
time (analytics._execution_aot) give what numba's JIT and plain Python give on random input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analytics import _execution_aot
from analytics.dataset import _kernels as dataset_kernels
from analytics.tca import _kernels as tca_kernels

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def aot():
    module = _execution_aot.prebuilt()
    if module is None:
        pytest.skip("no ahead-of-time build here (no compiler): the JIT runs")
    return module


def _jit(py_func):
    source, compiled = _execution_aot._jit(py_func)
    assert source == "jit"
    return compiled


def _equal(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
        return
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


def test_radix_order_three_ways(aot):
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 2**63, 20_000, dtype=np.uint64) | np.uint64(1 << 63)
    keys[::5] = keys[7]
    keys[100:200] = np.uint64(3)  # every byte but the lowest shared
    order = np.arange(len(keys), dtype=np.int64)
    runs = [f(keys.copy(), order.copy()) for f in (aot.radix_order,
            _jit(tca_kernels.radix_order_loop), tca_kernels.radix_order_loop)]  # fmt: skip
    _equal(runs[0], runs[1])
    _equal(runs[0], runs[2])
    np.testing.assert_array_equal(runs[0], np.argsort(keys, kind="stable"))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int64])
def test_group_stats_three_ways(aot, dtype):
    rng = np.random.default_rng(6)
    n = 5_000
    values = np.sort(rng.normal(0, 20, n))
    weights = rng.uniform(0, 10, n)
    weights[::13] = np.nan
    groups = np.array([3, 7], np.int64)
    codes = np.stack([rng.integers(0, 3, n), rng.integers(0, 6, n)], axis=1).astype(dtype)
    quantiles = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    width = {np.int8: "c1", np.int16: "c2", np.int64: "c8"}[dtype]
    args = (values, weights, codes, groups, quantiles)
    compiled = getattr(aot, f"group_stats_{width}")(*args)
    _equal(compiled, _jit(tca_kernels.group_stats_loop)(*args))
    _equal(compiled, tca_kernels.group_stats_loop(*args))
    _equal(compiled, tca_kernels.group_stats(*args))  # the public function, whatever it runs


def test_trailing_rank_three_ways(aot):
    rng = np.random.default_rng(7)
    values = np.round(rng.uniform(0, 1, 3_000), 2)  # ties
    values[[10, 500, 501]] = np.nan
    runs = [f(values, 50) for f in (aot.trailing_rank_pct,
            _jit(dataset_kernels.trailing_rank_pct_loop),
            dataset_kernels.trailing_rank_pct_loop)]  # fmt: skip
    _equal(runs[0], runs[1])
    _equal(runs[0], runs[2])


def test_triple_barrier_three_ways(aot):
    rng = np.random.default_rng(8)
    bars = 2_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    high = close * (1 + rng.uniform(0, 0.003, bars))
    low = close * (1 - rng.uniform(0, 0.003, bars))
    n = 3_000
    position = rng.integers(-1, bars, n).astype(np.int64)
    reference = close[np.maximum(position, 0)] * (1 + rng.normal(0, 0.001, n))
    reference[::17] = np.nan
    side = np.where(rng.uniform(size=n) < 0.5, 1, -1).astype(np.int64)
    share = rng.uniform(0.0005, 0.004, n)
    share[::19] = np.nan
    end = np.full(n, bars, np.int64)
    args = (position, reference, side, share, high, low, close, end, 20, 2.0, 1.0)
    runs = [f(*args) for f in (aot.triple_barrier, _jit(dataset_kernels.triple_barrier_loop),
                               dataset_kernels.triple_barrier_loop)]  # fmt: skip
    _equal(runs[0], runs[1])
    _equal(runs[0], runs[2])


def test_a_fresh_export_process_imports_no_numba(aot):
    """With the prebuilt module, the dataset's and the TCA's kernels run without numba."""
    code = (
        "import sys, numpy as np\n"
        "from analytics.tca._kernels import time_order, value_order\n"
        "from analytics.dataset._kernels import trailing_rank_pct\n"
        "import analytics.costmodel, analytics.dataset, analytics.tca\n"
        "time_order(np.array([3, 1, 2])); value_order(np.array([2.0, -1.0]))\n"
        "trailing_rank_pct(np.arange(10.0), 3)\n"
        "print('numba' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr
