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
import secrets
import stat
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


class ExportTargetError(OSError):
    """The export target cannot take a file: the message names it and says why."""


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
        """Write a stored config to ``path`` (pretty JSON), ready to share or import elsewhere.

        Returns the file written. A symlink is followed (the file it points to is written);
        the target must be a regular file or not exist yet, in an existing folder; the file
        is written beside it and renamed over it, keeping an existing file's permissions
        (a new one gets the umask's). Raises ExportTargetError naming the target.
        """
        config = self.get(name).config
        target = _export_target(Path(path))
        _atomic_write(target, config, create_parent=False, label=str(path))
        return target

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


MAX_CONFIG_BYTES = 1 << 20
"""A strategy config is a few hundred bytes; a bigger file is refused before it is parsed."""


def read_config_file(path: Path) -> Any:
    """The JSON document in ``path``; StrategyConfigError (one problem, where and what) for a
    missing, unreadable, oversized, non-UTF-8, malformed or absurdly nested file."""

    def fail(where: str, found: str, expected: str) -> StrategyConfigError:
        return StrategyConfigError([ConfigProblem(where, found, expected)], str(path))

    try:
        if path.is_dir():
            raise fail("", "a directory", "a JSON file")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise fail("", "no such file", "an existing file") from None
    except OSError as exc:
        raise fail("", exc.strerror or type(exc).__name__, "a readable file") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise fail("", f"more than {MAX_CONFIG_BYTES:,} bytes", "a strategy config (a few KB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail(f"byte {exc.start} (line {line})", f"byte 0x{data[exc.start]:02x}",
                   "UTF-8 text") from None  # fmt: skip
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"line {exc.lineno}, column {exc.colno}", exc.msg, "valid JSON") from None
    except RecursionError:
        raise fail("", "arrays or objects nested too deeply", "a strategy config") from None


_read_json = read_config_file


def _export_target(path: Path) -> Path:
    """Where an export writes: the file a symlink points to; refused unless a regular file or
    a new name in an existing folder."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise ExportTargetError(f"cannot export to {path}: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = (
            "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
        )
        raise ExportTargetError(f"cannot export to {path}: it is {kind}")
    if not target.parent.is_dir():
        raise ExportTargetError(
            f"cannot export to {path}: folder {target.parent} does not exist (create it first)"
        )
    return target


def _atomic_write(
    path: Path, document: dict[str, Any], *, create_parent: bool = True, label: str | None = None
) -> None:
    """Write beside ``path`` and rename over it: a reader never sees half a file. Errors name
    ``label`` (the path the user gave), never the temporary file."""
    label = label or str(path)
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        previous = path.stat().st_mode & 0o7777
    except OSError:
        previous = None
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:  # mode 0o666 through os.open: the kernel applies the umask, as for any new file
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ExportTargetError(f"cannot write {label}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        if previous is not None:
            os.chmod(temp, previous)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ExportTargetError(f"cannot write {label}: {exc.strerror}") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
