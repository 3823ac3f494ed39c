"""The compiled loops of transaction-cost analysis and of the decision dataset
(:mod:`analytics.tca._kernels`, :mod:`analytics.dataset._kernels`), compiled ahead of time.

>>> radix_order = kernel("radix_order", _kernels.radix_order)   # aot, else jit, else Python

Why: with numba's JIT, even from its on-disk cache, a fresh ``app.py dataset export`` or
``app.py tca`` spent about 0.2 s importing numba and 1 s loading its cached kernels (numba's
array, linear-algebra and BLAS support, scipy's) before doing any work. As for the backtest's
bar loop (:mod:`analytics._kernel_aot`, whose scheme this is) and the FIFO walk
(:mod:`analytics._fifo_aot`), ``numba.pycc`` compiles the loops once into one plain extension
module that a process imports in milliseconds, without numba.

- Artefact: ``analytics/__pycache__/_execution_aot_<key><extension suffix>``; the key hashes
  both kernel files, this file, numba's and numpy's versions and the interpreter's ABI, so a
  stale build is never loaded; a new build removes the older ones.
- Built by ``python -m analytics._execution_aot`` (``make`` runs it at set-up), else by the
  first process that needs it, in a subprocess under a file lock (concurrent processes build
  once, about 20 s).
- A failed build leaves ``<artefact>.failed`` with the reason and one warning in the log;
  later processes use the JIT without trying again until the key changes.
  ``STRATLENS_KERNEL=jit`` skips the prebuilt module.
- The compiled functions check only an array's item size: the kernel modules' wrappers hand
  them contiguous arrays of the exact dtype (:data:`SIGNATURES`).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analytics import _aot

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "__pycache__"
PREFIX = "_execution_aot_"
SOURCES = (HERE / "tca" / "_kernels.py", HERE / "dataset" / "_kernels.py", Path(__file__))
# exported name -> (module, function, argument kinds, result kinds); kinds: 'u' uint64 array,
# 'i' int64 array, 'b' int8 array, 'f' float64 array, 'c1' / 'c2' / 'c8' int8 / int16 /
# int64 matrix, 'F' float64 matrix, 'n' int64, 'x' float64
TCA, DATASET = "analytics.tca._kernels", "analytics.dataset._kernels"
SIGNATURES: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "radix_order": (TCA, "radix_order_loop", ("u", "i"), ("i",)),
    "group_stats_c1": (TCA, "group_stats_loop", ("f", "f", "c1", "i", "f"), ("F",)),
    "group_stats_c2": (TCA, "group_stats_loop", ("f", "f", "c2", "i", "f"), ("F",)),
    "group_stats_c8": (TCA, "group_stats_loop", ("f", "f", "c8", "i", "f"), ("F",)),
    "trailing_rank_pct": (DATASET, "trailing_rank_pct_loop", ("f", "n"), ("f",)),
    "triple_barrier": (
        DATASET,
        "triple_barrier_loop",
        ("i", "f", "i", "f", "f", "f", "f", "i", "n", "x", "x"),
        ("b", "f", "i"),
    ),
}
DTYPES = {"u": np.uint64, "i": np.int64, "b": np.int8, "f": np.float64, "c1": np.int8,
          "c2": np.int16, "c8": np.int64, "F": np.float64}  # fmt: skip


def artefact_path(directory: Path = BUILD_DIR) -> Path:
    """Where the build of the current sources lives (it may not exist yet)."""
    return _aot.artefact(directory, PREFIX, SOURCES)


def build(directory: Path = BUILD_DIR) -> Path:
    """Compile every kernel of :data:`SIGNATURES` into one module in ``directory`` (in this
    process: imports numba) and remove older builds and failure notes; returns its path."""
    from numba import from_dtype, types

    def kind(k: str) -> Any:
        if k == "n":
            return types.int64
        if k == "x":
            return types.float64
        dims = 2 if k[0] in "cF" else 1
        return types.Array(from_dtype(np.dtype(DTYPES[k])), dims, "C")

    exports = []
    for exported, (module, function, arguments, results) in SIGNATURES.items():
        returns = kind(results[0]) if len(results) == 1 else types.Tuple(
            tuple(kind(r) for r in results)
        )  # fmt: skip
        source = getattr(importlib.import_module(module), function)
        exports.append((exported, returns(*(kind(a) for a in arguments)), source))
    return _aot.compile_module(artefact_path(directory), PREFIX, exports)


@functools.cache
def prebuilt(directory: Path = BUILD_DIR) -> Any | None:
    """The compiled module, built first if needed; None when it cannot be had (the reason in
    ``<artefact>.failed``, logged once) or ``STRATLENS_KERNEL=jit``."""
    if _aot.disabled():
        return None
    try:
        path = artefact_path(directory)
    except (ImportError, OSError) as exc:
        _aot.log.debug("execution kernels: no ahead-of-time build: %s", exc)
        return None
    return _aot.prebuilt_module(
        path, "analytics._execution_aot", "execution kernels", tuple(SIGNATURES)
    )


@functools.cache
def kernel(exported: str, py_func: Callable) -> tuple[str, Callable]:
    """(source, function) of the kernel ``exported`` (a name of :data:`SIGNATURES`) as this
    process runs it, chosen on first use: 'aot' (the prebuilt module), 'jit' (numba, cached
    on disk) or 'python' (without numba: ``py_func`` itself, slowly)."""
    module = prebuilt()
    if module is not None:
        return "aot", getattr(module, exported)
    return _jit(py_func)


@functools.cache
def _jit(py_func: Callable) -> tuple[str, Callable]:
    try:
        from numba import njit
    except ImportError:  # pragma: no cover - numba is a dependency
        return "python", py_func
    return "jit", njit(cache=True)(py_func)


def main(argv: list[str] | None = None) -> int:
    """``python -m analytics._execution_aot [--dir DIR]``: build now, print the path."""
    return _aot.main(build, BUILD_DIR, argv)


if __name__ == "__main__":
    sys.exit(main())
