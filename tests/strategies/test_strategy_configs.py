"""Strategy configs: generated schemas and templates, validation listing every problem, and the
StrategyManager's create/update/delete/list/import/export on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from strategies import registry
from strategies.config import (
    SCHEMAS_DIR,
    TEMPLATES_DIR,
    StrategyConfigError,
    build,
    config_schema,
    template,
    validate_config,
)
from strategies.manager import (
    StrategyExistsError,
    StrategyManager,
    StrategyNotFoundError,
    slug,
)

EMA = {"strategy": "ema_crossover", "name": "EMA 8/21 both", "params": {"fast": 8, "slow": 21}}


@pytest.fixture
def manager(tmp_path: Path) -> StrategyManager:
    return StrategyManager(tmp_path / "user_strategies")


@pytest.mark.parametrize("cls", registry.all_strategies(), ids=lambda c: c.name)
def test_committed_schema_and_template_match_the_declarations(cls):
    """`python -m strategies.config --write` regenerates them; drift fails here."""
    schema = json.loads((SCHEMAS_DIR / f"{cls.name}.schema.json").read_text())
    assert schema == config_schema(cls)
    Draft202012Validator.check_schema(schema)
    shipped = json.loads((TEMPLATES_DIR / f"{cls.name}.json").read_text())
    assert shipped == template(cls)
    assert validate_config(shipped) == []
    assert build(shipped).config == cls().config  # the template holds the defaults


def test_every_problem_is_listed_with_path_value_and_expectation():
    config = {
        "strategy": "ema_crossover",
        "name": "",
        "colour": "red",
        "params": {"fast": 1, "slwo": 30, "direction": "sideways", "slow": "26"},
    }
    problems = {p.path: p for p in validate_config(config)}
    assert set(problems) == {
        "name",
        "colour",
        "params.fast",
        "params.slwo",
        "params.direction",
        "params.slow",
    }
    assert problems["params.fast"].value == 1
    assert problems["params.fast"].expected == "a number >= 2"
    assert "did you mean 'slow'" in problems["params.slwo"].expected
    assert "'long'" in problems["params.direction"].expected
    assert problems["params.slow"].expected == "a value of type integer"
    assert problems["colour"].expected.startswith("no such key")
    assert str(problems["params.fast"]) == "params.fast: 1 is invalid: expected a number >= 2"


def test_cross_parameter_rules_are_checked_after_the_schema():
    problems = validate_config(
        {"strategy": "ema_crossover", "name": "x", "params": {"fast": 30, "slow": 10}}
    )
    assert len(problems) == 1
    assert problems[0].path == "params.fast"
    assert "fast < slow" in problems[0].expected


@pytest.mark.parametrize(
    ("config", "path", "expected"),
    [
        ({"strategy": "ema_crosover", "name": "x"}, "strategy", "did you mean 'ema_crossover'"),
        ({"name": "x"}, "strategy", "one of sma_crossover"),
        ([1, 2], "", "a JSON object"),
        ({"strategy": "rsi_reversion"}, "name", "required"),
    ],
)
def test_unusable_configs_say_why(config, path, expected):
    problems = validate_config(config)
    assert problems[0].path == path
    assert expected in problems[0].expected


def test_build_refuses_an_invalid_config_naming_every_problem():
    with pytest.raises(StrategyConfigError) as caught:
        build({"strategy": "macd_cross", "name": "m", "params": {"fast": 0, "signal": 0}})
    assert len(caught.value.problems) == 2
    assert "params.fast" in str(caught.value)
    assert "params.signal" in str(caught.value)


def test_create_list_build_update_delete(manager):
    stored = manager.create(EMA)
    assert stored.path.name == "ema-8-21-both.json"
    assert [s.name for s in manager.list()] == ["EMA 8/21 both"]
    assert manager.build("EMA 8/21 both").config == {"fast": 8, "slow": 21, "direction": "long"}
    with pytest.raises(StrategyExistsError):
        manager.create(EMA)
    renamed = manager.update("EMA 8/21 both", {**EMA, "name": "EMA swing", "params": {"fast": 5}})
    assert renamed.path.name == "ema-swing.json"
    assert not stored.path.exists()
    assert manager.get("EMA swing").params == {"fast": 5}
    manager.delete("EMA swing")
    assert manager.list() == []
    with pytest.raises(StrategyNotFoundError, match="no user strategy named 'EMA swing'"):
        manager.get("EMA swing")


def test_an_invalid_update_changes_nothing_stored(manager):
    manager.create(EMA)
    before = (manager.user_dir / "ema-8-21-both.json").read_bytes()
    with pytest.raises(StrategyConfigError):
        manager.update("EMA 8/21 both", {**EMA, "params": {"fast": 50, "slow": 20}})
    assert (manager.user_dir / "ema-8-21-both.json").read_bytes() == before
    assert sorted(p.name for p in manager.user_dir.iterdir()) == ["ema-8-21-both.json"]


def test_export_then_import_round_trips(manager, tmp_path):
    manager.create({**EMA, "description": "swing trades", "enabled": False})
    exported = manager.export("EMA 8/21 both", tmp_path / "shared.json")
    other = StrategyManager(tmp_path / "elsewhere")
    imported = other.import_file(exported)
    assert imported.config == manager.get("EMA 8/21 both").config
    with pytest.raises(StrategyExistsError):
        other.import_file(exported)
    assert other.import_file(exported, replace=True).name == "EMA 8/21 both"


def test_import_of_a_broken_file_names_the_file_and_where(manager, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"strategy": "ema_crossover", "name": "x",\n "params": {"fast": 8,}}')
    with pytest.raises(StrategyConfigError) as caught:
        manager.import_file(broken)
    assert str(broken) in str(caught.value)
    assert caught.value.problems[0].path == "line 2, column 23"  # the "}" after the trailing comma
    assert manager.list() == []


def test_a_hand_edited_file_that_no_longer_validates_is_reported_by_name(manager):
    stored = manager.create(EMA)
    stored.path.write_text(json.dumps({**EMA, "params": {"fast": -3}}))
    with pytest.raises(StrategyConfigError, match=r"ema-8-21-both\.json"):
        manager.list()


def test_templates_are_offered(manager):
    names = [t["strategy"] for t in manager.templates()]
    assert sorted(names) == sorted(cls.name for cls in registry.all_strategies())


def test_slug():
    assert slug("EMA 12/26 (both)") == "ema-12-26-both"
    assert slug("  !!  ") == "strategy"
