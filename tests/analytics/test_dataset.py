"""The decision dataset: no feature reads a bar after its decision (the truncation test), the
features equal a per-decision pandas/TA-Lib computation and the labels' own market context,
the triple barrier worked by hand, the time-ordered split and its embargo, the signals' join,
and the Parquet file's schema and definitions."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import talib

from analytics.dataset import (
    DatasetSettings,
    bar_feature_names,
    decision_dataset,
    description,
    parquet_bytes,
    to_arrow,
)
from analytics.label_config import load_label_config
from analytics.market_context import market_context
from tests.analytics.execution_book import MINUTE, START, impact_book, random_bars

FEATURES = (*bar_feature_names((1, 5, 20, 60)), "side_sign", "hour", "weekday")


@pytest.fixture(scope="module")
def book():
    """3 symbols x 2,500 1m bars, 600 orders; some decided mid-bar (30 s after a close)."""
    out = impact_book(orders=600, symbols=3, bars=2_500, a=1.0, b=1.0, noise_bps=2.0, seed=3)
    shift = pd.to_timedelta(np.where(np.arange(len(out.orders)) % 3 == 0, 30, 0), unit="s")
    for column in ("decision_time", "arrival_time"):
        out.orders[column] = out.orders[column] + shift
    out.fills["fill_time"] = out.fills["fill_time"] + shift
    return out


@pytest.fixture(scope="module")
def dataset(book):
    return decision_dataset(book.orders, book.fills, book.candles)


def cut(candles: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """The bars closed at or before ``when``."""
    return candles[candles.index + MINUTE <= when]


def test_no_feature_reads_a_bar_after_its_decision(book, dataset):
    """Each decision's features recomputed from the bars cut at its own time, and again from
    bars whose future (every bar after the feature bar) is replaced by nonsense, are the same
    values: nothing after the decision went into them. Changing the feature bar itself does
    change them, so the comparison can see a leak."""
    rows = dataset.sample(80, random_state=1)
    orders = book.orders.set_index("order_id")
    fills = book.fills.set_index("order_id")
    columns = (*FEATURES, "volatility_regime", "market_session", "feature_bar_close")
    changed = 0
    for _, row in rows.iterrows():
        order_id, when = row["order_id"], row["decision_time"]
        one = orders.loc[[order_id]].reset_index()
        fill = fills.loc[[order_id]].reset_index()
        bars = book.candles[row["symbol"]]
        for candles in (cut(bars, when), poisoned(bars, bars.index + MINUTE > when)):
            again = decision_dataset(one, fill, {row["symbol"]: candles}).iloc[0]
            for name in columns:
                same = again[name] == row[name] or (pd.isna(again[name]) and pd.isna(row[name]))
                assert same, (order_id, name, again[name], row[name])
        last = cut(bars, when).index[-1]
        touched = decision_dataset(one, fill, {row["symbol"]: poisoned(bars, bars.index >= last)})
        changed += touched.loc[0, "ret_1b_bps"] != row["ret_1b_bps"]
    assert changed == len(rows)


def poisoned(bars: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``bars`` with the chosen rows' prices tripled and volumes multiplied by 50."""
    out = bars.copy()
    out.loc[rows, ["open", "high", "low", "close"]] *= 3.0
    out.loc[rows, "volume"] *= 50.0
    return out


def naive_features(bars: pd.DataFrame, quantity: float) -> dict[str, float]:
    """One decision's features from its cut bars, TA-Lib and pandas on the last values."""
    close, high, low, volume = (bars[c].to_numpy() for c in ("close", "high", "low", "volume"))
    atr = talib.ATR(high, low, close, 14)
    share = atr / close
    window = share[-100:]
    rank = 100.0 * ((window < share[-1]).sum() + 0.5 * (window == share[-1]).sum()) / 100
    returns = pd.Series(close).pct_change().to_numpy() * 1e4
    before = volume[-21:-1]
    avg = volume[-20:].mean()
    sigma = returns[-20:].std(ddof=0)
    out = {f"ret_{h}b_bps": (close[-1] / close[-1 - h] - 1) * 1e4 for h in (1, 5, 20, 60)}
    out |= {
        "rsi": talib.RSI(close, 14)[-1],
        "atr_pct": 100 * share[-1],
        "atr_rank_pct": rank,
        "volatility_bps": sigma,
        "volume_z": (volume[-1] - before.mean()) / before.std(ddof=0),
        "to_high_atr": (high[-20:].max() - close[-1]) / atr[-1],
        "to_low_atr": (close[-1] - low[-20:].min()) / atr[-1],
        "bar_range_bps": (high[-1] - low[-1]) / close[-1] * 1e4,
        "size_vs_avg_volume": quantity / avg,
        "impact_term_bps": sigma * np.sqrt(quantity / avg),
    }
    return out


def test_features_equal_a_per_decision_talib_and_pandas_computation(book, dataset):
    for _, row in dataset.sample(60, random_state=2).iterrows():
        bars = cut(book.candles[row["symbol"]], row["decision_time"])
        expected = naive_features(bars, row["order_qty"])
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        when = row["decision_time"]
        assert row["hour"] == when.hour
        assert row["weekday"] == when.weekday()
        assert row["side_sign"] == (1 if row["side"] == "buy" else -1)
        assert row["feature_bar_close"] == bars.index[-1] + MINUTE


def test_regime_and_session_are_the_labels_market_context(book, dataset):
    """The volatility regime and the session equal analytics.market_context's at the same
    instants (the labels' rules, docs/labels.md)."""
    config = load_label_config()
    for symbol, rows in dataset.groupby("symbol"):
        fills = pd.DataFrame({"time": rows["decision_time"], "price": rows["decision_price"]})
        contexts = market_context(book.candles[symbol], MINUTE, fills, config)
        assert [c["volatility_regime"] for c in contexts] == [
            None if pd.isna(v) else v for v in rows["volatility_regime"]
        ]
        assert [c["market_session"] for c in contexts] == list(rows["market_session"])


def test_the_triple_barrier_worked_by_hand():
    """A buy decided at 100 with ATR/close 1%: the profit barrier at 102, the stop at 99."""
    bars = random_bars(40, np.random.default_rng(0))
    bars[["open", "high", "low", "close"]] = 100.0
    bars["high"], bars["low"] = 100.5, 99.5  # range 1: ATR(14) = 1 once warm
    late = bars.index[20:]
    bars.loc[late[2], "high"] = 102.1  # 3rd bar after the decision's feature bar: profit
    bars.loc[late[4], "low"] = 98.0
    orders = pd.DataFrame(
        {
            "order_id": ["buy", "sell", "late"],
            "account_id": "a",
            "strategy_id": "s",
            "symbol": "X",
            "side": ["buy", "sell", "buy"],
            "order_qty": 1.0,
            "order_type": "market",
            "limit_price": np.nan,
            "decision_time": [late[0], late[0], bars.index[-3]],
            "decision_price": 100.0,
            "arrival_time": [late[0], late[0], bars.index[-3]],
            "venue": "v",
            "algo": "m",
        }
    )
    fills = pd.DataFrame(
        {"order_id": orders["order_id"], "fill_time": orders["arrival_time"],
         "fill_price": 100.0, "fill_qty": 1.0, "fee": 0.0}
    )  # fmt: skip
    frame = decision_dataset(orders, fills, {"X": bars}, DatasetSettings(horizon_bars=10))
    by = frame.set_index("order_id")
    # the feature bar is late[0] - 1 bar; bars after it: late[0], late[1], late[2] (profit)
    assert by.loc["buy", "tb_label"] == 1
    assert by.loc["buy", "tb_bars"] == 3
    assert by.loc["buy", "tb_return_bps"] == pytest.approx(200.0)
    # the sell's stop (101) is reached first by late[2]'s high, its profit (98) never before
    assert by.loc["sell", "tb_label"] == -1
    assert by.loc["sell", "tb_return_bps"] == pytest.approx(-100.0)
    assert pd.isna(by.loc["late", "tb_label"])  # 3 bars left of the 10: unknown
    assert by.loc["buy", "forward_return_bps"] == pytest.approx(0.0)


def test_the_split_is_time_ordered_with_an_embargo_where_outcomes_overlap(dataset):
    times = dataset["decision_time"]
    assert times.is_monotonic_increasing
    codes = dataset["split"].cat.codes.to_numpy()
    assert (np.diff(codes) >= 0).all()
    counts = dataset["split"].value_counts()
    assert abs(counts["train"] - 0.6 * len(dataset)) <= 3
    assert abs(counts["validation"] - 0.2 * len(dataset)) <= 3
    for before, after in (("train", "validation"), ("validation", "test")):
        start = times[dataset["split"] == after].min()
        rows = dataset["split"] == before
        assert times[rows].max() < start
        expected = dataset.loc[rows, "outcome_end_time"] > start
        assert (dataset.loc[rows, "embargo"] == expected).all()
        assert expected.sum() > 0  # the 20-bar barrier and 60-minute markouts overlap
    assert not dataset.loc[dataset["split"] == "test", "embargo"].any()
    # the outcome end covers the vertical barrier and the 60-minute markout at least
    reach = dataset["decision_time"] + pd.Timedelta(minutes=60)
    assert (dataset["outcome_end_time"] >= reach).all()


def test_the_signal_behind_a_decision_is_joined_within_one_bar(book):
    orders = book.orders[book.orders["symbol"] == "S0"].iloc[[0, 10, 20]]
    fills = book.fills.set_index("order_id").loc[orders["order_id"]].reset_index()
    times = orders["decision_time"].to_numpy()
    signals = pd.DataFrame(
        {
            "strategy_id": "impact",
            "symbol": "S0",
            "time": [times[0], times[1] - 2 * MINUTE, times[2] - MINUTE],
            "confidence": [0.25, 0.5, 0.75],
            "signal_fast_ema": [1.0, 2.0, 3.0],
        }
    )
    frame = decision_dataset(orders, fills, book.candles, signals=signals).set_index("order_id")
    ids = orders["order_id"].tolist()
    assert frame.loc[ids[0], "signal_confidence"] == 0.25
    assert pd.isna(frame.loc[ids[1], "signal_confidence"])  # two bars before: not its own
    assert frame.loc[ids[2], "signal_confidence"] == 0.75
    assert frame.loc[ids[2], "signal_fast_ema"] == 3.0
    assert frame.loc[ids[0], "signal_fast_ema"] == 1.0


def test_the_parquet_file_holds_the_schema_and_every_definition(dataset):
    settings = DatasetSettings()
    table = to_arrow(dataset, settings, {"account": "synthetic"})
    read = pq.read_table(io.BytesIO(parquet_bytes(table)))
    document = description(read.schema.metadata)
    assert document["version"] == 1
    assert document["rows"] == len(dataset)
    assert document["source"] == {"account": "synthetic"}
    assert document["settings"]["horizon_bars"] == 20
    assert set(document["columns"]) == set(dataset.columns) == set(read.schema.names)
    for field in read.schema:
        meta = field.metadata
        assert meta[b"definition"].decode() == document["columns"][field.name]["definition"]
        assert meta[b"role"].decode() in {"id", "feature", "outcome", "split"}
    assert document["columns"]["embargo"]["role"] == "split"
    assert "closed at or before" in document["strictly_before"]
    assert json.loads(read.schema.metadata[b"stratlens.dataset"])["rows_by_split"] == {
        k: int((dataset["split"] == k).sum()) for k in ("train", "validation", "test")
    }
    back = read.to_pandas()
    pd.testing.assert_frame_equal(
        back[["order_id", "rsi", "arrival_slippage_bps", "embargo"]],
        dataset[["order_id", "rsi", "arrival_slippage_bps", "embargo"]],
        check_dtype=False,
    )
    with pytest.raises(KeyError, match="not a StratLens decision dataset"):
        description({b"pandas": b"{}"})


def test_a_decision_before_any_bar_has_missing_features_not_an_error(book, dataset):
    orders, fills = book.orders.head(1).copy(), book.fills.head(1)
    orders["decision_time"] = START - pd.Timedelta(hours=1)
    frame = decision_dataset(orders, fills, book.candles)
    assert frame[list(bar_feature_names((1, 5, 20, 60)))].isna().all(axis=None)
    assert pd.isna(frame.loc[0, "feature_bar_close"])
    assert pd.isna(frame.loc[0, "volatility_regime"])
    full = dataset.set_index("order_id").loc[orders["order_id"].iloc[0]]
    assert frame.loc[0, "arrival_slippage_bps"] == full["arrival_slippage_bps"]  # outcomes kept
