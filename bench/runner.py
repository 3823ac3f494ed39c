"""Paper trading's speed as a trader meets it (issue 14), ratios measured in one run.

    python bench/runner.py [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
                           [--bars 100000] [--skip-replay]

1. 200 running deployments (6 strategies x parameter sets x 3 symbols, 20 accounts) on a
   1m replay through the live runner (services.trading_runner): from a closed candle to every
   signal, order, fill and stored record (its transaction committed), per closed candle, on
   SQLite and on PostgreSQL. Goal p99 <= 20 ms. Also given without the candles that carry an
   account's first fill on a symbol (the trade tracker warms that pair's labeller then, once).
   Against the naive way: each deployment its own engine (no shared indicator) and its own
   transaction.
2. ``app.py paper replay`` over ``--bars`` 1m bars as a fresh process (the database set up
   by an earlier command: migrations and the bundled series are not timed), against a
   backtesting.py script (its event loop, the same bars from CSV, SmaCross 10/30 both sides)
   as a fresh process; the replay's trades must equal ``app.py backtest --json`` (our engine)
   exactly. Goal >= 2x faster than backtesting.py.
3. Paper order placement to acknowledgement in process (PaperBroker.submit of limit orders):
   goal p99 <= 1 ms; against placing and storing each order in its own transaction.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._bytecode import compile_sources, import_floor  # noqa: E402
from config.settings import Settings  # noqa: E402
from database.repositories.candles import CandleRepository  # noqa: E402
from database.repositories.trading import TradingRepository  # noqa: E402
from database.session import make_session_factory  # noqa: E402
from market.candles import iter_candles  # noqa: E402
from market.feeds import FeedEvent  # noqa: E402
from market.sample_data import generate_random_walk  # noqa: E402
from market.timeframes import Timeframe  # noqa: E402
from services.database_setup import prepare_database  # noqa: E402
from services.paper import PaperTrading  # noqa: E402
from services.trading_runner import TradingRunner  # noqa: E402

SYMBOLS = ("RW1", "RW2", "RW3")
HISTORY = 1500  # bars stored before the replay starts (the indicators' warm-up)
LIVE = 300  # closed candles streamed through the runner
# (strategy, parameter, values): 6 strategies x 11-12 parameter sets on 3 symbols: 200
GRID = (
    ("sma_crossover", "fast", (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
    ("ema_crossover", "fast", (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)),
    ("macd_cross", "fast", (6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)),
    ("rsi_reversion", "period", (7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)),
    ("bollinger_reversion", "period", (10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)),
    ("donchian_breakout", "entry_period", (10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)),
)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def deployments_latency(url: str, label: str, naive: bool) -> dict[str, float]:
    """Per closed candle: engine + transaction (ms), 200 deployments."""
    settings = Settings.from_env({"DATABASE_URL": url, "FEEDS": "none"}) if url else None
    assert settings is not None
    engine = prepare_database(settings)
    sessions = make_session_factory(engine)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    frames = {
        s: generate_random_walk(s, "1m", start, HISTORY + LIVE, seed=i + 1)
        for i, s in enumerate(SYMBOLS)
    }
    with sessions.begin() as session:
        for symbol, frame in frames.items():
            CandleRepository(session).upsert(symbol, "1m", frame)
    paper = PaperTrading(sessions)
    # naive: every deployment its own account too (one engine each may not share a broker)
    accounts = [f"acc{k}" for k in range(200 if naive else 20)]
    for name in accounts:
        paper.create_account(f"{label}-{name}", 100_000.0)
    n = 0
    for strategy, param, values in GRID:
        for value in values:
            for symbol in SYMBOLS:
                if n >= 200:
                    break
                account = f"{label}-{accounts[n % len(accounts)]}"
                paper.deploy(
                    f"{label}-d{n}", account=account, strategy=strategy,
                    params={param: value, "direction": "both"}, symbol=symbol,
                    timeframe="1m", settings={"sizing": "fraction", "size": 0.1},
                )  # fmt: skip
                paper.set_status(f"{label}-d{n}", "running")
                n += 1
    cursor = {s: frames[s].index[HISTORY - 1] for s in SYMBOLS}
    times: list[float] = []
    cpu: list[float] = []  # the runner thread's CPU time per candle (the machine is shared)
    steady: list[float] = []  # candles without an account's first fill on a symbol
    if not naive:
        runner = _Watched(sessions, cursor=lambda s: cursor[s], sync_s=3600)
        runner.start()
        first_fills: set[tuple[int, str]] = set()
        try:
            for k in range(HISTORY, HISTORY + LIVE):
                for symbol in SYMBOLS:
                    candle = next(iter(iter_candles(frames[symbol].iloc[k : k + 1])))
                    event = FeedEvent("closed", symbol, Timeframe.parse("1m"), candle)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    runner.on_closed(event)
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.thread_time() - c0) * 1000)
                    # the trade tracker warms its labeller at an account's first fill on a
                    # symbol (reads weeks of bars and the account's trades): once per pair
                    pairs = set(_new_fills(runner))
                    if not pairs <= first_fills:
                        first_fills |= pairs
                    else:
                        steady.append(times[-1])
            status = runner.status()
        finally:
            runner.stop()
        with sessions() as session:
            repo = TradingRepository(session)
            orders = sum(len(repo.orders(a.id)) for a in repo.accounts())
            fills = sum(len(repo.fills(a.id)) for a in repo.accounts())
        print(
            f"  {label}: {status.deployments} deployments, {len(times)} closed candles,"
            f" {orders} orders, {fills} fills stored"
        )
    else:
        runners = []
        with sessions() as session:
            rows = [
                row
                for row in TradingRepository(session).deployments(status="running")
                if row.name.startswith(f"{label}-")
            ]
        for row in rows:  # one runner (engine, transaction) per deployment: nothing shared
            single = TradingRunner(sessions, cursor=lambda s: cursor[s], sync_s=3600)
            single._start(row)
            single._running = True
            runners.append((row.symbol, single))
        for k in range(HISTORY, HISTORY + min(LIVE, 60)):
            for symbol in SYMBOLS:
                candle = next(iter(iter_candles(frames[symbol].iloc[k : k + 1])))
                event = FeedEvent("closed", symbol, Timeframe.parse("1m"), candle)
                t0 = time.perf_counter()
                for sym, single in runners:
                    if sym == symbol:
                        single._bar(symbol, candle)
                times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    out = {"p50": pct(times, 50), "p99": pct(times, 99), "max": max(times)}
    if steady:
        out.update(
            steady_p50=pct(steady, 50), steady_p99=pct(steady, 99), warm=len(times) - len(steady),
            cpu_p50=pct(cpu, 50), cpu_p99=pct(cpu, 99),
        )  # fmt: skip
    return out


class _Watched(TradingRunner):
    """The runner, keeping the outcomes it stored for the last closed candle."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: list = []

    def _commit(self, outcome) -> None:
        self.outcomes.append(outcome)
        super()._commit(outcome)


def _new_fills(runner: _Watched) -> list[tuple[int, str]]:
    """(account id, symbol) of each fill stored since the last call."""
    pairs = [(a, f.symbol) for o in runner.outcomes for a, fills in o.fills.items() for f in fills]
    runner.outcomes = []
    return pairs


def order_ack(url: str) -> tuple[dict[str, float], dict[str, float]]:
    from trading.broker import PaperBroker
    from trading.orders import AccountBook, OrderRequest
    from trading.store import order_row

    broker = PaperBroker(AccountBook("ack", cash=1e12, id=1), {"RW1"})
    now = datetime.now(UTC)
    times = []
    for k in range(20_000):
        request = OrderRequest(f"ack-{k}", "RW1", "buy", "limit", quantity=1.0, limit_price=50.0)
        t0 = time.perf_counter()
        broker.submit(request, now, 100.0)
        times.append((time.perf_counter() - t0) * 1000)
    fast = {"p50": pct(times, 50), "p99": pct(times, 99)}
    settings = Settings.from_env({"DATABASE_URL": url, "FEEDS": "none"})
    engine = prepare_database(settings)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        account = TradingRepository(session).create_account("ack-naive", 1e12, now)
    broker = PaperBroker(AccountBook("ack-naive", cash=1e12, id=account.id), {"RW1"})
    times = []
    for k in range(500):
        request = OrderRequest(f"ackn-{k}", "RW1", "buy", "limit", quantity=1.0, limit_price=50.0)
        t0 = time.perf_counter()
        order = broker.submit(request, now, 100.0)
        with sessions.begin() as session:
            TradingRepository(session).save_orders(account.id, [order_row(order)])
        times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return fast, {"p50": pct(times, 50), "p99": pct(times, 99)}


BACKTESTING_SCRIPT = """
import json, sys, warnings, time
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
frame = pd.read_csv(sys.argv[1])
frame.index = pd.to_datetime(frame.pop("timestamp"), utc=True).dt.tz_localize(None)
frame.columns = [c.capitalize() for c in frame.columns]
def SMA(values, n):
    return pd.Series(values).rolling(n).mean()
class SmaCross(Strategy):
    fast, slow = 10, 30
    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.fast)
        self.sma2 = self.I(SMA, self.data.Close, self.slow)
    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close(); self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close(); self.sell()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    stats = Backtest(frame, SmaCross, cash=10_000, finalize_trades=True).run()
print(json.dumps({"trades": int(stats["# Trades"])}))
"""


def replay_vs_backtesting(bars: int, scratch: Path) -> None:
    frame = generate_random_walk("RPL", "1m", pd.Timestamp("2024-01-01", tz="UTC"), bars, seed=9)
    csv = scratch / "rpl.csv"
    frame.rename_axis("timestamp").reset_index().assign(
        timestamp=lambda f: f["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ).to_csv(csv, index=False)
    env = dict(os.environ, STRATLENS_DATA_DIR=str(scratch / "data"), FEEDS="none")
    app = [sys.executable, str(ROOT / "app.py")]
    for setup in (["import", "--symbol", "RPL", "--timeframe", "1m", str(csv)], ["paper", "list"]):
        # the database's first start (migrations, the bundled series stored) is not timed
        subprocess.run([*app, *setup], env=env, check=True, capture_output=True)
    compile_sources()  # our bytecode cached, as after a user's first run (bench/_bytecode.py)
    args = [
        "--symbol",
        "RPL",
        "--timeframe",
        "1m",
        "--strategy",
        "sma_crossover",
        "--set",
        "fast=10",
        "--set",
        "slow=30",
        "--set",
        "direction=both",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(
        [*app, "paper", "replay", *args, "--account", "bench", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    ours = time.perf_counter() - t0
    replayed = json.loads(done.stdout)
    done = subprocess.run(
        [*app, "backtest", *args, "--json", "--no-store"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    engine = json.loads(done.stdout)["trades"]
    same = len(engine) == len(replayed["trades"]) and all(
        a["entry_time"] == b["entry_time"] and a["exit_time"] == b["exit_time"]
        and abs(a["pnl"] - b["pnl"]) <= 1e-9 * max(1.0, abs(a["pnl"]))
        and abs(a["size"] - b["size"]) <= 1e-9 * max(1.0, abs(a["size"]))
        for a, b in zip(engine, replayed["trades"], strict=False)
    )  # fmt: skip
    script = scratch / "bt_py.py"
    script.write_text(BACKTESTING_SCRIPT)
    t0 = time.perf_counter()
    peer = subprocess.run(
        [sys.executable, str(script), str(csv)], check=True, capture_output=True, text=True
    )
    theirs = time.perf_counter() - t0
    print(f"2. paper replay of {bars:,} 1m bars, fresh processes:")
    trades, orders, fills = len(replayed["trades"]), replayed["orders"], replayed["fills"]
    print(
        f"  app.py paper replay: {ours:.2f} s ({ours / bars * 1e6:.0f} us/bar), {trades} trades,"
        f" {orders} orders, {fills} fills stored"
    )
    peer_trades = json.loads(peer.stdout)["trades"]
    print(f"  backtesting.py event loop: {theirs:.2f} s ({peer_trades} trades)")
    verdict = "PASS" if theirs / ours >= 2 else "FAIL"
    print(f"  ratio backtesting.py / replay = {theirs / ours:.2f}x (goal >= 2x: {verdict})")
    print(f"  replay trades == backtest engine trades: {same}")
    floor = import_floor()
    print(
        f"  budget for 2x: {theirs / 2:.2f} s; a fresh interpreter importing pandas and"
        f" SQLAlchemy's ORM (the stack every command stands on) and nothing else: {floor:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--skip-replay", action="store_true")
    args = parser.parse_args()
    made: list[str] = []  # the PostgreSQL databases this run creates, dropped at its end
    try:
        return _run(args, made)
    finally:
        for url in made:
            _drop_pg(args.postgres, url)


def _run(args: argparse.Namespace, made: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        print(
            "1. 200 deployments, closed candle -> signals, orders, fills, stored (ms per candle):"
        )
        urls = [("sqlite", f"sqlite:///{scratch / 'bench.db'}")]
        if args.postgres:
            made.append(_fresh_pg(args.postgres))
            urls.append(("postgresql", made[-1]))
        for name, url in urls:
            shared = deployments_latency(url, f"{name}-shared", naive=False)
            naive = deployments_latency(url, f"{name}-naive", naive=True)
            verdict = "PASS" if shared["p99"] <= 20 else "FAIL"
            steady = "PASS" if shared["steady_p99"] <= 20 else "FAIL"
            print(
                f"  {name}: runner p50 {shared['p50']:.1f} p99 {shared['p99']:.1f}"
                f" max {shared['max']:.1f} ({verdict} goal p99 <= 20); without the"
                f" {shared['warm']:.0f} candles carrying an account's first fill on a symbol"
                f" (the trade tracker's one-time labeller warm-up) p50 {shared['steady_p50']:.1f}"
                f" p99 {shared['steady_p99']:.1f} ({steady}); the runner thread's CPU p50"
                f" {shared['cpu_p50']:.1f} p99 {shared['cpu_p99']:.1f}; naive (own engine +"
                f" transaction each) p50 {naive['p50']:.1f} p99 {naive['p99']:.1f}:"
                f" {naive['p50'] / shared['p50']:.1f}x slower"
            )
        if not args.skip_replay:
            replay_vs_backtesting(args.bars, scratch)
        fast, naive = order_ack(urls[0][1])
        verdict = "PASS" if fast["p99"] <= 1 else "FAIL"
        print(
            f"3. order placement -> ack in process: p50 {fast['p50'] * 1000:.1f} us, p99"
            f" {fast['p99'] * 1000:.1f} us ({verdict} goal p99 <= 1 ms); placed and stored one"
            f" transaction each: p50 {naive['p50']:.2f} ms p99 {naive['p99']:.2f} ms"
        )
    return 0


def _fresh_pg(server: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"bench_runner_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg(server: str, url: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)"))
    admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
