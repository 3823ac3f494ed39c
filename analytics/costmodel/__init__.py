"""A cost model that predicts: the expected cost of an order before it is sent (issue 16;
docs/costmodel.md).

>>> model, report = train_cost_model(dataset_frame)        # baseline + gradient boosting
>>> print(report.summary())                                 # MAE, R2, within 5 bps, test rows
>>> model.expected_cost_bps("DEMO", "buy", 50.0, features)  # one order, microseconds

``model``: the square-root law baseline, the learned model, training and scoring, storage as
plain arrays; ``trees``: the learned model's trees walked by a compiled loop.
"""

from __future__ import annotations

from analytics.costmodel.model import (
    DEFAULT_FEATURES,
    MODEL_VERSION,
    TARGET,
    CostModelError,
    CostModelReport,
    ExecutionCostModel,
    Scores,
    SquareRootLaw,
    evaluate_cost_model,
    split_rows,
    train_cost_model,
)
from analytics.costmodel.trees import CompiledTrees

__all__ = [
    "DEFAULT_FEATURES",
    "MODEL_VERSION",
    "TARGET",
    "CompiledTrees",
    "CostModelError",
    "CostModelReport",
    "ExecutionCostModel",
    "Scores",
    "SquareRootLaw",
    "evaluate_cost_model",
    "split_rows",
    "train_cost_model",
]
