"""The FIFO pass (:func:`analytics._fifo.carry_walk`) compiled ahead of time.

>>> walk = prebuilt()       # the compiled function, or None (then numba's JIT runs it)

numba's JIT costs a fresh process about 0.3 s to import numba and 0.6 s on the first call,
even with its on-disk cache: as much as a bulk import of 100,000 trades spends on their
positions in Python. As for the backtest's bar loop (:mod:`analytics._kernel_aot`, whose
scheme this is), ``numba.pycc`` compiles the walk once into a plain extension module that a
process imports in milliseconds without numba.

- Artefact: ``analytics/__pycache__/_fifo_aot_<key><extension suffix>``; the key hashes
  ``_fifo.py``, this file, numba's and numpy's versions and the interpreter's ABI, so a stale
  build is never loaded; a new build removes the older ones.
- Built by ``python -m analytics._fifo_aot``, else by the first process that needs it, in a
  subprocess under a file lock (concurrent processes build once, about 10 s).
- A failed build leaves ``<artefact>.failed`` with the reason and one warning in the log;
  later processes use the JIT without trying again until the key changes.
  ``STRATLENS_KERNEL=jit`` skips the prebuilt module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics import _aot

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "__pycache__"
PREFIX = "_fifo_aot_"
# carry_walk's arguments: 'i' int64 array, 'f' float64 array, 'F' float64 matrix, 'n' int
ARGUMENTS = "iifffniiffF"


def artefact_path(directory: Path = BUILD_DIR) -> Path:
    """Where the build of the current sources lives (it may not exist yet)."""
    return _aot.artefact(directory, PREFIX, (HERE / "_fifo.py", HERE / "_fifo_aot.py"))


def build(directory: Path = BUILD_DIR) -> Path:
    """Compile the walk into ``directory`` in this process (imports numba) and remove older
    builds and failure notes; returns its path."""
    from numba import types

    from analytics._fifo import carry_walk

    i1 = types.Array(types.int64, 1, "C")
    f1 = types.Array(types.float64, 1, "C")
    kinds = {"i": i1, "f": f1, "F": types.Array(types.float64, 2, "C"), "n": types.int64}
    returns = types.Tuple((f1, i1, i1, i1, i1, i1, i1, f1, f1, f1, f1, f1, f1,
                           types.Array(types.boolean, 1, "C"), i1, i1, i1, f1, f1, i1, f1, f1,
                           f1))  # fmt: skip
    signature = returns(*(kinds[k] for k in ARGUMENTS))
    return _aot.compile_module(
        artefact_path(directory), PREFIX, [("carry_walk", signature, carry_walk)]
    )


@functools.cache
def prebuilt(directory: Path = BUILD_DIR) -> Callable[..., tuple] | None:
    """The compiled walk (taking any arrays: each made the contiguous array of its dtype),
    built first if needed; None when it cannot be had (the reason in ``<artefact>.failed``)."""
    if _aot.disabled():
        return None
    try:
        path = artefact_path(directory)
    except (ImportError, OSError) as exc:
        _aot.log.debug("FIFO walk: no ahead-of-time build: %s", exc)
        return None
    module = _aot.prebuilt_module(path, "analytics._fifo_aot", "FIFO walk", ("carry_walk",))
    if module is None:
        return None
    compiled = module.carry_walk
    dtypes = {"i": np.int64, "f": np.float64, "F": np.float64}

    def carry_walk(*args: object) -> tuple:
        return compiled(*(
            int(a) if k == "n" else np.ascontiguousarray(a, dtype=dtypes[k])  # type: ignore[call-overload]
            for k, a in zip(ARGUMENTS, args, strict=True)
        ))  # fmt: skip

    return carry_walk


def main(argv: list[str] | None = None) -> int:
    """``python -m analytics._fifo_aot [--dir DIR]``: build now, print the artefact's path."""
    return _aot.main(build, BUILD_DIR, argv)


if __name__ == "__main__":
    sys.exit(main())
