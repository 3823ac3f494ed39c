"""The cost model: on orders whose cost is a known square-root law plus noise, the learned
model's error comes within 10% of the noise and the fitted law finds its coefficients; the
compiled trees equal scikit-learn's predict; a stored model reads back the same; the scores
worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from analytics.costmodel import (
    CompiledTrees,
    CostModelError,
    ExecutionCostModel,
    Scores,
    SquareRootLaw,
    train_cost_model,
)
from analytics.dataset import decision_dataset
from tests.analytics.execution_book import impact_book

A, B, NOISE = 2.0, 0.8, 3.0


@pytest.fixture(scope="module")
def law_book():
    book = impact_book(orders=20_000, symbols=4, bars=20_000, a=A, b=B, noise_bps=NOISE)
    frame = decision_dataset(book.orders, book.fills, book.candles)
    noise = pd.Series(book.noise_bps, index=book.orders["order_id"])
    return frame, noise


def test_the_learned_model_comes_within_10_percent_of_the_noise(law_book):
    frame, noise = law_book
    model, report = train_cost_model(frame)
    test = (frame["split"] == "test").to_numpy()
    noise_mae = float(np.abs(noise.loc[frame.loc[test, "order_id"]]).mean())
    assert report.rows["test"] == test.sum() > 3_000
    assert report.model.mae_bps <= 1.1 * noise_mae
    assert report.baseline.mae_bps <= 1.1 * noise_mae  # the law itself is the truth here
    # the fitted law finds the generating coefficients
    assert report.law.a == pytest.approx(A, abs=0.15)
    assert report.law.b == pytest.approx(B, rel=0.05)
    # R squared: the share of the cost's variance that is not the noise's, roughly
    realised = frame.loc[test, "arrival_slippage_bps"]
    explainable = 1.0 - NOISE**2 / realised.var(ddof=0)
    assert report.model.r2 == pytest.approx(explainable, abs=0.05)
    within = float((np.abs(noise.loc[frame.loc[test, "order_id"]]) <= 5.0).mean())
    assert report.model.within_5bps == pytest.approx(within, abs=0.03)
    # an order's expected cost from its features alone, as the broker asks for it
    row = frame.loc[test].iloc[0]
    features = {name: row[name] for name in model.features}
    features["avg_volume"] = row["order_qty"] / row["size_vs_avg_volume"]
    one = model.expected_cost_bps(row["symbol"], row["side"], row["order_qty"], features)
    assert one == pytest.approx(model.predict(frame.loc[test].iloc[[0]])[0], rel=1e-12)


def test_the_compiled_trees_equal_scikit_learns_predict():
    rng = np.random.default_rng(5)
    X = rng.random((4_000, 6))
    y = 3 * X[:, 0] + np.sin(6 * X[:, 1]) + rng.standard_normal(4_000) * 0.1
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take each node's learned side
    regressor = HistGradientBoostingRegressor(max_iter=80, early_stopping=False).fit(X, y)
    trees = CompiledTrees.of(regressor)
    Z = rng.random((2_000, 6)) * 1.2 - 0.1
    Z[rng.random(Z.shape) < 0.2] = np.nan
    np.testing.assert_allclose(trees.predict(Z), regressor.predict(Z), rtol=0, atol=1e-12)
    assert trees.predict_one(Z[7]) == pytest.approx(regressor.predict(Z[7:8])[0], abs=1e-12)
    again = CompiledTrees.from_arrays(trees.arrays())
    np.testing.assert_array_equal(again.predict(Z), trees.predict(Z))


def test_a_stored_model_reads_back_and_predicts_the_same(law_book):
    frame, _ = law_book
    model, _ = train_cost_model(frame, params={"max_iter": 40})
    model.info["account"] = "synthetic"
    back = ExecutionCostModel.from_bytes(model.to_bytes())
    assert back.features == model.features
    assert back.law == model.law
    assert back.info["account"] == "synthetic"
    np.testing.assert_array_equal(back.predict(frame), model.predict(frame))
    with pytest.raises(CostModelError, match="not a stored cost model"):
        ExecutionCostModel.from_bytes(b"not an npz")


def test_scores_worked_by_hand():
    scores = Scores.of(np.array([1.0, 2.0, 3.0, 10.0]), np.array([1.0, 4.0, 3.0, 2.0]))
    assert scores.rows == 4
    assert scores.mae_bps == pytest.approx((0 + 2 + 0 + 8) / 4)
    # SSE 68, total sum of squares around the mean 4: 9 + 4 + 1 + 36 = 50
    assert scores.r2 == pytest.approx(1 - 68 / 50)
    assert scores.within_5bps == pytest.approx(0.75)
    flat = Scores.of(np.full(3, 5.0), np.full(3, 5.0))
    assert flat.mae_bps == 0.0
    assert np.isnan(flat.r2)  # nothing varies: R squared is undefined, not 1 or 0
    law = SquareRootLaw.fit(np.array([0.0, 1.0, 4.0, np.nan]), np.array([1.0, 3.0, 9.0, 7.0]))
    assert (law.a, law.b) == (pytest.approx(1.0), pytest.approx(2.0))
    assert law.predict(np.array([np.nan, 2.0])).tolist() == pytest.approx([1.0, 5.0])


def test_too_few_training_rows_are_refused(law_book):
    frame, _ = law_book
    with pytest.raises(CostModelError, match="training rows"):
        train_cost_model(frame.head(20))
