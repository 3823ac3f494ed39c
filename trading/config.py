"""What a deployment trades with: sizing, costs, stops and risk limits, validated.

>>> settings = DeploymentSettings.parse({"sizing": "fraction", "size": 0.5, "stop_loss_pct": 0.02})
>>> settings.to_json()["commission_pct"]
0.0

The fields and their meaning are the backtest's (:class:`analytics.backtest.BacktestSettings`):
the same sizing modes (half-Kelly from the deployment's own past trades only), the same cost
model (commission as a fraction plus a fixed amount per fill, slippage and half the quoted
spread on every fill, in basis points), the same stops (fractions of the entry price; the
trailing stop trails the best price seen up to the bar's open). Paper trading adds the risk
limits (``max_position``: units held at most; ``max_orders_per_minute``; ``volume_cap``: the
share of one bar's volume an order may take, the rest filled on later bars) and fills at the
next price after the decision (``fill="next_open"`` only: a live decision is taken on a bar's
close, which has passed when it is known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from analytics.backtest import SIZINGS, BacktestSettings


class DeploymentConfigError(ValueError):
    """A deployment setting that cannot be used (the message names it and what is expected)."""


@dataclass(frozen=True)
class CostModel:
    """The backtest's costs of one fill: ``price x (1 +/- (spread/2 + slippage))`` and
    ``commission_fixed + quantity x price x commission_pct``."""

    commission_pct: float = 0.0
    commission_fixed: float = 0.0
    slippage_bps: float = 0.0
    spread_bps: float = 0.0

    def fill_price(self, base: float, buy: bool) -> float:
        half = self.spread_bps / 20_000 + self.slippage_bps / 10_000
        return base * (1 + half) if buy else base * (1 - half)

    def fee(self, quantity: float, price: float, first_fill: bool) -> float:
        fixed = self.commission_fixed if first_fill else 0.0
        return fixed + quantity * price * self.commission_pct


@dataclass(frozen=True)
class DeploymentSettings:
    sizing: str = "all_in"
    size: float | None = None
    kelly_window: int = 30
    kelly_min_trades: int = 10
    whole_units: bool = False
    commission_pct: float = 0.0
    commission_fixed: float = 0.0
    slippage_bps: float = 0.0
    spread_bps: float = 0.0
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None
    max_position: float | None = None
    max_orders_per_minute: int | None = None
    volume_cap: float | None = None

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def parse(cls, values: Mapping[str, Any] | None) -> DeploymentSettings:
        """From a JSON object (a stored deployment, a CLI or a form): unknown keys are errors."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            expected = ", ".join(sorted(known))
            raise DeploymentConfigError(
                f"unknown deployment setting(s) {', '.join(unknown)}: expected {expected}"
            )
        try:
            return cls(**values)
        except TypeError as exc:  # a wrong type that a comparison refused
            raise DeploymentConfigError(str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def costs(self) -> CostModel:
        return CostModel(
            self.commission_pct, self.commission_fixed, self.slippage_bps, self.spread_bps
        )

    def sizing_fraction(self) -> float:
        """The fraction of equity an entry takes (the kernel's ``size`` for fraction sizings)."""
        if self.size is not None:
            return float(self.size)
        return {"all_in": 1.0, "half_kelly": 0.1}.get(self.sizing, 0.0)

    def backtest(self, cash: float, direction: str) -> BacktestSettings:
        """The backtest settings that trade exactly as this deployment (live equals backtest)."""
        return BacktestSettings(
            cash=cash,
            direction=direction,  # type: ignore[arg-type]
            sizing=self.sizing,  # type: ignore[arg-type]
            size=self.size,
            kelly_window=self.kelly_window,
            kelly_min_trades=self.kelly_min_trades,
            commission_pct=self.commission_pct,
            commission_fixed=self.commission_fixed,
            slippage_bps=self.slippage_bps,
            spread_bps=self.spread_bps,
            stop_loss_pct=self.stop_loss_pct,
            take_profit_pct=self.take_profit_pct,
            trailing_stop_pct=self.trailing_stop_pct,
            whole_units=self.whole_units,
        )


def _bad(name: str, value: object, expected: str) -> DeploymentConfigError:
    return DeploymentConfigError(
        f"deployment setting {name}={value!r} is invalid: expected {expected}"
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(s: DeploymentSettings) -> None:
    if s.sizing not in SIZINGS:
        raise _bad("sizing", s.sizing, f"one of {', '.join(SIZINGS)}")
    if s.size is not None:
        if not _number(s.size) or s.size <= 0:
            raise _bad("size", s.size, "a number > 0 (or null)")
        if s.sizing in ("fraction", "half_kelly") and s.size > 1:
            raise _bad("size", s.size, f"a fraction of equity in (0, 1] for sizing={s.sizing}")
    if s.sizing == "quantity" and s.size is None:
        raise _bad("size", s.size, "the units to trade when sizing=quantity")
    for name in ("kelly_window", "kelly_min_trades"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad(name, value, "a whole number >= 1")
    if not isinstance(s.whole_units, bool):
        raise _bad("whole_units", s.whole_units, "true or false")
    for name in ("commission_pct", "commission_fixed", "slippage_bps", "spread_bps"):
        value = getattr(s, name)
        if not _number(value) or value < 0:
            raise _bad(name, value, "a number >= 0")
    if s.commission_pct >= 1:
        raise _bad("commission_pct", s.commission_pct, "a fraction < 1 (0.001 = 0.1 %)")
    for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct"):
        value = getattr(s, name)
        if value is not None and (not _number(value) or not 0 < value < 1):
            raise _bad(name, value, "a fraction in (0, 1) of the entry price, or null")
    if s.max_position is not None and (not _number(s.max_position) or s.max_position <= 0):
        raise _bad("max_position", s.max_position, "units > 0, or null")
    per_minute = s.max_orders_per_minute
    if per_minute is not None and (
        not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 1
    ):
        raise _bad("max_orders_per_minute", per_minute, "a whole number >= 1, or null")
    if s.volume_cap is not None and (not _number(s.volume_cap) or not 0 < s.volume_cap <= 1):
        raise _bad("volume_cap", s.volume_cap, "a share of the bar's volume in (0, 1], or null")


__all__ = ["CostModel", "DeploymentConfigError", "DeploymentSettings"]
