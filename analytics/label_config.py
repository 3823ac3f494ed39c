"""The label configuration: config/labels.json, checked against config/schemas/labels.schema.json.

>>> config = load_label_config()                       # the shipped config/labels.json
>>> config.volatility.high_percentile, config.enabled >= {"stop_loss"}
(80, True)
>>> load_label_config("my_labels.json")                # keys it leaves out: config/labels.json's
>>> parse_label_config({"labels": {"quick_exit": {"max_hold_bars": -1}}})
Traceback (most recent call last):
LabelConfigError: label config: 1 problem(s)
  - $.labels.quick_exit.max_hold_bars: -1 is less than the minimum of 0

A config is a JSON object of three sections, ``context`` (the market context's indicators and
thresholds), ``entry_sizes`` (the trailing sizes) and ``labels`` (one object per label, each
with ``enabled``). Every key is optional: what a user's file leaves out is taken from
config/labels.json (objects merge key by key; a list replaces the list). Each problem is
named by its JSON path, with every one listed; rules between two keys (a low threshold below
its high one) are checked after the schema. The rules themselves: docs/labels.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from config.settings import ROOT
from indicators.base import closest

LABEL_CONFIG_PATH = ROOT / "config" / "labels.json"
LABEL_SCHEMA_PATH = ROOT / "config" / "schemas" / "labels.schema.json"

LABELS = (
    # behavioural
    "trend_following",
    "mean_reversion",
    "momentum",
    "breakout",
    "scalping",
    # market environment
    "high_volatility",
    "low_volatility",
    "market_open",
    "market_close",
    "news_event",
    # strategy pattern
    "aggressive_entry",
    "conservative_entry",
    "quick_exit",
    "hold_long",
    "stop_loss",
)


class LabelConfigError(ValueError):
    """A label config that cannot be used; ``problems`` lists (JSON path, reason) of each."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "label config") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {path}: {reason}" for path, reason in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


@dataclass(frozen=True)
class Volatility:
    atr_period: int
    rank_window: int
    high_percentile: float
    low_percentile: float


@dataclass(frozen=True)
class Trend:
    sma_period: int
    slope_bars: int
    band_atr: float


@dataclass(frozen=True)
class VolumeProfile:
    window: int
    high_z: float
    low_z: float


@dataclass(frozen=True)
class PriceLevel:
    donchian_period: int
    near_atr: float


@dataclass(frozen=True)
class Sessions:
    pre_market_minutes: int
    utc_sessions: tuple[tuple[float, str], ...]  # (start hour UTC, name), by start hour


@dataclass(frozen=True)
class EntrySizes:
    window: int
    min_history: int


@dataclass(frozen=True)
class MeanReversion:
    rsi_period: int
    oversold: float
    overbought: float
    bollinger_period: int
    bollinger_stddev: float


@dataclass(frozen=True)
class Momentum:
    lookback_bars: int
    min_move_atr: float


@dataclass(frozen=True)
class Breakout:
    beyond_atr: float


@dataclass(frozen=True)
class Scalping:
    max_hold_minutes: float
    max_move_atr: float


@dataclass(frozen=True)
class NewsWindow:
    minutes_before: float
    minutes_after: float


@dataclass(frozen=True)
class StopLoss:
    loss_atr: float
    reasons: frozenset[str]


@dataclass(frozen=True)
class LabelConfig:
    """Every threshold of docs/labels.md; ``enabled``: the labels given at all."""

    volatility: Volatility
    trend: Trend
    volume: VolumeProfile
    price_level: PriceLevel
    sessions: Sessions
    entry_sizes: EntrySizes
    mean_reversion: MeanReversion
    momentum: Momentum
    breakout: Breakout
    scalping: Scalping
    market_open_minutes: float
    market_close_minutes: float
    news: NewsWindow
    aggressive_min_vs_median: float
    conservative_max_vs_median: float
    quick_exit_max_bars: float
    hold_long_min_bars: float
    stop_loss: StopLoss
    enabled: frozenset[str]


def load_label_config(path: str | Path | None = None) -> LabelConfig:
    """The config in ``path`` (None: config/labels.json) over config/labels.json's values;
    LabelConfigError naming the file, each JSON path and its reason."""
    source = Path(path) if path is not None else LABEL_CONFIG_PATH
    try:
        document = json.loads(source.read_text())
    except json.JSONDecodeError as exc:
        raise LabelConfigError(
            [("$", f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")], str(source)
        ) from None
    return parse_label_config(document, str(source))


def parse_label_config(document: Any, source: str = "label config") -> LabelConfig:
    """The LabelConfig of a decoded JSON document (missing keys from config/labels.json)."""
    schema = json.loads(LABEL_SCHEMA_PATH.read_text())
    validator = Draft202012Validator(schema)
    problems = _schema_problems(validator, document)
    if problems:
        raise LabelConfigError(problems, source)
    defaults = json.loads(LABEL_CONFIG_PATH.read_text())
    merged = _merge(defaults, document)
    problems = _schema_problems(validator, merged) or _rule_problems(merged)
    if problems:  # the shipped defaults themselves, or a rule across a user's and a default key
        raise LabelConfigError(problems, source)
    return _build(merged)


def _schema_problems(validator: Draft202012Validator, document: Any) -> list[tuple[str, str]]:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [problem for error in errors for problem in _describe(error)]


def _describe(error: ValidationError) -> list[tuple[str, str]]:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return [
            (f"{error.json_path}.{key}", f"unknown key{closest(key, allowed)}; allowed: "
             + ", ".join(allowed))
            for key in error.instance
            if key not in allowed
        ]  # fmt: skip
    return [(error.json_path, error.message)]


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out


def _rule_problems(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules between two keys that a JSON Schema does not say: (low, high) pairs in order and
    the UTC session names and start hours distinct."""
    context, labels = document["context"], document["labels"]
    pairs = [
        ("$.context.volatility", context["volatility"], "low_percentile", "high_percentile"),
        ("$.context.volume", context["volume"], "low_z", "high_z"),
        ("$.labels.mean_reversion", labels["mean_reversion"], "oversold", "overbought"),
    ]
    problems = [
        (f"{where}.{low}", f"{section[low]} must be below {high} ({section[high]})")
        for where, section, low, high in pairs
        if not section[low] < section[high]
    ]
    conservative = labels["conservative_entry"]["max_size_vs_median"]
    aggressive = labels["aggressive_entry"]["min_size_vs_median"]
    if not conservative < aggressive:
        problems.append(
            (
                "$.labels.conservative_entry.max_size_vs_median",
                f"{conservative} must be below aggressive_entry.min_size_vs_median ({aggressive})",
            )
        )
    sessions = context["session"]["utc_sessions"]
    for key in ("name", "start_hour"):
        seen: set[Any] = set()
        for i, session in enumerate(sessions):
            if session[key] in seen:
                problems.append(
                    (f"$.context.session.utc_sessions[{i}].{key}", f"{session[key]!r} repeated")
                )
            seen.add(session[key])
    return problems


def _params(section: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if key != "enabled"}


def _build(document: Mapping[str, Any]) -> LabelConfig:
    context, labels = document["context"], document["labels"]
    session = context["session"]
    stop = labels["stop_loss"]
    return LabelConfig(
        volatility=Volatility(**context["volatility"]),
        trend=Trend(**context["trend"]),
        volume=VolumeProfile(**context["volume"]),
        price_level=PriceLevel(**context["price_level"]),
        sessions=Sessions(
            pre_market_minutes=session["pre_market_minutes"],
            utc_sessions=tuple(
                sorted((float(s["start_hour"]), s["name"]) for s in session["utc_sessions"])
            ),
        ),
        entry_sizes=EntrySizes(**document["entry_sizes"]),
        mean_reversion=MeanReversion(**_params(labels["mean_reversion"])),
        momentum=Momentum(**_params(labels["momentum"])),
        breakout=Breakout(**_params(labels["breakout"])),
        scalping=Scalping(**_params(labels["scalping"])),
        market_open_minutes=labels["market_open"]["minutes"],
        market_close_minutes=labels["market_close"]["minutes"],
        news=NewsWindow(**_params(labels["news_event"])),
        aggressive_min_vs_median=labels["aggressive_entry"]["min_size_vs_median"],
        conservative_max_vs_median=labels["conservative_entry"]["max_size_vs_median"],
        quick_exit_max_bars=labels["quick_exit"]["max_hold_bars"],
        hold_long_min_bars=labels["hold_long"]["min_hold_bars"],
        stop_loss=StopLoss(stop["loss_atr"], frozenset(stop["reasons"])),
        enabled=frozenset(name for name in LABELS if labels[name]["enabled"]),
    )


__all__ = [
    "LABELS",
    "LABEL_CONFIG_PATH",
    "LABEL_SCHEMA_PATH",
    "LabelConfig",
    "LabelConfigError",
    "load_label_config",
    "parse_label_config",
]
