"""The bar loop compiled ahead of time, so that a fresh process runs it without numba.

>>> equity, trades, halt = simulate(o, h, l, c, el, xl, es, xs, kernel_params(settings))
>>> kernel_source()        # 'aot', 'jit' or 'python': what this process runs

numba's JIT, even with its on-disk cache, costs a fresh process about 0.2 s to import numba and
0.5-0.9 s on the first call (loading the cache imports numba's array, linear-algebra and BLAS
support, scipy's when installed). ``numba.pycc`` compiles :func:`analytics._kernel.simulate_packed`
once into a plain CPython extension module (numba's runtime included), which imports in under a
millisecond and never imports numba.

- Artefact: ``analytics/__pycache__/_kernel_aot_<key><extension suffix>``. The key hashes the
  kernel's sources (``_kernel.py``, ``_kernel_layout.py``, this file), numba's and numpy's
  versions and the interpreter's extension ABI: after an edit or an upgrade the name changes,
  so a stale build is never loaded. A new build removes the older ones.
- Built by ``python -m analytics._kernel_aot`` (``make`` runs it at set-up; it prints why a
  build failed), else by the first process that needs it: in a subprocess whose output is
  kept out of ours, under a file lock, so that concurrent processes build once (about 6 s).
- A build or load that fails leaves ``<artefact>.failed`` with the reason and one warning in
  the log; later processes then use the JIT without trying again, until the key changes or
  ``python -m analytics._kernel_aot`` is run.
- Fallback: numba's JIT (:func:`analytics._kernel.simulate`), then plain Python when numba is
  missing. ``STRATLENS_KERNEL=jit`` skips the prebuilt kernel.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics import _aot
from analytics._kernel_layout import KernelParams, pack_params

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "__pycache__"  # beside numba's own cache; ignored by git
SOURCES = ("_kernel.py", "_kernel_layout.py", "_kernel_aot.py")
PREFIX = "_kernel_aot_"
Simulate = Callable[..., tuple[np.ndarray, np.ndarray, int]]


def artefact_key() -> str:
    """16 hex digits naming the build of these sources for this numba, numpy and Python."""
    return _aot.source_key(HERE / name for name in SOURCES)


def artefact_path(directory: Path = BUILD_DIR) -> Path:
    """Where the build of the current sources lives (it may not exist yet)."""
    return directory / f"{PREFIX}{artefact_key()}{_aot.SUFFIX}"


def build(directory: Path = BUILD_DIR) -> Path:
    """Compile the kernel into ``directory`` in this process (imports numba; prints its
    compiler's chatter) and remove older builds and failure notes; returns its path."""
    from numba import types

    from analytics._kernel import simulate_packed

    prices = types.Array(types.float64, 1, "C")
    flags = types.Array(types.boolean, 1, "C")
    returns = types.Tuple((prices, types.Array(types.float64, 2, "C"), types.int64))
    signature = returns(prices, prices, prices, prices, flags, flags, flags, flags, prices)
    exports = [("simulate", signature, simulate_packed.py_func)]
    return _aot.compile_module(artefact_path(directory), PREFIX, exports)


def load_or_build(directory: Path = BUILD_DIR) -> Simulate | None:
    """The prebuilt ``simulate``, built first if needed; None when it cannot be had (the
    reason is in ``<artefact>.failed``, logged once)."""
    try:
        path = artefact_path(directory)
    except (ImportError, OSError) as exc:
        _aot.log.debug("kernel: no ahead-of-time build: %s", exc)
        return None
    module = _aot.prebuilt_module(path, "analytics._kernel_aot", "kernel", ("simulate",))
    return None if module is None else _wrap(module.simulate)


@functools.cache
def kernel() -> tuple[str, Simulate]:
    """(source, simulate) of the fastest kernel this process can run, chosen on first use:
    'aot' (the prebuilt module), 'jit' (numba) or 'python' (no numba)."""
    if not _aot.disabled():
        prebuilt = load_or_build()
        if prebuilt is not None:
            return "aot", prebuilt
    from analytics import _kernel

    return ("jit" if hasattr(_kernel.simulate, "py_func") else "python"), _kernel.simulate


def kernel_source() -> str:
    """'aot', 'jit' or 'python': which kernel :func:`simulate` runs in this process."""
    return kernel()[0]


def simulate(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entry_long: np.ndarray,
    exit_long: np.ndarray,
    entry_short: np.ndarray,
    exit_short: np.ndarray,
    p: KernelParams,
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`analytics._kernel.simulate`, run by :func:`kernel`: (equity per bar, trades as
    an (n, 9) float array, halt bar or -1)."""
    return kernel()[1](open_, high, low, close, entry_long, exit_long, entry_short, exit_short, p)


def _wrap(compiled: Callable) -> Simulate:
    """``compiled`` with :func:`simulate`'s arguments: it checks only the item size of an
    array, so every array is made a contiguous one of the right dtype (no copy when it is)."""

    def simulate_aot(open_, high, low, close, entry_long, exit_long, entry_short, exit_short, p):
        prices = [np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close)]
        flags = [
            np.ascontiguousarray(a, dtype=np.bool_)
            for a in (entry_long, exit_long, entry_short, exit_short)
        ]
        return compiled(*prices, *flags, pack_params(p))

    return simulate_aot


def main(argv: list[str] | None = None) -> int:
    """``python -m analytics._kernel_aot [--dir DIR]``: build now, print the artefact's path."""
    return _aot.main(build, BUILD_DIR, argv)


if __name__ == "__main__":
    sys.exit(main())
