"""``pd.factorize`` of a column of Python objects that repeats a few objects many times (the
label tuples of a fills or trips frame: one tuple per distinct stored text or per distinct
union), found by identity first: only the distinct objects are hashed by value.

>>> codes, uniques = factorized(trips["labels"].tolist())   # == pd.factorize(...) of them
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def factorized(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) equal to ``pd.factorize`` of ``values`` as an object array: codes in
    order of first appearance, -1 for a missing value; raises TypeError as it does for an
    unhashable value."""
    identities = np.fromiter(map(id, values), dtype=np.uint64, count=len(values))
    by_identity, distinct = pd.factorize(identities)
    first = np.empty(len(distinct), dtype=np.int64)
    first[by_identity[::-1]] = np.arange(len(values) - 1, -1, -1)  # the earliest one wins
    held = np.empty(len(first), dtype=object)
    held[:] = [values[k] for k in first.tolist()]
    by_value, uniques = pd.factorize(held)
    return by_value[by_identity], uniques


__all__ = ["factorized"]
