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

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics._kernel_layout import KernelParams, pack_params

log = logging.getLogger("stratlens")

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "__pycache__"  # beside numba's own cache; ignored by git
SOURCES = ("_kernel.py", "_kernel_layout.py", "_kernel_aot.py")
BUILD_TIMEOUT_S = 600.0
Simulate = Callable[..., tuple[np.ndarray, np.ndarray, int]]


def artefact_key() -> str:
    """16 hex digits naming the build of these sources for this numba, numpy and Python."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((HERE / name).read_bytes())
    numba = importlib.util.find_spec("numba")  # finds it without importing it
    if numba is None or numba.origin is None:
        raise ImportError("numba is not installed: nothing can build the kernel")
    digest.update((Path(numba.origin).parent / "_version.py").read_bytes())
    abi = sysconfig.get_config_var("EXT_SUFFIX") or sys.implementation.cache_tag
    digest.update(f"{np.__version__}|{abi}".encode())
    return digest.hexdigest()[:16]


def artefact_path(directory: Path = BUILD_DIR) -> Path:
    """Where the build of the current sources lives (it may not exist yet)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return directory / f"_kernel_aot_{artefact_key()}{suffix}"


def build(directory: Path = BUILD_DIR) -> Path:
    """Compile the kernel into ``directory`` in this process (imports numba; prints its
    compiler's chatter) and remove older builds and failure notes; returns its path."""
    from numba import types
    from numba.pycc import CC

    from analytics._kernel import simulate_packed

    path = artefact_path(directory)
    name = path.name.split(".")[0]
    prices = types.Array(types.float64, 1, "C")
    flags = types.Array(types.boolean, 1, "C")
    returns = types.Tuple((prices, types.Array(types.float64, 2, "C"), types.int64))
    signature = returns(prices, prices, prices, prices, flags, flags, flags, flags, prices)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=f"{name}-") as scratch:
        compiler = CC(name)
        compiler.output_dir = scratch
        compiler.export("simulate", signature)(simulate_packed.py_func)
        compiler.compile()
        os.replace(Path(scratch) / compiler.output_file, path)  # atomic: never half-written
    for old in directory.glob("_kernel_aot_*"):
        if old.is_file() and old != path:  # older builds, failure notes (this one's too)
            old.unlink(missing_ok=True)
    return path


def load_or_build(directory: Path = BUILD_DIR) -> Simulate | None:
    """The prebuilt ``simulate``, built first if needed; None when it cannot be had (the
    reason is in ``<artefact>.failed``, logged once)."""
    try:
        path = artefact_path(directory)
    except (ImportError, OSError) as exc:
        log.debug("kernel: no ahead-of-time build: %s", exc)
        return None
    simulate = prebuilt_function(path, directory, "analytics._kernel_aot", "simulate", "kernel")
    return None if simulate is None else _wrap(simulate)


def prebuilt_function(
    path: Path, directory: Path, module: str, name: str, what: str
) -> Callable | None:
    """The function ``name`` of the extension module at ``path``, built first (``python -m
    module --dir directory``) if needed; None when it cannot be had: the reason is left in
    ``<path>.failed`` and logged once (as ``what``), and later calls give None at once."""
    failed = path.with_name(path.name + ".failed")
    if failed.exists():
        log.debug("%s: ahead-of-time build failed before, see %s", what, failed)
        return None
    try:
        if not path.exists():
            _build_locked(path, directory, module)
        return getattr(_load(path), name)
    except Exception as exc:  # no compiler, a broken build: the JIT does the same work
        reason = str(exc).strip() or type(exc).__name__
        with contextlib.suppress(OSError):  # read-only checkout: the next process warns again
            failed.write_text(reason + "\n")
        log.warning(
            "%s: no ahead-of-time build (%s), using numba's JIT; %s has the details",
            what,
            reason.splitlines()[-1],
            failed,
        )
        return None


@functools.cache
def kernel() -> tuple[str, Simulate]:
    """(source, simulate) of the fastest kernel this process can run, chosen on first use:
    'aot' (the prebuilt module), 'jit' (numba) or 'python' (no numba)."""
    if os.environ.get("STRATLENS_KERNEL", "").lower() != "jit":
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


def _build_locked(path: Path, directory: Path, module: str = "analytics._kernel_aot") -> None:
    """Build in a subprocess running ``python -m module --dir directory`` (its output kept
    from ours) unless another process, holding the lock before us, just did."""
    import fcntl  # POSIX only; elsewhere the ImportError means: use the JIT

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{module.rsplit('.', 1)[-1]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return
        path_entries = [str(HERE.parent), os.environ.get("PYTHONPATH", "")]
        done = subprocess.run(
            [sys.executable, "-m", module, "--dir", str(directory)],
            cwd=HERE.parent,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path_entries))},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"the build failed:\n{done.stdout}{done.stderr}")


def _load(path: Path):
    """Import the extension module at ``path`` (its name is the file's, the key included)."""
    spec = importlib.util.spec_from_file_location(path.name.split(".")[0], path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not an extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dir", type=Path, default=BUILD_DIR, help="where to put the build")
    args = parser.parse_args(argv)
    print(build(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
