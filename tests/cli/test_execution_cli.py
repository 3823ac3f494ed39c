"""`app.py dataset export` and `app.py costmodel train|evaluate` as real processes on a paper
replay's account: one dataset row per filled order with its definitions in the file, and a
cost model that recovers the broker's configured slippage plus half its spread."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.cli.test_paper_cli import app, query

SLIPPAGE_BPS, SPREAD_BPS = 4.0, 2.0  # the broker's cost: 4 + 2 / 2 = 5 bps per fill


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """DEMO's 1m bars (each bar opens at the last close) replayed by an EMA crossover: every
    market order fills at the next open plus the configured slippage and half spread."""
    data = tmp_path_factory.mktemp("execution") / "data"
    done = app(data, "paper", "replay", "--symbol", "DEMO", "--timeframe", "1m", "--strategy",
               "ema_crossover", "--set", "direction=both", "--account", "x1", "--commission",
               "0.001", "--slippage-bps", str(SLIPPAGE_BPS), "--spread-bps", str(SPREAD_BPS),
               "--end", "2024-01-08")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return data


@pytest.mark.slow
def test_a_paper_accounts_dataset_is_one_row_per_order_with_its_definitions(replayed, tmp_path):
    out = tmp_path / "x1.parquet"
    done = app(replayed, "dataset", "export", "--account", "x1", "--out", str(out),
               "--horizon", "30", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    table = pq.read_table(out)
    filled = query(replayed, "SELECT COUNT(*) FROM orders WHERE status = 'filled'")[0][0]
    assert summary["rows"] == table.num_rows == filled > 100
    document = json.loads(table.schema.metadata[b"stratlens.dataset"])
    assert document["settings"]["horizon_bars"] == 30
    assert document["source"]["account"] == "x1"
    assert sum(summary["rows_by_split"].values()) == filled
    assert all(f.metadata and b"definition" in f.metadata for f in table.schema)
    frame = table.to_pandas()
    assert frame["arrival_slippage_bps"].to_numpy() == pytest.approx(SLIPPAGE_BPS + SPREAD_BPS / 2)
    # the signals' confidence and the strategy's indicator values reach the entries and exits
    signalled = frame["algo"].isin(["entry", "exit"])
    assert frame.loc[signalled, "signal_confidence"].notna().all()
    assert frame.loc[signalled, "signal_fast_ema"].notna().all()
    assert (frame["feature_bar_close"] <= frame["decision_time"]).all()

    missing = app(replayed, "dataset", "export", "--account", "nobody", "--out", str(out))
    assert missing.returncode == 2
    assert "dataset export: " in missing.stderr
    assert "'nobody'" in missing.stderr


@pytest.mark.slow
def test_the_cost_model_recovers_the_brokers_configured_slippage(replayed):
    none = app(replayed, "costmodel", "evaluate", "--account", "x1")
    assert none.returncode == 2
    assert "no cost model stored for account 'x1'" in none.stderr
    train = app(replayed, "costmodel", "train", "--account", "x1", "--json")
    assert train.returncode == 0, train.stderr
    report = json.loads(train.stdout)
    expected = SLIPPAGE_BPS + SPREAD_BPS / 2
    assert report["square_root_law"]["a"] == pytest.approx(expected, abs=1e-6)
    assert report["square_root_law"]["b"] == pytest.approx(0.0, abs=1e-6)
    assert report["model"]["mae_bps"] < 1e-6
    assert report["model"]["within_5bps"] == 1.0
    assert report["model"]["r2"] is None  # the realised cost never varies: R2 undefined
    assert report["rows"]["test"] > 20
    stored = report["path"]
    assert stored.endswith("models/costmodel-x1.npz")
    again = app(replayed, "costmodel", "evaluate", "--account", "x1", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["model"] == report["model"]
    text = app(replayed, "costmodel", "evaluate", "--account", "x1")
    assert "gradient boosting" in text.stdout
    assert "square-root law" in text.stdout


@pytest.mark.slow
def test_the_paper_broker_asks_the_stored_model_for_an_orders_expected_cost(replayed):
    """A broker built with the service's estimator keeps each sized order's expected cost;
    the model trained on the replay expects the configured 5 bps."""
    from datetime import UTC, datetime

    from config.settings import Settings
    from database.session import make_session_factory
    from services.database_setup import prepare_database
    from services.execution_ml import ExecutionMLService
    from tests.cli.test_paper_cli import environment
    from trading.broker import PaperBroker
    from trading.orders import AccountBook, OrderRequest

    assert app(replayed, "costmodel", "train", "--account", "x1").returncode == 0
    settings = Settings.from_env(environment(replayed))
    engine = prepare_database(settings)
    try:
        service = ExecutionMLService(make_session_factory(engine), settings.data_dir)
        broker = PaperBroker(
            AccountBook("probe", cash=1e6), symbols={"DEMO"}, expected_cost=service.estimator("x1")
        )
        now = datetime(2024, 1, 5, 12, 0, tzinfo=UTC)
        sized = broker.submit(OrderRequest("p-1", "DEMO", "buy", quantity=20.0), now, 100.0)
        unsized = broker.submit(OrderRequest("p-2", "DEMO", "sell"), now, 100.0)
        direct = service.expected_cost_bps("x1", "DEMO", "buy", 20.0, pd.Timestamp(now))
    finally:
        engine.dispose()
    assert sized.extra["expected_cost_bps"] == pytest.approx(SLIPPAGE_BPS + SPREAD_BPS / 2)
    assert sized.extra["expected_cost_bps"] == direct
    assert "expected_cost_bps" not in unsized.extra  # sized at its fill: nothing to ask yet
