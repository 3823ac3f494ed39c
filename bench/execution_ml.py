"""The decision dataset of 1,000,000 orders and the cost model's prediction per order (issue 16),
against the naive ways, ratios measured in one run.

    python bench/execution_ml.py [--orders 1000000] [--symbols 20] [--sample 200]
                                  [--predictions 10000] [--fresh 3] [--repeat 3]
                                  [--postgres postgresql+psycopg2://USER@HOST:PORT/DB]

The book: ``tests.analytics.execution_book.impact_book``: ``--symbols`` symbols of 1m bars
(volatility and volume switching between calm and busy stretches), market orders filled at
the next open with a square-root impact law plus noise.

Dataset export (goal <= 10 s for 1,000,000 decisions), two rows:

- stored (what the user meets): the book imported through the app's own repositories into a
  temporary SQLite database (and, with ``--postgres URL``, into a scratch PostgreSQL database
  created on that server and dropped after): ``ExecutionRepository.add`` for the orders and
  fills, ``CandleRepository.upsert`` for each symbol's 1m bars. Then ``app.py dataset export
  --account bench-desk --out FILE.parquet`` as a fresh process, ``--fresh`` times, each from
  start to exit: migrations checked, the orders and fills read from execution_orders /
  execution_fills, the bars through CandleRepository.frame, the dataset, the file written.
  The store and the export use one cache directory (``CANDLE_CACHE_DIR``), as a user's
  import and export do: the first run meets the caches the store left and fills the rest
  (the candle and execution caches; a later run reads only rows added since), the next ones
  use them. PASS/FAIL on the median; the first run beside it; the processes' CPU seconds.
- from Parquet (the part after the database read): the book's orders, fills and bars are
  written to Parquet first; then a fresh process (``python bench/execution_ml.py --export
  DIR OUT``) imports the app, reads them and runs what ``app.py dataset export`` runs after
  its database read (``analytics.dataset.decision_dataset`` -> ``to_arrow`` ->
  ``write_parquet``, snappy), timed from start to exit, and the same in this process (the
  median of ``--repeat``).

The naive way: per decision, its bars cut at its time, the features by TA-Lib and pandas on
them (``naive_features`` of the tests, the same values) and the triple barrier walked over a
pandas slice, timed on ``--sample`` random decisions and extrapolated; the ratios divide it
by the in-process time and by the stored export's median.

Cost prediction (goal p99 <= 1 ms per order): a model trained on a 20,000-order book, then
``ExecutionCostModel.expected_cost_bps`` for ``--predictions`` single orders, one call each
(the compiled walk of the trees), p50 and p99; beside it scikit-learn's own ``predict`` on one
row (what the compiled walk replaces).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "bench-desk"
GOAL_EXPORT_S = 10.0
GOAL_P99_MS = 1.0


def export(inputs: Path, out: Path) -> int:
    """The fresh process: read the book, build the dataset, write it (the command's path)."""
    from analytics.dataset import DatasetSettings, decision_dataset, to_arrow, write_parquet

    orders = pd.read_parquet(inputs / "orders.parquet")
    fills = pd.read_parquet(inputs / "fills.parquet")
    bars = pd.read_parquet(inputs / "candles.parquet")
    candles = {str(s): part.drop(columns="symbol") for s, part in bars.groupby("symbol")}
    settings = DatasetSettings()
    frame = decision_dataset(orders, fills, candles, settings)
    write_parquet(to_arrow(frame, settings, {"account": "bench"}), out)
    return 0


def write_book(book, folder: Path) -> None:
    book.orders.to_parquet(folder / "orders.parquet")
    book.fills.to_parquet(folder / "fills.parquet")
    bars = pd.concat([frame.assign(symbol=name) for name, frame in book.candles.items()])
    bars.to_parquet(folder / "candles.parquet")


def naive_row(bars: pd.DataFrame, order: pd.Series, horizon: int = 20) -> dict[str, float]:
    """One decision the naive way: cut bars, TA-Lib and pandas features, a pandas walk."""
    import talib

    from tests.analytics.test_dataset import naive_features

    when = order["decision_time"]
    past = bars[bars.index + pd.Timedelta(minutes=1) <= when]
    out = naive_features(past, order["order_qty"])
    ahead = bars[bars.index + pd.Timedelta(minutes=1) > when].iloc[:horizon]
    s = 1 if order["side"] == "buy" else -1
    ref = order["decision_price"]
    atr = talib.ATR(*(past[c].to_numpy() for c in ("high", "low", "close")), 14)[-1]
    share = atr / past["close"].iloc[-1]
    up, down = ref * (1 + s * 2 * share), ref * (1 - s * share)
    label = 0
    for _, bar in ahead.iterrows():
        stop = bar["low"] <= down if s > 0 else bar["high"] >= down
        profit = bar["high"] >= up if s > 0 else bar["low"] <= up
        if stop or profit:
            label = -1 if stop else 1
            break
    out["tb_label"] = label
    return out


def bench_export(args) -> dict[str, Any]:
    from analytics.dataset import DatasetSettings, decision_dataset, to_arrow, write_parquet
    from tests.analytics.execution_book import impact_book

    bars = int(args.orders / args.symbols * 1.05) + 200
    t0 = time.perf_counter()
    book = impact_book(orders=args.orders, symbols=args.symbols, bars=bars, a=2.0, b=0.8,
                       noise_bps=3.0)  # fmt: skip
    print(f"book: {len(book.orders):,} orders, {args.symbols} symbols x {bars:,} 1m bars "
          f"({time.perf_counter() - t0:.1f} s to make)")  # fmt: skip
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_book(book, folder)
        out = folder / "dataset.parquet"
        fresh = []
        for _ in range(args.fresh):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, __file__, "--export", str(folder), str(out)], check=True
            )
            fresh.append(time.perf_counter() - start)
        rows = pq.read_metadata(out).num_rows
        inside = []
        settings = DatasetSettings()
        for _ in range(args.repeat):
            start = time.perf_counter()
            frame = decision_dataset(book.orders, book.fills, book.candles, settings)
            write_parquet(to_arrow(frame, settings, {}), folder / "again.parquet")
            inside.append(time.perf_counter() - start)
    rng = np.random.default_rng(1)
    picks = rng.choice(len(book.orders), size=args.sample, replace=False)
    start = time.perf_counter()
    for k in picks:
        order = book.orders.iloc[k]
        naive_row(book.candles[order["symbol"]], order)
    per_row = (time.perf_counter() - start) / args.sample
    naive = per_row * len(book.orders)
    ours = statistics.median(inside)
    print(f"dataset export, {rows:,} decisions x {frame.shape[1]} columns:")
    print(f"  fresh process (start to exit, the file written): "
          f"{', '.join(f'{t:.2f}' for t in fresh)} s  goal <= {GOAL_EXPORT_S:.0f} s: "
          f"{'PASS' if max(fresh) <= GOAL_EXPORT_S else 'FAIL'}")  # fmt: skip
    print(f"  in process, median of {args.repeat}: {ours:.2f} s")
    print(f"  naive per decision (TA-Lib + pandas on its cut bars, a pandas barrier walk): "
          f"{per_row * 1e3:.1f} ms x {len(book.orders):,} = {naive:,.0f} s (from "
          f"{args.sample} decisions)")  # fmt: skip
    print(f"  ratio naive / ours (in process): {naive / ours:,.0f}x")
    return {"fresh": max(fresh), "inside": ours, "naive": naive, "book": book}


def store_book(url: str, book, env: dict[str, str]) -> tuple[float, float]:
    """The book into the database at ``url`` through the app's repositories (migrated first):
    the orders and fills (ExecutionRepository.add), each symbol's 1m bars (CandleRepository
    .upsert); seconds for each. ``env``: the export's settings, in force while storing, so
    that the caches the store writes are the ones the export reads (a user has one
    ``CANDLE_CACHE_DIR``)."""
    from database import migrate
    from database.repositories.candles import CandleRepository
    from database.repositories.executions import ExecutionRepository
    from database.session import make_engine, make_session_factory

    saved = dict(os.environ)
    os.environ.update(env)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        start = time.perf_counter()
        with sessions() as session, session.begin():
            orders = book.orders.assign(account_id=ACCOUNT, source="bench")
            ExecutionRepository(session).add(ACCOUNT, orders, book.fills)
        middle = time.perf_counter()
        with sessions() as session, session.begin():
            candles = CandleRepository(session)
            for symbol, frame in book.candles.items():
                candles.upsert(symbol, "1m", frame)
        return middle - start, time.perf_counter() - middle
    finally:
        engine.dispose()
        os.environ.clear()
        os.environ.update(saved)


def stored_export(args, name: str, url: str, book, naive: float, scratch: Path) -> dict[str, Any]:
    """``app.py dataset export`` as a fresh process on the book stored at ``url``."""
    import pyarrow.parquet as pq

    out = scratch / f"{name}.parquet"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "DATABASE_URL": url,
        "STRATLENS_DATA_DIR": str(scratch / "data"),
        # one cache directory for the store and the export, as a user has: the first export
        # is what the user meets after importing
        "CANDLE_CACHE_DIR": str(scratch / f"cache-{name}"),
        "LOAD_SAMPLE_DATA": "false",
        "LOG_LEVEL": "WARNING",
    }
    cached = scratch / "execution_cache"  # beside the candle cache: _execution_cache
    others = set(cached.glob("*")) if cached.exists() else set()
    orders_s, bars_s = store_book(url, book, env)
    imported = sorted(set(cached.glob("*")) - others) if cached.exists() else []
    print(f"  stored in {name}: {len(book.orders):,} orders + {len(book.fills):,} fills "
          f"{orders_s:.1f} s (ExecutionRepository.add), {sum(map(len, book.candles.values())):,}"
          f" bars {bars_s:.1f} s (CandleRepository.upsert)")  # fmt: skip
    command = [sys.executable, str(ROOT / "app.py"), "dataset", "export", "--account", ACCOUNT,
               "--out", str(out)]  # fmt: skip
    times, cpu = [], []

    def run(target: Path) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([*command[:-1], str(target)], env=env, cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")

    for _ in range(args.fresh):
        run(out)
    # the first run as it was before the import wrote the execution cache: its files removed
    # (the bars' cache kept), the orders and fills read from the database; the same dataset
    for path in imported:
        path.unlink()
    run(scratch / f"{name}-no-import-cache.parquet")
    former, former_cpu = times.pop(), cpu.pop()
    same = pq.read_table(out).equals(pq.read_table(scratch / f"{name}-no-import-cache.parquet"))
    rows = pq.read_metadata(out).num_rows
    median = statistics.median(times)
    print(f"  {name}: app.py dataset export --account {ACCOUNT} (a fresh process, start to "
          f"exit, {rows:,} decisions): {', '.join(f'{t:.2f}' for t in times)} s (first "
          f"{times[0]:.2f} s), median {median:.2f} s  goal <= {GOAL_EXPORT_S:.0f} s: "
          f"{'PASS' if median <= GOAL_EXPORT_S else 'FAIL'}")  # fmt: skip
    print(f"  {name}: CPU seconds of those processes (user + system; the machine is shared): "
          f"{', '.join(f'{t:.2f}' for t in cpu)} s")  # fmt: skip
    print(f"  {name}: the first run without the {len(imported)} execution cache files the "
          f"import wrote (as before they were: the orders and fills read from the database): "
          f"{former:.2f} s, CPU {former_cpu:.2f} s; the same dataset: {same}")  # fmt: skip
    print(f"  {name}: ratio naive / ours (the stored export's median): {naive / median:,.0f}x")
    return {"times": times, "median": median, "rows": rows, "cpu": cpu, "former": former}


def bench_stored(args, book, naive: float) -> dict[str, Any]:
    """The "stored" row: the book in a temporary SQLite database (and a scratch PostgreSQL
    database with --postgres), exported by the command as a user runs it."""
    from sqlalchemy import create_engine, make_url

    print("dataset export from the database (the orders, fills and bars stored by the app):")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        url = f"sqlite:///{scratch / 'stratlens.db'}"
        out["SQLite"] = stored_export(args, "SQLite", url, book, naive, scratch)
        if args.postgres:
            server_url = make_url(args.postgres)
            server = create_engine(server_url, isolation_level="AUTOCOMMIT")
            name = f"stratlens_bench_ml_{uuid.uuid4().hex[:8]}"
            try:
                with server.connect() as connection:
                    connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
                target = server_url.set(database=name).render_as_string(hide_password=False)
                out["PostgreSQL"] = stored_export(args, "PostgreSQL", target, book, naive, scratch)
            finally:
                with server.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                server.dispose()
    return out


def bench_prediction(args) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from analytics.costmodel import split_rows, train_cost_model
    from analytics.dataset import decision_dataset
    from tests.analytics.execution_book import impact_book

    book = impact_book(orders=20_000, symbols=4, bars=20_000, a=2.0, b=0.8, noise_bps=3.0)
    frame = decision_dataset(book.orders, book.fills, book.candles)
    model, report = train_cost_model(frame)
    print(f"cost model on the 20,000-order law book: {report.iterations} trees, test MAE "
          f"{report.model.mae_bps:.3f} bps (law {report.baseline.mae_bps:.3f})")  # fmt: skip
    rows = frame.sample(args.predictions, replace=True, random_state=2)
    inputs = []
    for _, row in rows.iterrows():
        features = {name: float(row[name]) for name in model.features}
        features["avg_volume"] = row["order_qty"] / row["size_vs_avg_volume"]
        inputs.append((row["symbol"], row["side"], float(row["order_qty"]), features))
    model.expected_cost_bps(*inputs[0])  # the compiled walk loaded once
    times = []
    for item in inputs:
        start = time.perf_counter()
        model.expected_cost_bps(*item)
        times.append(time.perf_counter() - start)
    p50, p99 = (float(np.percentile(times, q)) * 1e3 for q in (50, 99))
    train = split_rows(frame)["train"]
    X = model.matrix(frame)
    y = frame["arrival_slippage_bps"].to_numpy()
    regressor = HistGradientBoostingRegressor(max_iter=report.iterations, early_stopping=False,
                                              random_state=0).fit(X[train], y[train])  # fmt: skip
    regressor.predict(X[:1])  # its thread pool started once
    slow = []
    for k in range(300):
        start = time.perf_counter()
        regressor.predict(X[k : k + 1])
        slow.append(time.perf_counter() - start)
    s50, s99 = (float(np.percentile(slow, q)) * 1e3 for q in (50, 99))
    print(f"cost prediction, {args.predictions:,} single orders (features dict -> bps):")
    print(
        f"  ExecutionCostModel.expected_cost_bps p50 {p50:.4f} ms, p99 {p99:.4f} ms  "
        f"goal p99 <= {GOAL_P99_MS:g} ms: {'PASS' if p99 <= GOAL_P99_MS else 'FAIL'}"
    )
    print(f"  scikit-learn predict on one row: p50 {s50:.2f} ms, p99 {s99:.2f} ms "
          f"({s99 / p99:,.0f}x our p99)")  # fmt: skip
    return {"p50": p50, "p99": p99}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", type=int, default=3)
    parser.add_argument("--predictions", type=int, default=10_000)
    parser.add_argument("--postgres", default=None,
                        help="postgresql+psycopg2://USER@HOST:PORT/DB: also the stored export "
                        "on PostgreSQL (a scratch database created and dropped there)")  # fmt: skip
    parser.add_argument("--export", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        return export(*args.export)
    done = bench_export(args)
    bench_stored(args, done["book"], done["naive"])
    bench_prediction(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
