"""The cost model: a fitted square-root law and a learned model of an order's cost in bps.

>>> model, report = train_cost_model(frame)            # frame: analytics.dataset's rows
>>> report.model.mae_bps, report.baseline.mae_bps       # on the held-out later period
>>> model.expected_cost_bps("DEMO", "buy", 50.0, {"volatility_bps": 9.7, "avg_volume": 800.0})
>>> ExecutionCostModel.from_bytes(model.to_bytes())     # stored as plain arrays, no pickle

Target: ``arrival_slippage_bps`` (docs/tca.md: s x (average fill - arrival) / arrival x 1e4,
positive = a cost). Baseline: cost = a + b x volatility_bps x sqrt(order_qty / average
volume), a and b by least squares on the training rows. Learned model: scikit-learn's
HistGradientBoostingRegressor on the dataset's numeric features, trained on the rows of split
``train`` without embargo, stopped early on ``validation`` without embargo, scored on ``test``
(docs/costmodel.md). Predictions go through :class:`CostModelTrees`, the compiled walk of its
trees (equal to scikit-learn's ``predict``; one order in microseconds).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics.costmodel.trees import CompiledTrees
from analytics.dataset.features import feature_names

TARGET = "arrival_slippage_bps"
MODEL_VERSION = 1
WITHIN_BPS = 5.0
MIN_TRAIN_ROWS = 30
MIN_VALIDATION_ROWS = 50  # fewer: no early stopping, a fixed number of iterations
DEFAULT_FEATURES = feature_names((1, 5, 20, 60))
DERIVED = ("side_sign", "size_vs_avg_volume", "impact_term_bps")  # from side and quantity
HGB_PARAMS = {
    "learning_rate": 0.05,
    "max_iter": 600,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "n_iter_no_change": 30,
    "random_state": 0,
}


class CostModelError(ValueError):
    """A cost model that cannot be trained, read or applied (the message says why)."""


@dataclass(frozen=True)
class SquareRootLaw:
    """cost_bps = a + b x volatility_bps x sqrt(participation)."""

    a: float
    b: float

    @classmethod
    def fit(cls, impact_term: np.ndarray, cost: np.ndarray) -> SquareRootLaw:
        ok = ~np.isnan(impact_term) & ~np.isnan(cost)
        if ok.sum() < 2:
            raise CostModelError("the square-root law needs two rows with a volatility and "
                                 "an average volume at least")  # fmt: skip
        design = np.column_stack([np.ones(ok.sum()), impact_term[ok]])
        (a, b), *_ = np.linalg.lstsq(design, cost[ok], rcond=None)
        return cls(float(a), float(b))

    def predict(self, impact_term: np.ndarray) -> np.ndarray:
        """a + b x term; a where the term is unknown (no volatility or volume yet)."""
        return np.where(np.isnan(impact_term), self.a, self.a + self.b * impact_term)


@dataclass(frozen=True)
class Scores:
    rows: int
    mae_bps: float
    r2: float  # NaN when the realised costs do not vary
    within_5bps: float  # share of rows predicted within WITHIN_BPS

    @classmethod
    def of(cls, actual: np.ndarray, predicted: np.ndarray) -> Scores:
        if not len(actual):
            return cls(0, float("nan"), float("nan"), float("nan"))
        error = predicted - actual
        spread = float(((actual - actual.mean()) ** 2).sum())
        # costs equal to rounding (a broker's fixed slippage) have no variance to explain
        flat = spread <= len(actual) * (1e-9 * max(1.0, abs(float(actual.mean())))) ** 2
        r2 = float("nan") if flat else 1.0 - float((error**2).sum()) / spread
        return cls(len(actual), float(np.abs(error).mean()), r2,
                   float((np.abs(error) <= WITHIN_BPS).mean()))  # fmt: skip


@dataclass(frozen=True)
class CostModelReport:
    """What ``costmodel train|evaluate`` prints: both models' scores on the test rows."""

    target: str
    features: tuple[str, ...]
    rows: dict[str, int]  # train, validation, test rows used
    model: Scores
    baseline: Scores
    law: SquareRootLaw
    iterations: int
    info: dict[str, Any] = field(default_factory=dict)  # account, stored path, versions

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.info,
            "target": self.target,
            "features": list(self.features),
            "rows": self.rows,
            "model": asdict(self.model),
            "baseline": asdict(self.baseline),
            "square_root_law": asdict(self.law),
            "iterations": self.iterations,
        }

    def summary(self) -> str:
        m, b = self.model, self.baseline
        lines = [
            f"cost model of {self.info.get('account', '?')}: target {self.target}, "
            f"trained on {self.rows['train']} rows (validation {self.rows['validation']}), "
            f"scored on the {self.rows['test']} test rows (the later period)",
            f"{'':22}{'MAE bps':>10}{'R2':>10}{'within 5 bps':>14}",
            f"{'gradient boosting':22}{_num(m.mae_bps):>10}{_num(m.r2):>10}"
            f"{_pct(m.within_5bps):>14}",
            f"{'square-root law':22}{_num(b.mae_bps):>10}{_num(b.r2):>10}{_pct(b.within_5bps):>14}",
            f"square-root law: cost = {self.law.a:.4f} + {self.law.b:.4f} x volatility_bps x "
            f"sqrt(qty / avg volume); {self.iterations} boosting iterations",
        ]
        if self.info.get("path"):
            lines.append(f"stored: {self.info['path']}")
        return "\n".join(lines)


class ExecutionCostModel:
    """The learned model (compiled trees) with its features and the baseline law."""

    def __init__(
        self,
        features: Sequence[str],
        trees: CompiledTrees,
        law: SquareRootLaw,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.features = tuple(features)
        self.trees = trees
        self.law = law
        self.info = dict(info or {})
        self._index = {name: k for k, name in enumerate(self.features)}

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise CostModelError(f"dataset lacks the model's feature(s) {missing}")
        return np.column_stack([frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
                                for c in self.features])  # fmt: skip

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected cost in bps of every row of a dataset frame."""
        return self.trees.predict(self.matrix(frame))

    def baseline(self, frame: pd.DataFrame) -> np.ndarray:
        return self.law.predict(frame["impact_term_bps"].to_numpy(dtype=np.float64))

    def expected_cost_bps(
        self, symbol: str, side: str, quantity: float, features: Mapping[str, float]
    ) -> float:
        """The expected cost of one order before it is sent. ``features``: the dataset's
        features read at the last closed bar (missing ones are NaN, which the trees route
        as in training), plus ``avg_volume`` from which the participation and the impact
        term are derived for ``quantity``; ``symbol`` is not a feature (the model is the
        account's, across its symbols)."""
        del symbol
        x = np.full(len(self.features), np.nan)
        index = self._index
        for name, value in features.items():
            k = index.get(name)
            if k is not None:
                x[k] = value
        sign = 1.0 if side == "buy" else -1.0 if side == "sell" else np.nan
        if sign != sign:
            raise CostModelError(f"side {side!r}: expected buy or sell")
        avg = features.get("avg_volume", np.nan)
        participation = quantity / avg if avg and avg > 0 else np.nan
        derived = {
            "side_sign": sign,
            "size_vs_avg_volume": participation,
            "impact_term_bps": features.get("volatility_bps", np.nan) * participation**0.5,
        }
        for name, value in derived.items():
            k = index.get(name)
            if k is not None:
                x[k] = value
        return self.trees.predict_one(x)

    def to_bytes(self) -> bytes:
        """The model as an .npz file's bytes: the trees' arrays and a JSON description."""
        meta = {"version": MODEL_VERSION, "features": list(self.features),
                "square_root_law": asdict(self.law), **self.info}  # fmt: skip
        sink = io.BytesIO()
        np.savez_compressed(
            sink, **self.trees.arrays(), meta=np.frombuffer(json.dumps(meta).encode(), np.uint8)
        )
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ExecutionCostModel:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError) as exc:
            raise CostModelError(f"not a stored cost model: {exc}") from None
        meta = json.loads(arrays.pop("meta").tobytes())
        if meta.get("version") != MODEL_VERSION:
            raise CostModelError(
                f"stored cost model version {meta.get('version')!r}, this StratLens reads "
                f"{MODEL_VERSION}: train it again"
            )
        law = SquareRootLaw(**meta.pop("square_root_law"))
        features = meta.pop("features")
        meta.pop("version")
        return cls(features, CompiledTrees.from_arrays(arrays), law, meta)


def split_rows(frame: pd.DataFrame, target: str = TARGET) -> dict[str, np.ndarray]:
    """Masks of the rows each part uses: train and validation without embargo, test; all
    with the target known."""
    known = frame[target].notna().to_numpy()
    split = frame["split"].astype(str).to_numpy()
    free = ~frame["embargo"].to_numpy(dtype=bool)
    return {
        "train": known & free & (split == "train"),
        "validation": known & free & (split == "validation"),
        "test": known & (split == "test"),
    }


def train_cost_model(
    frame: pd.DataFrame,
    features: Sequence[str] = DEFAULT_FEATURES,
    target: str = TARGET,
    params: Mapping[str, Any] | None = None,
) -> tuple[ExecutionCostModel, CostModelReport]:
    """Fit the baseline and the learned model on the earlier rows, score both on the test
    rows (the later period)."""
    from sklearn.ensemble import HistGradientBoostingRegressor  # ~0.5 s: only when training

    rows = split_rows(frame, target)
    if rows["train"].sum() < MIN_TRAIN_ROWS:
        raise CostModelError(
            f"{int(rows['train'].sum())} training rows with a known {target} (split train, "
            f"no embargo): at least {MIN_TRAIN_ROWS} are needed"
        )
    y = frame[target].to_numpy(dtype=np.float64)
    term = frame["impact_term_bps"].to_numpy(dtype=np.float64)
    law = SquareRootLaw.fit(term[rows["train"]], y[rows["train"]])
    probe = ExecutionCostModel(features, None, law)  # type: ignore[arg-type]
    X = probe.matrix(frame)
    options = dict(HGB_PARAMS) | dict(params or {})
    fit_args: dict[str, Any] = {}
    if rows["validation"].sum() >= MIN_VALIDATION_ROWS:
        options["early_stopping"] = True
        fit_args = {"X_val": X[rows["validation"]], "y_val": y[rows["validation"]]}
    else:
        options["early_stopping"] = False
        options["max_iter"] = min(int(options["max_iter"]), 200)
    regressor = HistGradientBoostingRegressor(**options)
    regressor.fit(X[rows["train"]], y[rows["train"]], **fit_args)
    info = {"target": target, "iterations": int(regressor.n_iter_)}
    model = ExecutionCostModel(features, CompiledTrees.of(regressor), law, info)
    return model, evaluate_cost_model(model, frame, target)


def evaluate_cost_model(
    model: ExecutionCostModel, frame: pd.DataFrame, target: str = TARGET
) -> CostModelReport:
    """Both models' MAE, R squared and share within 5 bps on the frame's test rows."""
    rows = split_rows(frame, target)
    test = rows["test"]
    actual = frame[target].to_numpy(dtype=np.float64)[test]
    part = frame.loc[test]
    return CostModelReport(
        target=target,
        features=model.features,
        rows={k: int(v.sum()) for k, v in rows.items()},
        model=Scores.of(actual, model.predict(part)),
        baseline=Scores.of(actual, model.baseline(part)),
        law=model.law,
        iterations=int(model.info.get("iterations", 0)),
    )


def _num(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"
