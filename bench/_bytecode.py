"""Fresh processes timed as a user's machine runs them: with our modules' bytecode cached.

Python writes ``__pycache__`` on a module's first import, so every run of a command after the
first loads compiled bytecode; pip compiles the peers' installed packages at install time. A
shell with ``PYTHONDONTWRITEBYTECODE=1`` (this project's CI machines set it) never writes ours,
and a fresh process then compiles each of our modules again (0.2-0.4 s of CPU for the paper
CLI's ~200 modules). The benches compile our sources once, untimed, before they time a fresh
process, so both sides of a comparison start from bytecode.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_sources(root: Path = ROOT) -> None:
    """Compile app.py and every package of the repository (what a first run leaves behind)."""
    compileall.compile_file(str(root / "app.py"), quiet=1)
    for package in sorted(root.iterdir()):
        if (package / "__init__.py").is_file() and package.name != "tests":
            compileall.compile_dir(str(package), quiet=1)


def import_floor(modules: str = "pandas, sqlalchemy.orm") -> float:
    """Seconds a fresh interpreter takes to import ``modules`` and exit: the least any command
    built on them can take."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
    return time.perf_counter() - t0
