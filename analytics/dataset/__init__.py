"""ML datasets of trading decisions: one row per order, its features known strictly before the
decision, its outcomes, a time-ordered split with an embargo (issue 16; docs/dataset.md).

>>> frame = decision_dataset(orders, fills, candles, DatasetSettings(horizon_bars=30))
>>> table = to_arrow(frame, settings, source={"account": "demo"})   # definitions in metadata
>>> data = parquet_bytes(table)                                     # a download's bytes

Pure: frames in, frames out, computed over whole columns (``features``: the bar-level
features per symbol and the feature bar of each decision; ``build``: outcomes, signals,
split; ``schema``: definitions and the Arrow table; ``_kernels``: two compiled loops).
"""

from __future__ import annotations

from analytics.dataset.build import SPLITS, DatasetSettings, decision_dataset
from analytics.dataset.features import (
    bar_feature_names,
    bar_features,
    decision_features,
    feature_names,
    last_closed,
)
from analytics.dataset.schema import (
    FORMAT_VERSION,
    METADATA_KEY,
    definitions,
    description,
    parquet_bytes,
    to_arrow,
    write_parquet,
)

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "SPLITS",
    "DatasetSettings",
    "bar_feature_names",
    "bar_features",
    "decision_dataset",
    "decision_features",
    "definitions",
    "description",
    "feature_names",
    "last_closed",
    "parquet_bytes",
    "to_arrow",
    "write_parquet",
]
