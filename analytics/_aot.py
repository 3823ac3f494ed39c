"""What the ahead-of-time builds of our numba loops share: the artefact's key, the build
(``numba.pycc``, atomic, older builds removed), the locked lazy build and the load.

Three modules build one: :mod:`analytics._kernel_aot` (the backtest's bar loop),
:mod:`analytics._fifo_aot` (the FIFO walk) and :mod:`analytics._execution_aot` (the TCA and
dataset loops). Each names its sources and exports; the rules are the same for all:

- Artefact: ``<directory>/<prefix><key><extension suffix>``; the key hashes the sources,
  numba's and numpy's versions and the interpreter's extension ABI, so a stale build is never
  loaded. A new build removes the older ones and their failure notes.
- Built by ``python -m <module>`` (``make`` runs each at set-up), else by the first process
  that needs it, in a subprocess whose output is kept out of ours, under a file lock, so that
  concurrent processes build once.
- A build or load that fails leaves ``<artefact>.failed`` with the reason and one warning in
  the log; later processes use the JIT without trying again until the key changes.
  ``STRATLENS_KERNEL=jit`` skips every prebuilt module (:func:`disabled`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

log = logging.getLogger("stratlens")

ROOT = Path(__file__).resolve().parent.parent  # the checkout: the build subprocess's cwd
BUILD_TIMEOUT_S = 600.0
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def disabled() -> bool:
    """``STRATLENS_KERNEL=jit``: use numba's JIT, never a prebuilt module."""
    return os.environ.get("STRATLENS_KERNEL", "").lower() == "jit"


def source_key(sources: Iterable[Path]) -> str:
    """16 hex digits naming a build of ``sources`` for this numba, numpy and Python; raises
    ImportError when numba is not installed (nothing could build it)."""
    numba = importlib.util.find_spec("numba")  # found without importing it
    if numba is None or numba.origin is None:
        raise ImportError("numba is not installed: nothing can build the compiled loops")
    digest = hashlib.sha256()
    for source in (*sources, Path(__file__), Path(numba.origin).parent / "_version.py"):
        digest.update(Path(source).read_bytes())
    abi = sysconfig.get_config_var("EXT_SUFFIX") or sys.implementation.cache_tag
    digest.update(f"{np.__version__}|{abi}".encode())
    return digest.hexdigest()[:16]


def artefact(directory: Path, prefix: str, sources: Iterable[Path]) -> Path:
    """Where the build of ``sources`` lives (it may not exist yet)."""
    return directory / f"{prefix}{source_key(sources)}{SUFFIX}"


def compile_module(path: Path, prefix: str, exports: Iterable[tuple[str, Any, Callable]]) -> Path:
    """Compile ``exports`` ((name, numba signature, Python function)) into the extension
    module ``path`` (in this process: imports numba), written atomically, and remove the
    older builds and failure notes named ``prefix*``; returns ``path``."""
    from numba.pycc import CC

    name = path.name.split(".")[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f"{name}-") as scratch:
        compiler = CC(name)
        compiler.output_dir = scratch
        for exported, signature, function in exports:
            compiler.export(exported, signature)(function)
        compiler.compile()
        os.replace(Path(scratch) / compiler.output_file, path)  # never half-written
    for old in path.parent.glob(f"{prefix}*"):
        if old.is_file() and old != path:  # older builds, failure notes (this one's too)
            old.unlink(missing_ok=True)
    return path


def prebuilt_module(
    path: Path, module: str, what: str, names: Iterable[str] = ()
) -> ModuleType | None:
    """The extension module at ``path`` with every attribute of ``names``, built first
    (``python -m module --dir <path's directory>``) if needed; None when it cannot be had:
    the reason is left in ``<path>.failed`` and logged once (as ``what``), and later calls
    give None at once."""
    failed = path.with_name(path.name + ".failed")
    if failed.exists():
        log.debug("%s: ahead-of-time build failed before, see %s", what, failed)
        return None
    try:
        if not path.exists():
            build_locked(path, module)
        loaded = load(path)
        for name in names:
            getattr(loaded, name)
        return loaded
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


def build_locked(path: Path, module: str) -> None:
    """Build in a subprocess running ``python -m module --dir <path's directory>`` (its
    output kept from ours) unless another process, holding the lock before us, just did."""
    import fcntl  # POSIX only; elsewhere the ImportError means: use the JIT

    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{module.rsplit('.', 1)[-1]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return
        path_entries = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        done = subprocess.run(
            [sys.executable, "-m", module, "--dir", str(directory)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path_entries))},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or not path.exists():
            raise RuntimeError(f"the build failed:\n{done.stdout}{done.stderr}")


def load(path: Path) -> ModuleType:
    """Import the extension module at ``path`` (its name is the file's, the key included)."""
    spec = importlib.util.spec_from_file_location(path.name.split(".")[0], path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not an extension module")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def main(build: Callable[[Path], Path], default: Path, argv: list[str] | None = None) -> int:
    """``python -m <module> [--dir DIR]``: build now (``build(DIR)``), print the path."""
    import argparse

    parser = argparse.ArgumentParser(description="build the compiled loops now")
    parser.add_argument("--dir", type=Path, default=default, help="where to put the build")
    print(build(parser.parse_args(argv).dir))
    return 0
