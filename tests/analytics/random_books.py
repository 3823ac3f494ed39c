"""Random books of fills for the FIFO tests: each next fill of a position leans back to flat
so that round trips close, sometimes closing exactly or flipping the position."""

from __future__ import annotations

from typing import Any

import numpy as np


def next_fill(rng: np.random.Generator, held: dict[Any, float], key: Any) -> tuple[str, float]:
    """(side, volume) of the next fill of position ``key`` (``held``: key -> signed
    quantity, updated): an exact close or a flip 15 % of the time each while open, else a
    buy or sell leaning against the position, volumes to three decimals."""
    position = held.get(key, 0.0)
    choice = rng.random()
    if position and choice < 0.15:  # close exactly
        side, volume = ("sell" if position > 0 else "buy"), abs(position)
    elif position and choice < 0.3:  # flip
        side = "sell" if position > 0 else "buy"
        volume = abs(position) + float(np.round(rng.uniform(0.01, 2.0), 3))
    else:
        side = "buy" if rng.random() < 0.5 - 0.2 * np.sign(position) else "sell"
        volume = float(np.round(rng.uniform(0.001, 3.0), 3))
    held[key] = position + (volume if side == "buy" else -volume)
    return side, volume
