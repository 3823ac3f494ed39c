"""The strategy registry: look a strategy up by name, create one from parameters.

>>> create("sma_crossover", fast=5, slow=20).config
{'fast': 5, 'slow': 20, 'direction': 'long'}
>>> get("sma_crossver")
UnknownStrategyError: unknown strategy 'sma_crossver' (did you mean 'sma_crossover'?); ...
>>> [cls.name for cls in all_strategies()]
['sma_crossover', 'ema_crossover', 'rsi_reversion', 'macd_cross', 'bollinger_reversion', ...]
"""

from __future__ import annotations

from typing import Any

from indicators.base import UnknownNameError, lookup
from strategies.base import BaseStrategy
from strategies.implementations import ALL

_STRATEGIES: dict[str, type[BaseStrategy]] = {cls.name: cls for cls in ALL}


class UnknownStrategyError(UnknownNameError):
    """No strategy of that name (the message suggests the closest)."""


def get(name: str) -> type[BaseStrategy]:
    """The strategy class called ``name`` (case-insensitive): ``get("rsi_reversion")``."""
    return lookup(_STRATEGIES, name, "strategy", UnknownStrategyError)


def create(name: str, **params: Any) -> BaseStrategy:
    """A validated strategy: ``create("donchian_breakout", entry_period=55, exit_period=20)``."""
    return get(name)(**params)


def all_strategies() -> list[type[BaseStrategy]]:
    """Every strategy class, in registry order."""
    return list(_STRATEGIES.values())


__all__ = ["UnknownStrategyError", "all_strategies", "create", "get"]
