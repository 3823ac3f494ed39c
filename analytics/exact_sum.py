"""Sums of floats rounded once: the exact sum of the values, rounded to the nearest double
(ties to even), as :func:`math.fsum` gives it, whatever their order and however they are split.

>>> exact_sum(np.array([1e16, 1.0, -1e16]))   # numpy's sum: 0.0
1.0
>>> total = ExactSum(); total.extend(first_batch); total.add(1.5); total.value()

Why: a figure kept one trade at a time (services.live_accounts) must equal the same figure
computed over every stored trade at once. A float running sum depends on the order of the
additions and numpy's pairwise sum on the array's layout; the exact sum depends on neither,
so the incremental figure and the full recomputation are the same double.

How: every finite double is an integer multiple of 2**-1074, so the sum is kept as one Python
integer in units of 2**-:data:`_SCALE` (exact, any size); :meth:`ExactSum.value` divides once
(CPython's int / int is correctly rounded). An array is summed column-wise: each value split
into its 53-bit integer mantissa and exponent (``np.frexp``), the mantissas summed exactly per
exponent (as two 26/27-bit halves, by bincount: each partial sum an integer below 2**53, so
exact in its float64 weights, 2**25 values at a time), then the few exponents' sums shifted
into the one integer. A NaN or an infinity makes the sum NaN or
infinite, as in IEEE arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

_SCALE = 1074 + 53  # units of 2**-1127: a mantissa (2**53) times the smallest exponent, exact
_HALF = 26  # the mantissas' low half: 26 bits
_LOWEST_EXPONENT = -1073  # np.frexp's of the smallest subnormal, 2**-1074 = 0.5 * 2**-1073
_BINNED_MOST = 1 << 25  # values summed in one pass: 2**25 halves of 2**27 stay below 2**53


def _scaled(values: np.ndarray) -> int:
    """The exact sum of finite ``values`` in units of 2**-_SCALE."""
    values = values[values != 0.0]
    if not len(values):
        return 0
    if len(values) > _BINNED_MOST:  # a share at a time, each summed exactly below
        return sum(_scaled(values[k : k + _BINNED_MOST])
                   for k in range(0, len(values), _BINNED_MOST))  # fmt: skip
    mantissa, exponent = np.frexp(values)  # value = mantissa * 2**exponent, 0.5 <= |m| < 1
    whole = (mantissa * 2.0**53).astype(np.int64)  # exact: |whole| < 2**53
    # the halves summed per exponent by bincount's float64 weights: exact, every partial sum
    # an integer below 2**53 (fewer than 2**25 values of |half| <= 2**27): no sort
    at = exponent - _LOWEST_EXPONENT
    high = np.bincount(at, weights=whole >> _HALF)  # floor halves: whole = high * 2**26 + low
    low = np.bincount(at, weights=whole & ((1 << _HALF) - 1))
    used = np.flatnonzero((high != 0) | (low != 0))  # the exponents with a sum
    total = 0
    # value = whole * 2**(exponent - 53) = whole * 2**(exponent + 1074) units
    for e, h, lo in zip((used + _LOWEST_EXPONENT).tolist(), high[used].astype(np.int64).tolist(),
                        low[used].astype(np.int64).tolist(), strict=True):  # fmt: skip
        total += ((h << _HALF) + lo) << (e + 1074)
    return total


class ExactSum:
    """A running exact sum (see the module text): :meth:`add` one value, :meth:`extend` an
    array; :meth:`value` is the correctly rounded total of everything added."""

    __slots__ = ("_special", "_total")

    def __init__(self) -> None:
        self._total = 0  # units of 2**-_SCALE
        self._special = 0.0  # the sum of the non-finite values (NaN or infinities), if any

    def add(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            self._special += value
            return
        numerator, denominator = value.as_integer_ratio()  # denominator: a power of two
        self._total += numerator << (_SCALE - denominator.bit_length() + 1)

    def extend(self, values: Iterable[float] | np.ndarray) -> None:
        array = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(array)
        if not finite.all():
            for value in array[~finite].tolist():  # Python's floats: inf - inf is NaN, quietly
                self._special += value
            array = array[finite]
        self._total += _scaled(array)

    def value(self) -> float:
        if self._special != 0.0 or self._special != self._special:
            return self._special  # an infinity, or NaN
        return self._total / (1 << _SCALE)


def exact_sum(values: Iterable[float] | np.ndarray) -> float:
    """The sum of ``values`` rounded once (math.fsum's), column-wise: O(n log n) in numpy."""
    total = ExactSum()
    total.extend(values)
    return total.value()


__all__ = ["ExactSum", "exact_sum"]
