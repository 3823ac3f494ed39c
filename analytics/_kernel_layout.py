"""The bar loop's interface without numba: its settings tuple, trade-row fields, exit reasons.

>>> pack_params(kernel_params(BacktestSettings(cash=10_000)))   # what the prebuilt kernel takes
array([1.e+04, 0.e+00, 1.e+00, 1.e+00, 0.e+00, 1.e+00, ...])

:mod:`analytics._kernel` (the numba source) and :mod:`analytics._kernel_aot` (its
ahead-of-time build) both read these, so a process that runs the prebuilt kernel never
imports numba. The kernel is compiled with these values: an edit here is an edit of the kernel.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

# exit reasons, indices into analytics.backtest.EXIT_REASONS
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, END, DRAWDOWN_HALT = range(6)
# trade record fields, in order, as simulate returns them
_ENTRY_BAR, _EXIT_BAR, _SIZE, _ENTRY, _EXIT, _COMMISSION, _REASON, _MAE, _MFE = range(9)
_INF = math.inf


class KernelParams(NamedTuple):
    """The settings as plain numbers, the only configuration ``simulate`` reads."""

    cash: float
    fill_close: bool
    long_ok: bool
    short_ok: bool
    sizing: int  # index into analytics.backtest.SIZINGS
    size: float
    kelly_window: int
    kelly_min_trades: int
    commission_rel: float
    commission_fixed: float
    slippage: float  # fraction of price, per fill
    spread: float  # whole bid-ask spread, fraction of price
    stop_loss: float  # 0: off
    take_profit: float
    trailing_stop: float
    max_drawdown: float
    whole_units: bool
    close_at_end: bool
    compat: bool


def pack_params(p: KernelParams) -> np.ndarray:
    """``p`` as a float64 array in field order (bools 0/1; every int here is exact in a
    float64): the prebuilt kernel's exported signature takes arrays and numbers only, and
    ``analytics._kernel.unpack_params`` turns it back into a ``KernelParams``."""
    return np.array(p, dtype=np.float64)
