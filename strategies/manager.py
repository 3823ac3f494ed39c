"""User strategies: JSON configs kept in config/strategies/user_strategies/, one file each.

>>> manager = StrategyManager(USER_DIR)
>>> manager.create({"strategy": "ema_crossover", "name": "EMA fast", "params": {"fast": 8}})
>>> manager.list()              # [UserStrategy(name='EMA fast', strategy='ema_crossover', ...)]
>>> manager.build("EMA fast")   # EmaCrossover(fast=8, slow=26, direction='long')
>>> manager.export("EMA fast", Path("ema.json"))
>>> manager.import_file(Path("ema.json"), replace=True)

Every config is validated against its JSON Schema (and the strategy's own rules) before it is
written; an invalid one raises StrategyConfigError listing every problem, and nothing stored
changes. Files are written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strategies.base import BaseStrategy
from strategies.config import (
    CONFIG_DIR,
    SCHEMAS_DIR,
    TEMPLATES_DIR,
    ConfigProblem,
    StrategyConfigError,
    build,
    validate_config,
)

USER_DIR = CONFIG_DIR / "user_strategies"


class StrategyNotFoundError(LookupError):
    """No user strategy of that name (the message lists the stored ones)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StrategyExistsError(ValueError):
    """A user strategy of that name is already stored."""


@dataclass(frozen=True)
class UserStrategy:
    name: str
    strategy: str
    params: dict[str, Any]
    description: str
    enabled: bool
    path: Path

    @property
    def config(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "params": dict(self.params),
        }


def slug(name: str) -> str:
    """The file stem for a strategy name: ``"EMA 12/26 (both)"`` -> ``"ema-12-26-both"``."""
    text = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    return text or "strategy"


class StrategyManager:
    def __init__(
        self,
        user_dir: Path = USER_DIR,
        schemas_dir: Path = SCHEMAS_DIR,
        templates_dir: Path = TEMPLATES_DIR,
    ) -> None:
        self.user_dir = Path(user_dir)
        self.schemas_dir = schemas_dir
        self.templates_dir = templates_dir

    # -- reading ------------------------------------------------------------------------------
    def templates(self) -> list[dict[str, Any]]:
        """The shipped templates, one per implementation, every parameter at its default."""
        return [json.loads(p.read_text()) for p in sorted(self.templates_dir.glob("*.json"))]

    def list(self) -> list[UserStrategy]:
        """Stored user strategies, by name. A file that no longer validates (edited by hand)
        raises StrategyConfigError naming the file, rather than being skipped silently."""
        if not self.user_dir.exists():
            return []
        stored = [self._load(path) for path in sorted(self.user_dir.glob("*.json"))]
        return sorted(stored, key=lambda s: s.name.lower())

    def get(self, name: str) -> UserStrategy:
        path = self._path(name)
        if not path.exists():
            known = ", ".join(s.name for s in self.list()) or "none stored"
            raise StrategyNotFoundError(f"no user strategy named {name!r}; stored: {known}")
        return self._load(path)

    def build(self, name: str) -> BaseStrategy:
        """The strategy object of a stored config."""
        stored = self.get(name)
        return build(stored.config, source=str(stored.path))

    # -- writing ------------------------------------------------------------------------------
    def create(self, config: Any) -> UserStrategy:
        self._check(config, "new strategy")
        path = self._path(config["name"])
        if path.exists():
            raise StrategyExistsError(
                f"a user strategy named {self._load(path).name!r} is stored in {path.name}; "
                "update it or choose another name"
            )
        return self._write(path, config)

    def update(self, name: str, config: Any) -> UserStrategy:
        """Replace a stored config (the new one may carry a new name: the file moves)."""
        old = self.get(name)
        self._check(config, f"update of {name!r}")
        new_path = self._path(config["name"])
        if new_path != old.path and new_path.exists():
            raise StrategyExistsError(f"a user strategy named {config['name']!r} already exists")
        stored = self._write(new_path, config)
        if new_path != old.path:
            old.path.unlink()
        return stored

    def delete(self, name: str) -> None:
        self.get(name).path.unlink()

    def import_file(self, path: Path, *, replace: bool = False) -> UserStrategy:
        """Store the config in ``path`` (after validation); ``replace`` overwrites a namesake."""
        config = _read_json(Path(path))
        self._check(config, str(path))
        target = self._path(config["name"])
        if target.exists() and not replace:
            raise StrategyExistsError(
                f"{path}: a user strategy named {config['name']!r} exists; import with replace"
            )
        return self._write(target, config)

    def export(self, name: str, path: Path) -> Path:
        """Write a stored config to ``path`` (pretty JSON), ready to share or import elsewhere."""
        _atomic_write(Path(path), self.get(name).config)
        return Path(path)

    # -- internals ----------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.user_dir / f"{slug(name)}.json"

    def _check(self, config: Any, source: str) -> None:
        problems = validate_config(config, self.schemas_dir)
        if problems:
            raise StrategyConfigError(problems, source)

    def _load(self, path: Path) -> UserStrategy:
        config = _read_json(path)
        self._check(config, str(path))
        return _user_strategy(config, path)

    def _write(self, path: Path, config: dict[str, Any]) -> UserStrategy:
        normal = {
            "strategy": config["strategy"],
            "name": config["name"].strip(),
            "description": config.get("description", ""),
            "enabled": config.get("enabled", True),
            "params": dict(config.get("params", {})),
        }
        _atomic_write(path, normal)
        return _user_strategy(normal, path)


def _user_strategy(config: dict[str, Any], path: Path) -> UserStrategy:
    return UserStrategy(
        name=config["name"],
        strategy=config["strategy"],
        params=dict(config.get("params", {})),
        description=config.get("description", ""),
        enabled=config.get("enabled", True),
        path=path,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        problem = ConfigProblem("", str(path), "an existing file")
        raise StrategyConfigError([problem], str(path)) from None
    except json.JSONDecodeError as exc:
        problem = ConfigProblem(f"line {exc.lineno}, column {exc.colno}", exc.msg, "valid JSON")
        raise StrategyConfigError([problem], str(path)) from None


def _atomic_write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
