"""A fitted HistGradientBoostingRegressor as flat arrays, walked by one compiled loop.

>>> trees = CompiledTrees.of(model)            # the fitted regressor's trees
>>> trees.predict(X)                            # == model.predict(X) (to 1e-12), any rows
>>> trees.predict_one(x)                        # one order: microseconds, not milliseconds

scikit-learn's ``predict`` validates its input and starts its thread pool on every call:
about 5 ms for one row, whatever the model. The trees themselves are a few hundred
comparisons. The walk is scikit-learn's own (``_predictor.pyx``): at a split a NaN goes where
the node's ``missing_go_to_left`` says, else ``x <= threshold`` goes left; the prediction is
the baseline plus the leaves' values (the squared-error loss's identity link). Categorical
splits are not supported (the cost model's features are all numeric).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@functools.cache
def _compiled():
    """:func:`_walk_rows` compiled by numba (cached on disk) on first use, not on import: a
    process that never predicts (``app.py dataset export``) never imports numba; without
    numba the Python function."""
    try:  # pragma: no cover - numba is a dependency; the fallback keeps analytics importable
        from numba import njit
    except ImportError:  # pragma: no cover
        return _walk_rows
    return njit(cache=True)(_walk_rows)


def _walk_rows(
    X, roots, feature, threshold, missing_left, left, right, leaf, value, base
):  # pragma: no cover - compiled
    out = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        total = base
        for t in range(roots.shape[0]):
            node = roots[t]
            while not leaf[node]:
                v = X[i, feature[node]]
                if v != v:
                    node = left[node] if missing_left[node] else right[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            total += value[node]
        out[i] = total
    return out


ARRAYS = ("roots", "feature", "threshold", "missing_left", "left", "right", "leaf", "value")


@dataclass(frozen=True)
class CompiledTrees:
    roots: np.ndarray  # int64: each tree's first node
    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64
    missing_left: np.ndarray  # bool
    left: np.ndarray  # int64, absolute node positions
    right: np.ndarray
    leaf: np.ndarray  # bool
    value: np.ndarray  # float64
    baseline: float

    @classmethod
    def of(cls, model) -> CompiledTrees:
        """The trees of a fitted single-output ``HistGradientBoostingRegressor``."""
        parts, roots, start = [], [], 0
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported by the compiled walk")
            parts.append((nodes, start))
            roots.append(start)
            start += len(nodes)
        if not parts:
            raise ValueError("the model has no tree")
        nodes = np.concatenate([p[0] for p in parts])
        offsets = np.concatenate([np.full(len(p[0]), p[1], np.int64) for p in parts])
        return cls(
            roots=np.asarray(roots, np.int64),
            feature=nodes["feature_idx"].astype(np.int64),
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            left=nodes["left"].astype(np.int64) + offsets,
            right=nodes["right"].astype(np.int64) + offsets,
            leaf=nodes["is_leaf"].astype(bool),
            value=nodes["value"].astype(np.float64),
            baseline=float(np.ravel(model._baseline_prediction)[0]),
        )

    def _args(self):
        return (self.roots, self.feature, self.threshold, self.missing_left, self.left,
                self.right, self.leaf, self.value, self.baseline)  # fmt: skip

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _compiled()(np.ascontiguousarray(X, dtype=np.float64), *self._args())

    def predict_one(self, x: np.ndarray) -> float:
        row = np.ascontiguousarray(x, dtype=np.float64).reshape(1, -1)
        return float(_compiled()(row, *self._args())[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`from_arrays` reads back (for storage: plain arrays, no pickle)."""
        out = {name: getattr(self, name) for name in ARRAYS}
        out["baseline"] = np.array([self.baseline])
        return out

    @classmethod
    def from_arrays(cls, arrays) -> CompiledTrees:
        return cls(
            **{name: np.asarray(arrays[name]) for name in ARRAYS},
            baseline=float(np.asarray(arrays["baseline"])[0]),
        )
