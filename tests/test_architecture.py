"""The shape of the code: imports point down the layers of docs/architecture.md, and no module
outgrows one responsibility.

The rules are data in pyproject.toml (``[tool.stratlens.architecture]``); this file reads every
module's imports with ``ast`` (top-level, inside functions and under ``TYPE_CHECKING`` alike: a
lazy import is still a dependency) and reports each one that breaks them, naming the file, the
line and the rule.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = {"tests", "bench", "scripts"}  # packages that may import anything


@dataclass(frozen=True)
class Rules:
    layer_of: dict[str, int]  # top-level package -> layer index (0 = lowest)
    layers: list[list[str]]
    forbidden: dict[str, list[str]]  # package -> packages it must never import
    max_module_lines: int

    @classmethod
    def load(cls, pyproject: Path = ROOT / "pyproject.toml") -> Rules:
        table = tomllib.loads(pyproject.read_text())["tool"]["stratlens"]["architecture"]
        layers = [list(layer) for layer in table["layers"]]
        layer_of = {pkg: i for i, layer in enumerate(layers) for pkg in layer}
        return cls(layer_of, layers, dict(table["forbidden"]), int(table["max_module_lines"]))


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: {self.rule}"


def owner(path: Path, root: Path = ROOT) -> str | None:
    """The top-level package (or module, for app.py) a file belongs to; None outside the app."""
    parts = path.relative_to(root).parts
    top = parts[0] if len(parts) > 1 else path.stem
    return None if top in OUTSIDE else top


def imported_modules(tree: ast.Module, path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree, relative ones resolved."""
    found: list[tuple[int, str]] = []
    package = list(path.relative_to(root).parent.parts)  # `from . import` starts here
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def check_file(path: Path, rules: Rules, root: Path = ROOT) -> list[Violation]:
    src = owner(path, root)
    if src is None or src not in rules.layer_of:
        return []
    rel = path.relative_to(root).as_posix()
    out: list[Violation] = []
    for line, module in imported_modules(ast.parse(path.read_text()), path, root):
        top = module.split(".")[0]
        if top == src or top not in rules.layer_of:
            continue  # its own package, or a third-party / standard library module
        if top in rules.forbidden.get(src, []):
            out.append(Violation(rel, line, module, f"{src}/ must never import {top}/"))
        elif rules.layer_of[top] > rules.layer_of[src]:
            out.append(Violation(rel, line, module, f"{top}/ is above {src}/"))
        elif rules.layer_of[top] == rules.layer_of[src]:
            out.append(
                Violation(rel, line, module, f"{src}/ and {top}/ are one layer: independent")
            )
    return out


def app_files(root: Path = ROOT) -> list[Path]:
    """The app's modules: top-level .py files and every module of a top-level package (a
    directory with an __init__.py). Virtual environments, caches and data are not packages."""
    files = list(root.glob("*.py"))
    for package in root.iterdir():
        if package.is_dir() and (package / "__init__.py").is_file():
            files.extend(package.rglob("*.py"))
    return sorted(p for p in files if owner(p, root) is not None)


def test_every_top_level_package_has_a_layer() -> None:
    rules = Rules.load()
    tops = {owner(p) for p in app_files()}
    unplaced = sorted(t for t in tops if t is not None and t not in rules.layer_of)
    assert not unplaced, f"place these in [tool.stratlens.architecture] layers: {unplaced}"


def test_imports_point_down_the_layers() -> None:
    rules = Rules.load()
    violations = [v for p in app_files() for v in check_file(p, rules)]
    assert not violations, "\n".join(map(str, violations))


def test_no_module_outgrows_one_responsibility() -> None:
    limit = Rules.load().max_module_lines
    too_long = {
        p.relative_to(ROOT).as_posix(): n
        for p in app_files()
        if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > limit
    }
    assert not too_long, f"split by responsibility (limit {limit} lines): {too_long}"


# -- the checker itself finds what it must ------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    def write(rel: str, text: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write(".venv-x/lib/site/upward.py", "from dashboard import x\n")  # not a package of ours
    write("market/__init__.py", "")
    write("market/candles.py", "import numpy\nfrom config.settings import Settings\n")
    write("market/feeds.py", "def f():\n    from services.live import LiveMarket\n")
    write("analytics/__init__.py", "")
    write("analytics/io.py", "from database import repositories\n")
    write("analytics/pure.py", "from . import io\nfrom .io import x\nfrom market import candles\n")
    write("cli/__init__.py", "")
    write("cli/run.py", "from dashboard.server import create_app\n")
    write("dashboard/__init__.py", "")
    write("dashboard/page.py", "from api.routes import x\n")
    write("tests/test_x.py", "import app\n")
    return tmp_path


def _rules() -> Rules:
    layers = [
        ["config"], ["market"], ["database"], ["analytics"], ["services"], ["dashboard", "api"],
        ["cli"],
    ]  # fmt: skip
    layer_of = {pkg: i for i, layer in enumerate(layers) for pkg in layer}
    return Rules(layer_of, layers, {"analytics": ["database"]}, 600)


def test_checker_reports_upward_forbidden_and_sibling_imports(tree: Path) -> None:
    found = [str(v) for p in app_files(tree) for v in check_file(p, _rules(), tree)]
    # cli importing dashboard (lower), relative and lower imports, and tests: all allowed
    assert found == [
        "analytics/io.py:1: imports database: analytics/ must never import database/",
        "dashboard/page.py:1: imports api.routes: dashboard/ and api/ are one layer: independent",
        "market/feeds.py:2: imports services.live: services/ is above market/",
    ]


def test_checker_resolves_relative_imports(tree: Path) -> None:
    modules = imported_modules(
        ast.parse((tree / "analytics/pure.py").read_text()), tree / "analytics/pure.py", tree
    )
    assert [m for _, m in modules] == ["analytics", "analytics.io", "market"]


def test_no_merge_conflict_markers_are_left():
    """A half-resolved merge must not land: no tracked text file holds a conflict marker."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    listed = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    markers = ("<" * 7 + " ", ">" * 7 + " ")
    found = []
    for name in listed.stdout.splitlines():
        path = root / name
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".js", ".css", ".json", ".yml"}:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if line.startswith(markers):
                found.append(f"{name}:{number}")
    assert found == []
