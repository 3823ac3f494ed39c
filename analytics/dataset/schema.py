"""Every column's definition, and the dataset as an Arrow table that carries them.

>>> table = to_arrow(frame, settings, source={"account": "demo"})
>>> table.schema.field("rsi").metadata[b"definition"]
b'RSI (TA-Lib, rsi_period bars) at the feature bar'
>>> json.loads(table.schema.metadata[b"stratlens.dataset"])["columns"]["split"]

The file-level metadata (key ``stratlens.dataset``, JSON) holds the format version, the
settings, the strictly-before rule, the split and embargo rule, the counts and every column's
definition; each field also carries its own ``definition`` (and ``role``: id, feature or
outcome). docs/dataset.md is the same text.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.tca.conventions import horizon_label

FORMAT_VERSION = 1
METADATA_KEY = b"stratlens.dataset"

RULE_BEFORE = (
    "features of a decision at time t are read from the bars closed at or before t (open + "
    "bar length <= t), the last of them the feature bar; no bar opening after it is read, the "
    "decision's own (forming) bar included"
)
RULE_SPLIT = (
    "rows in decision-time order; the first `split[0]` share is train, the next `split[1]` "
    "validation, the rest test (equal decision times stay in one split); embargo is true on a "
    "train or validation row whose outcome_end_time is after the first decision of the next "
    "split: train a model on train rows without embargo, stop early on validation rows without "
    "embargo, score on test rows"
)

ID = {
    "order_id": "the order (the decision) as the account names it",
    "account_id": "the account",
    "strategy_id": "the strategy (a paper deployment's name, 'manual' otherwise)",
    "symbol": "the traded symbol",
    "side": "buy or sell",
    "order_type": "market, limit, stop or stop_limit",
    "algo": "the order's purpose or algorithm (paper: entry, exit, protect)",
    "decision_time": "when the decision was taken (the order's decision_time, else its "
    "arrival_time), UTC",
    "feature_bar_close": "close time of the feature bar: the last bar closed at or before "
    "decision_time (null: no bar yet)",
    "order_qty": "ordered quantity (units)",
    "decision_price": "the price the decision saw (the order's decision_price)",
}
FEATURES = {
    "rsi": "RSI (TA-Lib, rsi_period bars) at the feature bar",
    "atr_pct": "100 x ATR (TA-Lib, atr_period bars) / close at the feature bar: ATR as a "
    "percentage of the price",
    "atr_rank_pct": "percentile rank (0-100) of ATR/close at the feature bar among the last "
    "rank_window bars' (ties count half)",
    "volatility_bps": "population standard deviation of the last volatility_window one-bar "
    "close-to-close returns, in bps",
    "volume_z": "(volume of the feature bar - mean of the volume_window volumes before it) / "
    "their population standard deviation (null when they are all equal)",
    "to_high_atr": "(Donchian high over donchian_period bars - close) / ATR at the feature bar",
    "to_low_atr": "(close - Donchian low over donchian_period bars) / ATR at the feature bar",
    "bar_range_bps": "(high - low) / close of the feature bar, in bps: a spread proxy",
    "size_vs_avg_volume": "order_qty / mean volume of the volume_window bars ending at the "
    "feature bar (participation)",
    "impact_term_bps": "volatility_bps x sqrt(size_vs_avg_volume): the square-root impact "
    "law's term",
    "side_sign": "+1 buy, -1 sell",
    "hour": "hour of decision_time, UTC (0-23)",
    "weekday": "weekday of decision_time, UTC (Monday 0 - Sunday 6)",
    "volatility_regime": "low (atr_rank_pct <= low_percentile), high (>= high_percentile), "
    "else medium; null while the rank warms up (docs/labels.md's rule)",
    "market_session": "the session decision_time falls in, by the calendar the bars up to "
    "the feature bar show (docs/labels.md): regular, pre_market, after_hours, or the UTC "
    "session (europe, america, asia)",
    "signal_confidence": "confidence (0-1) of the decision's signal: the latest signal of the "
    "same strategy and symbol at or before decision_time, at most one bar earlier (null: none)",
}
OUTCOMES = {
    "fill_rate": "filled / ordered quantity (docs/tca.md)",
    "arrival_slippage_bps": "s x (average fill - arrival price) / arrival price x 1e4; "
    "positive = a cost (docs/tca.md)",
    "is_bps": "Perold's implementation shortfall, bps of the paper notional (docs/tca.md)",
    "is_delay_bps": "shortfall's delay part (decision to arrival)",
    "is_trading_bps": "shortfall's trading part (arrival to fills)",
    "is_opportunity_bps": "shortfall's opportunity part (unfilled quantity)",
    "is_fees_bps": "shortfall's fees part",
    "permanent_impact_bps": "s x (close at last fill + impact horizon - arrival) / arrival x "
    "1e4 (docs/tca.md)",
    "temporary_impact_bps": "arrival_slippage_bps - permanent_impact_bps",
    "tb_label": "triple barrier: +1 the profit barrier (reference x (1 + s x profit_atr x "
    "ATR/close)) reached first, -1 the stop barrier (reference x (1 - s x stop_atr x "
    "ATR/close)) first (both in one bar: -1), 0 neither within horizon_bars bars after the "
    "feature bar; null: fewer bars known. Reference: decision_price (else the feature bar's "
    "close); ATR/close at the feature bar",
    "tb_return_bps": "return at the barrier reached, in bps in the decision's direction: "
    "+profit_atr x ATR/close, -stop_atr x ATR/close, or at the vertical barrier s x (close - "
    "reference) / reference",
    "tb_bars": "bars from the feature bar to the barrier reached (1 - horizon_bars)",
    "forward_return_bps": "s x (close horizon_bars bars after the feature bar - reference) / "
    "reference x 1e4",
    "net_return_bps": "net return after all costs of the round trip this order opened "
    "(docs/tca.md#decision-quality); null for an order that opened none",
    "excess_return_bps": "net_return_bps - the decision's expected return (0 when not given)",
    "decision_quality": "good (excess > +threshold), bad (< -threshold), neutral; null when "
    "the order opened no closed round trip",
}
SPLIT = {
    "outcome_end_time": "the latest instant any outcome of the row reads: the vertical "
    "barrier's bar close, the last fill + the longest markout or impact horizon, the exit of "
    "the round trip it opened",
    "split": "train, validation or test (time-ordered, see the split rule)",
    "embargo": "true: the row's outcome_end_time is after the next split's first decision; "
    "leave it out of training (and of early stopping)",
}


def definitions(columns: list[str]) -> dict[str, tuple[str, str]]:
    """column -> (role, definition) for every column of a dataset frame."""
    out: dict[str, tuple[str, str]] = {}
    for name in columns:
        out[name] = _definition(name)
    return out


def _definition(name: str) -> tuple[str, str]:
    for role, table in (("id", ID), ("feature", FEATURES), ("outcome", OUTCOMES),
                        ("split", SPLIT)):  # fmt: skip
        if name in table:
            return role, table[name]
    if name.startswith("ret_") and name.endswith("b_bps"):
        bars = name[4:-5]
        return "feature", (
            f"close-to-close return over the {bars} bars ending at the feature bar, in bps "
            f"(close / close {bars} bars before - 1) x 1e4"
        )
    if name.startswith("markout_") and name.endswith("_bps"):
        horizon = name[8:-4]
        return "outcome", (
            f"quantity-weighted mean of the fills' markouts at {horizon}: s x (close of the "
            f"bar holding fill time + {horizon} - fill price) / fill price x 1e4; positive = "
            "the price moved in the trade's favour (docs/tca.md)"
        )
    if name.startswith("signal_"):
        return "feature", (
            f"the strategy's indicator value '{name[7:]}' in the decision's signal (its "
            "metadata; null: no signal or no such value)"
        )
    raise KeyError(f"no definition for dataset column {name!r}")


def to_arrow(frame: pd.DataFrame, settings: Any, source: dict[str, Any] | None = None) -> pa.Table:
    """The dataset as an Arrow table, each field with its definition and role, the table with
    the whole description under :data:`METADATA_KEY`."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    described = definitions(list(frame.columns))
    fields = [
        field.with_metadata(
            {"definition": described[field.name][1], "role": described[field.name][0]}
        )
        for field in table.schema
    ]
    splits = frame["split"].value_counts().reindex(["train", "validation", "test"], fill_value=0)
    document = {
        "format": "stratlens decision dataset",
        "version": FORMAT_VERSION,
        "source": source or {},
        "rows": len(frame),
        "rows_by_split": {k: int(v) for k, v in splits.items()},
        "embargoed": int(frame["embargo"].sum()),
        "strictly_before": RULE_BEFORE,
        "split_rule": RULE_SPLIT,
        "settings": _settings_document(settings),
        "columns": {name: {"role": r, "definition": d} for name, (r, d) in described.items()},
    }
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(document).encode()
    return table.cast(pa.schema(fields, metadata=metadata))


def _settings_document(settings: Any) -> dict[str, Any]:
    values = asdict(settings)
    tca = settings.tca
    values["tca"] = {
        "markout_horizons": [horizon_label(h) for h in tca.markout_horizons],
        "impact_horizon": horizon_label(tca.impact_horizon),
        "decision_threshold_bps": tca.decision_threshold_bps,
        "bar_length": None if tca.bar_length is None else horizon_label(tca.bar_length),
    }
    values["sessions"] = {
        "pre_market_minutes": settings.sessions.pre_market_minutes,
        "utc_sessions": [list(s) for s in settings.sessions.utc_sessions],
    }
    values["split"] = list(settings.split)
    values["return_horizons"] = list(settings.return_horizons)
    return values


def write_parquet(table: pa.Table, where: Any) -> None:
    """The table as a Parquet file (snappy) at ``where`` (a path or a writable binary file).
    Dictionary encoding only for the texts and categories: the numbers are nearly all
    distinct, so Parquet's default tried a dictionary for each of them and gave it up after
    1 MB (a third of the write of 1,000,000 rows). Readers get the same table either way."""
    texts = [
        field.name
        for field in table.schema
        if pa.types.is_string(field.type)
        or pa.types.is_large_string(field.type)
        or pa.types.is_dictionary(field.type)
    ]
    pq.write_table(table, where, compression="snappy", use_dictionary=texts)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as a Parquet file's bytes (:func:`write_parquet`), for a download."""
    sink = io.BytesIO()
    write_parquet(table, sink)
    return sink.getvalue()


def description(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The dataset description a file's schema metadata holds (KeyError: not a dataset)."""
    if not metadata or METADATA_KEY not in metadata:
        raise KeyError("not a StratLens decision dataset (no 'stratlens.dataset' metadata)")
    return json.loads(metadata[METADATA_KEY])
