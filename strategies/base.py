"""BaseStrategy: declared parameters and indicators, vectorized signals, and a live twin.

>>> strategy = create("sma_crossover", fast=10, slow=30, direction="both")
>>> strategy.required_indicators()                 # [request("sma", timeperiod=10), ...]
>>> result = strategy.generate(load_sample("SP500"), symbol="SP500", timeframe="1d")
>>> live = strategy.live(history)                  # position and previous values at its end
>>> live.on_candle(candle, {key: state.update(candle) for key, state in states.items()})
[StrategySignal(..., signal_type='entry_long', ...)]

A strategy names its inputs (``inputs()``: alias -> (indicator request, output)) and writes its
rules once, as numpy expressions of the current and the previous bar (``rules(cur, prev)``).
``generate`` evaluates them on whole columns; ``LiveStrategy.on_candle`` on one-element arrays
of the new bar, so both paths share every float operation. The base class then applies the
direction, the warm-up (a bar needs every input defined on it and on the bar before) and a
position pass that makes entries and exits alternate (an exit wins over an entry on the same
bar; with direction "both" an entry of one side also closes the other side).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from indicators.base import IndicatorParamError, Param, find_param, validate_params
from indicators.registry import IndicatorRequest, request
from market.candles import Candle, iter_candles
from strategies.data_integration import IntegratedData
from strategies.signals import (
    SIGNAL_COLUMNS,
    StrategyResult,
    StrategySignal,
    config_hash,
)

ParamValue = int | float | bool | str
Bars = Mapping[str, np.ndarray]  # "open", "high", "low", "close" and the strategy's aliases
CANDLE_FIELDS = ("open", "high", "low", "close")


class StrategyParamError(IndicatorParamError):
    """A strategy parameter is unknown, of the wrong type, out of range or breaks a rule.

    >>> StrategyParamError("sma_crossover", "fast", 40, "fast < slow (slow=30)", "is not below")
    StrategyParamError("sma_crossover: fast=40 is not below; allowed: fast < slow (slow=30)")
    """

    @property
    def strategy(self) -> str:
        return self.indicator


class StrategyParam(Param):
    """A strategy parameter: ``StrategyParam("fast", int, 10, 2, 1000, "fast SMA period")``.

    Adds ``bool`` to the kinds of :class:`indicators.base.Param` (int, float, str with choices)
    and a JSON Schema fragment (:meth:`schema`).
    """

    @property
    def allowed(self) -> str:
        if self.kind is bool:
            return "true or false"
        return super().allowed

    def check(self, indicator: str, value: Any) -> ParamValue:
        if self.kind is bool:
            if not isinstance(value, bool | np.bool_):
                raise StrategyParamError(
                    indicator, self.name, value, self.allowed, "is not a boolean"
                )
            return bool(value)
        try:
            return super().check(indicator, value)
        except StrategyParamError:
            raise
        except IndicatorParamError as exc:
            raise StrategyParamError(indicator, self.name, value, exc.allowed, _why(exc)) from None

    def schema(self) -> dict[str, Any]:
        """JSON Schema of the value: ``{"type": "integer", "minimum": 2, ...}``."""
        out: dict[str, Any] = {"description": self.description, "default": self.default}
        if self.kind is bool:
            out["type"] = "boolean"
        elif self.kind is str:
            out.update(type="string", enum=list(self.choices))
        else:
            out.update(
                type="integer" if self.kind is int else "number",
                minimum=self.low,
                maximum=self.high,
            )
        return out


def _why(exc: IndicatorParamError) -> str:
    text = str(exc)
    head = f"{exc.indicator}: {exc.parameter}={exc.value!r} "
    return text[len(head) :].split("; allowed:")[0] if text.startswith(head) else "is invalid"


DIRECTION = StrategyParam(
    "direction",
    str,
    "long",
    description="which side to trade: long, short or both",
    choices=("long", "short", "both"),
)


@dataclass(frozen=True)
class Rules:
    """Raw conditions per bar, before direction, warm-up and position state are applied.

    ``*_confidence``: confidence of an entry on that bar, in [0, 1]. ``metadata``: the values
    a signal reports (default: every input alias on the bar).
    """

    entry_long: np.ndarray
    exit_long: np.ndarray
    entry_short: np.ndarray
    exit_short: np.ndarray
    long_confidence: np.ndarray
    short_confidence: np.ndarray
    metadata: Mapping[str, np.ndarray] | None = None


class BaseStrategy:
    """A trading strategy: declared parameters, indicators and rules (see the module doc).

    >>> SmaCrossover(fast=10, slwo=30)
    StrategyParamError: sma_crossover: slwo=30 is not a parameter (did you mean 'slow'?); ...

    Subclasses set ``name``, ``title``, ``params`` and implement ``inputs``, ``rules`` and,
    for cross-parameter rules, ``check``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    params: ClassVar[tuple[StrategyParam, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.config: dict[str, ParamValue] = self.validate(params)
        self.config_hash = config_hash(self.name, self.config)
        self._inputs = self.inputs()

    # -- parameters -----------------------------------------------------------------------
    @classmethod
    def param(cls, name: str, value: Any = None) -> StrategyParam:
        return find_param(cls.params, cls.name, name, value, StrategyParamError)

    @classmethod
    def validate(cls, params: Mapping[str, Any] | None = None) -> dict[str, ParamValue]:
        """Defaults filled in, each value checked, then the cross-parameter rules.

        >>> SmaCrossover.validate({"fast": 30, "slow": 10})
        StrategyParamError: sma_crossover: fast=30 is not below slow; allowed: fast < slow ...
        """
        return validate_params(cls.params, cls.name, params, cls.check, StrategyParamError)

    @classmethod
    def check(cls, params: Mapping[str, ParamValue]) -> None:
        """Cross-parameter rules; raise :class:`StrategyParamError` (none by default)."""

    @classmethod
    def require_below(cls, params: Mapping[str, ParamValue], low: str, high: str) -> None:
        """Raise unless ``params[low] < params[high]`` (the error names both)."""
        if not params[low] < params[high]:  # type: ignore[operator]
            raise StrategyParamError(
                cls.name,
                low,
                params[low],
                f"{low} < {high} ({high}={params[high]!r})",
                f"is not below {high}",
            )

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        """JSON Schema of this strategy's params object (unknown keys refused)."""
        return {
            "type": "object",
            "title": cls.title or cls.name,
            "properties": {p.name: p.schema() for p in cls.params},
            "additionalProperties": False,
        }

    # -- declarations ---------------------------------------------------------------------
    def inputs(self) -> dict[str, tuple[IndicatorRequest, str]]:
        """Alias -> (indicator request, output) the rules read: ``{"fast_sma": (req, "sma")}``."""
        raise NotImplementedError

    def rules(self, cur: Bars, prev: Bars) -> Rules:
        """Raw conditions from the current and the previous bar's columns (numpy only)."""
        raise NotImplementedError

    def required_indicators(self) -> list[IndicatorRequest]:
        """Each distinct indicator request the rules read, in declaration order."""
        seen: dict[str, IndicatorRequest] = {}
        for req, _ in self._inputs.values():
            seen.setdefault(req.key, req)
        return list(seen.values())

    @property
    def warmup(self) -> int:
        """Bars before the first possible signal on data computed from its first bar."""
        return (
            max((r.spec.lookback(r.param_dict) for r in self.required_indicators()), default=0) + 1
        )

    def benchmark_start(self, bars: int) -> int:
        """Bar where buy and hold starts in the metrics: the first bar every indicator is
        defined (``warmup - 1``), as backtesting.py does, within ``bars`` bars."""
        return max(0, min(self.warmup - 1, bars - 1))

    @property
    def direction(self) -> str:
        return str(self.config.get("direction", "long"))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config == self.config  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, self.config_hash))

    # -- vectorized -----------------------------------------------------------------------
    def generate(
        self,
        data: IntegratedData | pd.DataFrame,
        symbol: str | None = None,
        timeframe: str | None = None,
    ) -> StrategyResult:
        """Signals over the whole history, vectorized (no loop over bars).

        >>> strategy.generate(integrator.frame("SP500", "1d", strategies=[strategy]))
        >>> strategy.generate(candle_frame, symbol="SP500", timeframe="1d")  # own indicators

        A candle frame gets its indicators computed once each through the registry.
        """
        candles, values, symbol, timeframe = self._resolve(data, symbol, timeframe)
        ev = self._evaluate(candles, values)
        frame = pd.DataFrame(
            {
                "entry_long": ev.entry_long,
                "exit_long": ev.exit_long,
                "entry_short": ev.entry_short,
                "exit_short": ev.exit_short,
                "confidence": ev.confidence,
            },
            index=candles.index,
            copy=False,
        )
        return StrategyResult(
            self.name,
            dict(self.config),
            self.config_hash,
            symbol,
            timeframe,
            frame,
            ev.close,
            ev.metadata,
        )

    def indicator_values(self, candles: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
        """Request key -> {output: array}: each required indicator computed once on ``candles``."""
        out = {}
        for req in self.required_indicators():
            if req.timeframe is not None:
                raise ValueError(
                    f"{req.key} needs another timeframe: pass IntegratedData from the integrator"
                )
            out[req.key] = _compute(req, candles)
        return out

    def _resolve(
        self, data: IntegratedData | pd.DataFrame, symbol: str | None, timeframe: str | None
    ) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]], str, str]:
        if isinstance(data, IntegratedData):
            missing = [r.key for r in self.required_indicators() if r.key not in data.values]
            if missing:
                why = "; ".join(f"{k}: {data.failures.get(k, 'not requested')}" for k in missing)
                raise ValueError(f"{self.name}: indicators missing from the data: {why}")
            values = {
                r.key: {o: data.values[r.key][o].to_numpy(np.float64) for o in r.spec.outputs}
                for r in self.required_indicators()
            }
            return data.candles, values, symbol or data.symbol, timeframe or data.timeframe.label
        candles = data
        return (
            candles,
            self.indicator_values(candles),
            symbol or str(candles.attrs.get("symbol", "?")),
            timeframe or str(candles.attrs.get("timeframe", "?")),
        )

    def _evaluate(
        self, candles: pd.DataFrame, values: Mapping[str, Mapping[str, np.ndarray]]
    ) -> _Evaluation:
        cur: dict[str, np.ndarray] = {
            f: np.ascontiguousarray(candles[f].to_numpy(), dtype=np.float64) for f in CANDLE_FIELDS
        }
        for alias, (req, output) in self._inputs.items():
            cur[alias] = np.asarray(values[req.key][output], dtype=np.float64)
        prev = _Shifted(cur)
        ready = np.ones(len(candles), dtype=bool)
        for alias in self._inputs:
            ready &= np.isfinite(cur[alias])
        ready[1:] &= ready[:-1].copy()
        if len(ready):
            ready[0] = False
        rules = self.rules(cur, prev)
        el, xl, es, xs = self._directed(rules, ready)
        never = np.zeros_like(ready)
        # a one-sided strategy skips the other side's passes (they would be all False)
        long_open = _position(el, xl) if self.direction != "short" else never
        short_open = _position(es, xs) if self.direction != "long" else never
        entry_long, exit_long = _changes(long_open) if self.direction != "short" else (never, never)
        entry_short, exit_short = (
            _changes(short_open) if self.direction != "long" else (never, never)
        )
        confidence = np.where(exit_long | exit_short, 1.0, np.nan)
        if self.direction != "short":
            confidence = np.where(entry_long, rules.long_confidence, confidence)
        if self.direction != "long":
            confidence = np.where(entry_short, rules.short_confidence, confidence)
        metadata = (
            rules.metadata if rules.metadata is not None else _alias_columns(cur, self._inputs)
        )
        return _Evaluation(
            entry_long, exit_long, entry_short, exit_short, confidence, cur["close"],
            {k: np.asarray(v, dtype=np.float64) for k, v in metadata.items()},
            long_open, short_open, cur,
        )  # fmt: skip

    def _directed(
        self, rules: Rules, ready: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        direction = self.direction
        el = rules.entry_long & ready
        es = rules.entry_short & ready
        if direction == "long":
            zero = np.zeros_like(ready)
            return el, rules.exit_long & ready, zero, zero
        if direction == "short":
            zero = np.zeros_like(ready)
            return zero, zero, es, rules.exit_short & ready
        # one position at a time: entering one side closes the other
        return el, (rules.exit_long & ready) | es, es, (rules.exit_short & ready) | el

    # -- live -----------------------------------------------------------------------------
    def live(
        self,
        history: IntegratedData | pd.DataFrame,
        symbol: str | None = None,
        timeframe: str | None = None,
    ) -> LiveStrategy:
        """A live twin positioned after ``history`` (its open positions and last bar).

        >>> live = strategy.live(frame.iloc[:-1], symbol="SP500", timeframe="1d")
        >>> live.on_candle(candle, values)     # values: request key -> that candle's outputs
        """
        candles, values, symbol, timeframe = self._resolve(history, symbol, timeframe)
        if len(candles) == 0:
            return LiveStrategy(self, symbol, timeframe, None, False, False)
        ev = self._evaluate(candles, values)
        last = {k: v[-1:].copy() for k, v in ev.cur.items()}
        return LiveStrategy(
            self, symbol, timeframe, last, bool(ev.long_open[-1]), bool(ev.short_open[-1])
        )


@dataclass(frozen=True)
class _Evaluation:
    entry_long: np.ndarray
    exit_long: np.ndarray
    entry_short: np.ndarray
    exit_short: np.ndarray
    confidence: np.ndarray
    close: np.ndarray
    metadata: dict[str, np.ndarray]
    long_open: np.ndarray
    short_open: np.ndarray
    cur: dict[str, np.ndarray]


class _Shifted(Mapping[str, np.ndarray]):
    """The previous bar's columns (NaN before the first), shifted only when a rule reads them."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self._columns = columns
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        shifted = self._cache.get(key)
        if shifted is None:
            column = self._columns[key]
            shifted = np.empty_like(column)
            shifted[:1] = np.nan
            shifted[1:] = column[:-1]
            self._cache[key] = shifted
        return shifted

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _position(entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Open after each bar? The last entry or exit decides (an exit wins on the same bar).

    >>> _position(np.array([1, 1, 0, 0, 1], bool), np.array([0, 0, 1, 1, 0], bool))
    array([ True,  True, False, False,  True])
    """
    n = len(entry)
    event = entry | exit_
    last = np.where(event, np.arange(n, dtype=np.int64), -1)
    np.maximum.accumulate(last, out=last)
    opened = entry & ~exit_
    state = opened[np.maximum(last, 0)]
    state &= last >= 0
    return state


def _changes(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entries, exits): bars where the position opens, bars where it closes."""
    before = np.empty_like(state)
    before[:1] = False
    before[1:] = state[:-1]
    return state & ~before, before & ~state


def _alias_columns(
    cur: Mapping[str, np.ndarray], inputs: Mapping[str, tuple[IndicatorRequest, str]]
) -> dict[str, np.ndarray]:
    return {alias: cur[alias] for alias in inputs}


def _compute(req: IndicatorRequest, candles: pd.DataFrame) -> dict[str, np.ndarray]:
    if len(candles) == 0:
        return {o: np.empty(0) for o in req.spec.outputs}
    return req.spec.compute(candles, req.param_dict)


def confidence_ratio(part: np.ndarray, whole: np.ndarray, base: float = 0.0) -> np.ndarray:
    """``base + (1 - base) * part / whole`` clipped to [0, 1]; 1 where ``whole`` is not > 0.

    >>> confidence_ratio(np.array([1.0, 4.0]), np.array([2.0, 2.0]))
    array([0.5, 1. ])
    """
    if np.ndim(part) == 0 and np.ndim(whole) == 0:
        # one bar (the live path, once per deployment per candle): the same IEEE operations
        # on Python floats, without numpy's per-call cost
        w = float(whole)
        value = base + (1.0 - base) * (float(part) / w if w > 0 else math.inf)
        return np.float64(value if value != value else min(max(value, 0.0), 1.0))  # type: ignore[return-value]
    ratio = np.divide(part, whole, out=np.full(np.shape(part), np.inf), where=whole > 0)
    return np.clip(base + (1.0 - base) * ratio, 0.0, 1.0)


ATR_PERIOD = 14  # the volatility yardstick of the confidence formulas measured in ATR


def atr_input() -> tuple[IndicatorRequest, str]:
    """The ``"atr"`` input (ATR(14)) of a strategy whose confidence is measured in ATR."""
    return request("atr", timeperiod=ATR_PERIOD), "atr"


class LiveStrategy:
    """A strategy's incremental state: its open positions and the previous bar's values.

    >>> live = strategy.live(history, symbol="SP500", timeframe="1d")
    >>> live.on_candle(candle, {"sma(timeperiod=10)": (4702.1,), ...})
    [StrategySignal(..., signal_type='entry_long', ...)]

    ``values`` maps each request key to that indicator's outputs for this candle (the caller
    updates each distinct indicator state once and hands the values to every strategy).
    """

    def __init__(
        self,
        strategy: BaseStrategy,
        symbol: str,
        timeframe: str,
        previous: dict[str, np.ndarray] | None,
        long_open: bool,
        short_open: bool,
    ) -> None:
        self.strategy = strategy
        self.symbol = symbol
        self.timeframe = timeframe
        self.long_open = long_open
        self.short_open = short_open
        # the previous bar's values as numpy scalars (the rules' element-wise operations on
        # one bar: the same IEEE results as on arrays, without an array per value)
        self._prev = None if previous is None else {
            k: np.float64(np.asarray(v, dtype=np.float64).reshape(-1)[-1])
            for k, v in previous.items()}  # fmt: skip
        self._slots = [
            (alias, req.key, req.spec.outputs.index(output))
            for alias, (req, output) in strategy._inputs.items()
        ]

    def on_candle(
        self, candle: Candle, values: Mapping[str, tuple[float, ...]]
    ) -> list[StrategySignal]:
        """The signals of one new closed candle (exits before entries), updating the state.
        The rules run on numpy scalars (float64, bool_): the vectorized rules' operations on
        one bar, bit for bit (tests/strategies hold live equal to generate)."""
        f64 = np.float64
        cur = {"open": f64(candle.open), "high": f64(candle.high), "low": f64(candle.low),
               "close": f64(candle.close)}  # fmt: skip
        prev = self._prev
        ready = prev is not None
        for alias, key, index in self._slots:
            value = float(values[key][index])
            cur[alias] = f64(value)
            ready = ready and math.isfinite(value) and math.isfinite(prev[alias])  # type: ignore[index]
        if prev is None:
            prev = dict.fromkeys(cur, f64(math.nan))
        self._prev = cur
        strategy = self.strategy
        rules = strategy.rules(cur, prev)  # type: ignore[arg-type]
        el, xl, es, xs = (bool(a) for a in strategy._directed(rules, np.bool_(ready)))  # type: ignore[arg-type]
        fired: list[tuple[str, float]] = []
        if self.long_open and xl:
            self.long_open = False
            fired.append(("exit_long", 1.0))
        if self.short_open and xs:
            self.short_open = False
            fired.append(("exit_short", 1.0))
        if not self.long_open and el and not xl:
            self.long_open = True
            fired.append(("entry_long", float(rules.long_confidence)))
        if not self.short_open and es and not xs:
            self.short_open = True
            fired.append(("entry_short", float(rules.short_confidence)))
        if not fired:
            return []
        columns = (
            rules.metadata if rules.metadata is not None else _alias_columns(cur, strategy._inputs)  # type: ignore[arg-type]
        )
        metadata = {k: float(v) for k, v in columns.items()}
        return [
            StrategySignal(
                candle.ts, self.symbol, self.timeframe, strategy.name, strategy.config_hash,
                kind, candle.close, confidence, dict(metadata), strategy.config,  # type: ignore[arg-type]
            )
            for kind, confidence in fired
        ]  # fmt: skip


def replay_live(
    strategy: BaseStrategy,
    frame: pd.DataFrame,
    start: int,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> list[StrategySignal]:
    """Signals of bars ``start:`` produced one candle at a time, as the live runner would.

    >>> replay_live(create("rsi_reversion"), load_sample("SP500"), 300, "SP500", "1d")

    Indicator states are opened with ``spec.open`` on ``frame[:start]``, then each later candle
    updates every distinct state once and its values go to :meth:`LiveStrategy.on_candle`.
    """
    history = frame.iloc[:start]
    states = {r.key: r.spec.open(history, r.param_dict)[0] for r in strategy.required_indicators()}
    live = strategy.live(history, symbol, timeframe)
    signals: list[StrategySignal] = []
    for candle in iter_candles(frame.iloc[start:]):
        values = {key: state.update(candle) for key, state in states.items()}
        signals.extend(live.on_candle(candle, values))
    return signals


__all__ = [
    "ATR_PERIOD",
    "DIRECTION",
    "SIGNAL_COLUMNS",
    "Bars",
    "BaseStrategy",
    "LiveStrategy",
    "Rules",
    "StrategyParam",
    "StrategyParamError",
    "atr_input",
    "confidence_ratio",
    "replay_live",
]
