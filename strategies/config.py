"""Strategy configs: the JSON a trader writes, its JSON Schema, validation listing every problem.

A config is ``{"strategy": "ema_crossover", "name": "EMA 12/26 both ways", "description": "...",
"params": {"fast": 12, "slow": 26, "direction": "both"}}``. Each strategy has a JSON Schema in
config/strategies/schemas/ and a template in config/strategies/templates/, both generated from
the strategy's parameter declarations (one source of truth) by
``python -m strategies.config --write``; a test fails if the committed files drift.

>>> problems = validate_config({"strategy": "ema_crossover", "name": "x", "params": {"fast": 1}})
>>> str(problems[0])
"params.fast: 1 is invalid: expected a number >= 2"
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from indicators.base import closest
from strategies import registry
from strategies.base import BaseStrategy, StrategyParamError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config" / "strategies"
SCHEMAS_DIR = CONFIG_DIR / "schemas"
TEMPLATES_DIR = CONFIG_DIR / "templates"
CONFIG_KEYS = ("strategy", "name", "description", "enabled", "params")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config: where (a dotted path), the value found, what was expected."""

    path: str
    value: Any
    expected: str

    def __str__(self) -> str:
        return f"{self.path or '(config)'}: {self.value!r} is invalid: expected {self.expected}"


class StrategyConfigError(ValueError):
    """A config that cannot be used; ``problems`` lists every one, not just the first."""

    def __init__(self, problems: list[ConfigProblem], source: str = "strategy config") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


def config_schema(cls: type[BaseStrategy]) -> dict[str, Any]:
    """The JSON Schema of a whole config for strategy ``cls``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://stratlens.invalid/schemas/strategies/{cls.name}.schema.json",
        "title": f"{cls.title or cls.name} strategy config",
        "type": "object",
        "required": ["strategy", "name"],
        "additionalProperties": False,
        "properties": {
            "strategy": {"const": cls.name},
            "name": {"type": "string", "minLength": 1, "maxLength": 80, "pattern": r"\S"},
            "description": {"type": "string", "maxLength": 2000},
            "enabled": {"type": "boolean", "default": True},
            "params": cls.params_schema(),
        },
    }


def template(cls: type[BaseStrategy]) -> dict[str, Any]:
    """A ready-to-edit config with every parameter at its default."""
    first_line = (cls.__doc__ or cls.title).strip().splitlines()[0]
    summary = first_line.split(": ``")[0].rstrip(".") + "."  # the prose, not the example
    return {
        "strategy": cls.name,
        "name": cls.title or cls.name,
        "description": summary,
        "enabled": True,
        "params": {p.name: p.default for p in cls.params},
    }


def load_schema(name: str, schemas_dir: Path = SCHEMAS_DIR) -> dict[str, Any]:
    path = schemas_dir / f"{name}.schema.json"
    return json.loads(path.read_text())


def validate_config(config: Any, schemas_dir: Path = SCHEMAS_DIR) -> list[ConfigProblem]:
    """Every problem of ``config`` (empty when it is valid), checked against its JSON Schema
    and then the strategy's cross-parameter rules (fast < slow ...)."""
    if not isinstance(config, Mapping):
        return [ConfigProblem("", _short(config), "a JSON object with strategy, name and params")]
    name = config.get("strategy")
    known = [cls.name for cls in registry.all_strategies()]
    if name not in known:
        expected = "one of " + ", ".join(known) + (closest(str(name), known) if name else "")
        return [ConfigProblem("strategy", name, expected.replace(" (did", "; (did"))]
    validator = Draft202012Validator(load_schema(name, schemas_dir))
    problems = [
        problem
        for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
        for problem in _problems(error, config)
    ]
    if not problems:
        try:
            registry.get(name).validate(config.get("params", {}))
        except StrategyParamError as exc:
            problems.append(ConfigProblem(f"params.{exc.parameter}", exc.value, exc.allowed))
    return problems


def build(config: Any, source: str = "strategy config") -> BaseStrategy:
    """The strategy a valid config describes; StrategyConfigError listing every problem."""
    problems = validate_config(config)
    if problems:
        raise StrategyConfigError(problems, source)
    return registry.create(config["strategy"], **config.get("params", {}))


def _problems(error: ValidationError, config: Mapping[str, Any]) -> list[ConfigProblem]:
    path = ".".join(str(part) for part in error.absolute_path)
    where = f"{path}." if path else ""
    kind, rule = error.validator, error.validator_value
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [key for key in error.instance if key not in allowed]
        return [
            ConfigProblem(
                f"{where}{key}",
                error.instance[key],
                "no such key" + closest(key, allowed) + f"; allowed: {', '.join(allowed)}",
            )
            for key in extra
        ]
    if kind == "required":
        missing = [key for key in rule if key not in error.instance]
        return [ConfigProblem(f"{where}{key}", None, "a value (required)") for key in missing]
    return [ConfigProblem(path, _short(error.instance), _expected(kind, rule, error.message))]


def _expected(kind: str, rule: Any, message: str) -> str:
    match kind:
        case "minimum":
            return f"a number >= {rule}"
        case "maximum":
            return f"a number <= {rule}"
        case "type":
            return f"a value of type {rule}"
        case "enum":
            return "one of " + ", ".join(repr(v) for v in rule)
        case "const":
            return repr(rule)
        case "minLength":
            return f"a text of at least {rule} character(s)"
        case "maxLength":
            return f"a text of at most {rule} characters"
        case "pattern":
            return "a non-blank text"
    return message


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def write_files(schemas_dir: Path = SCHEMAS_DIR, templates_dir: Path = TEMPLATES_DIR) -> list[Path]:
    """(Re)generate every schema and template file from the strategy declarations."""
    written = []
    for cls in registry.all_strategies():
        for folder, suffix, document in (
            (schemas_dir, ".schema.json", config_schema(cls)),
            (templates_dir, ".json", template(cls)),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{cls.name}{suffix}"
            path.write_text(json.dumps(document, indent=2) + "\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate strategy schemas and templates")
    parser.add_argument("--write", action="store_true", help="write the files (default: list)")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_files():
            print(path.relative_to(CONFIG_DIR.parent.parent))
    else:
        print("\n".join(cls.name for cls in registry.all_strategies()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
