"""Trade tracking's speed as a user meets it (issue 15), ratios measured in one run.

    python bench/tracking.py [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
                             [--stream 50000] [--bulk 1000000] [--stored 1000000]

1. Streaming ingestion with labels and live metrics: trades submitted to the TradeTracker
   (group commit) by producers, each acknowledged once committed, market context and labels
   from stored 1m bars, the live summary and attribution kept by the listener (every
   account's live view followed from the start, as a watching client makes it). Trades/s
   acknowledged (goal >= 50,000) and the p99 of one trade's labelling (goal <= 1 ms: its
   share of its symbol's part of a batch, which is labelled column-wise, together; that
   part's whole time beside it); against the naive way, a transaction per trade.
2. Bulk import: ``app.py trades import`` of a CSV of ``--bulk`` fills as a fresh process
   into a database an earlier command set up (migrations and the bundled series not timed)
   (goal >= 150,000 trades/s); against SQLAlchemy's ORM adding a row at a time, and beside
   the database alone storing the same rows, made beforehand, into a fresh database (its
   binary COPY, SQLite's executemany): about the least any import of them can take.
3. With ``--stored`` trades stored in one account: the live view (summary, labels,
   attribution) after each new trade, p99 (goal <= 10 ms), and the full recomputation from
   the database, a fresh service (goal <= 1 s): the first after the writer, again with the
   account's columnar trade cache, and with its cache file deleted (cold).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._bytecode import compile_sources  # noqa: E402
from config.settings import Settings  # noqa: E402
from database.records import TradeRecord  # noqa: E402
from database.repositories._candle_cache import CACHE_DIR_VARIABLE  # noqa: E402
from database.repositories._trade_cache import trade_cache_for  # noqa: E402
from database.repositories.candles import CandleRepository  # noqa: E402
from database.repositories.trades import TradeRepository  # noqa: E402
from database.session import make_session_factory  # noqa: E402
from market.sample_data import generate_random_walk  # noqa: E402
from services.database_setup import prepare_database  # noqa: E402
from services.tracking import TrackingService  # noqa: E402
from tracking.annotator import MarketAnnotator  # noqa: E402

T0 = pd.Timestamp("2024-01-01", tz="UTC")
SYMBOLS = ("RW1", "RW2", "RW3", "RW4", "RW5")


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def sessions_for(url: str):
    settings = Settings.from_env({"DATABASE_URL": url, "FEEDS": "none"})
    engine = prepare_database(settings)
    return engine, make_session_factory(engine)


def fills_stream(n: int, accounts: int, seed: int = 1) -> list[TradeRecord]:
    """n fills over ``accounts`` accounts and the symbols, one minute apart per account,
    positions leaning back to flat (round trips close)."""
    rng = np.random.default_rng(seed)
    out, position = [], {}
    price = dict.fromkeys(SYMBOLS, 100.0)
    for k in range(n):
        account = f"a{k % accounts}"
        symbol = SYMBOLS[(k // accounts) % len(SYMBOLS)]
        key = (account, symbol)
        held = position.get(key, 0.0)
        side = "buy" if rng.random() < 0.5 - 0.2 * np.sign(held) else "sell"
        volume = float(rng.integers(1, 5))
        position[key] = held + (volume if side == "buy" else -volume)
        price[symbol] *= 1 + rng.normal(0, 0.001)
        out.append(
            TradeRecord(
                trade_id=f"s{k}", account_id=account, strategy_id=f"st{k % 3}", symbol=symbol,
                side=side, price=price[symbol], volume=volume, commission=0.01,
                execution_time=(T0 + pd.Timedelta(minutes=600 + k // accounts)).to_pydatetime(),
                source="api",
            )
        )  # fmt: skip
    return out


class TimedAnnotator(MarketAnnotator):
    """The tracker's annotator, timing each symbol's part of a batch (its bars fed and its
    fills labelled together, column-wise): per trade its share (the part's time over its
    trades) and the part's whole time (when the trade's labels are ready); an account and
    symbol's one-time warm-up, when its first entry comes, is timed apart."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []  # per trade: ms of its symbol's part / the part's trades
        self.parts: list[float] = []  # per trade: ms of its symbol's whole part
        self.warmups: list[float] = [0.0]

    def _window(self, session, key, history):
        t0 = time.perf_counter()
        window = super()._window(session, key, history)
        self.warmups.append((time.perf_counter() - t0) * 1000)
        return window

    def _symbol(self, session, follow, symbol, records, ks, *rest):
        t1 = time.perf_counter()
        out = super()._symbol(session, follow, symbol, records, ks, *rest)
        took = (time.perf_counter() - t1) * 1000
        self.times.extend([took / len(ks)] * len(ks))
        self.parts.extend([took] * len(ks))
        return out


def streaming(url: str, n: int) -> None:
    engine, sessions = sessions_for(url)
    bars = 600 + n // 10 + 10
    with sessions.begin() as session:
        for i, symbol in enumerate(SYMBOLS):
            frame = generate_random_walk(symbol, "1m", T0, bars, seed=i + 1)
            CandleRepository(session).upsert(symbol, "1m", frame)
    annotator = TimedAnnotator()
    service = TrackingService(sessions)
    service.tracker = type(service.tracker)(
        sessions, annotator=annotator, listeners=[service.live_accounts]
    )
    trades = fills_stream(n + 100, accounts=10)
    # every account's live view followed while it streams (as a dashboard or an API client
    # watching it makes it): each batch updates their summaries, labels and attribution; an
    # account is viewed once it has trades: its first ten are recorded before the clock
    service.tracker.record_many(trades[:100])
    for account in sorted({t.account_id for t in trades}):
        service.live(account, ("label", "regime"))
    trades = trades[100:]
    t0, c0 = time.perf_counter(), time.process_time()
    futures = []
    producers = 4

    def produce(part: list[TradeRecord]) -> None:
        futures.extend(service.tracker.submit(t) for t in part)

    # per account the trades must arrive in time order: split by account, not by position
    by_account: dict[str, list[TradeRecord]] = {}
    for t in trades:
        by_account.setdefault(t.account_id, []).append(t)
    parts = [[] for _ in range(producers)]
    for k, account in enumerate(sorted(by_account)):
        parts[k % producers].extend(by_account[account])
    threads = [threading.Thread(target=produce, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for future in list(futures):
        future.result(timeout=600)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    service.tracker.close()
    live = service.live("a0", ("label", "regime"))
    rate = n / elapsed
    label_p99 = pct(annotator.times, 99)
    # naive: a transaction per trade, no group commit (a sample, then the rate)
    naive_n = min(2000, n)
    naive_trades = fills_stream(naive_n, accounts=10, seed=2)
    naive_trades = [dataclasses.replace(t, account_id=f"n{t.account_id}") for t in naive_trades]
    naive = TrackingService(sessions)
    t1 = time.perf_counter()
    for t in naive_trades:
        naive.tracker.record_many([t])
    naive_rate = naive_n / (time.perf_counter() - t1)
    engine.dispose()
    verdict = "PASS" if rate >= 50_000 else "FAIL"
    lverdict = "PASS" if label_p99 <= 1 else "FAIL"
    print(
        f"  streaming: {n:,} trades acknowledged in {elapsed:.2f} s = {rate:,.0f} trades/s"
        f" ({verdict} goal >= 50,000; the process's CPU {cpu:.2f} s = {n / cpu:,.0f} trades"
        f" per CPU second, the database server's not counted); labels p99"
        f" {label_p99:.3f} ms per trade ({lverdict}"
        f" goal <= 1 ms; a symbol's part of a batch, labelled together: p99"
        f" {pct(annotator.parts, 99):.2f} ms; each account and symbol's one-time warm-up"
        f" max {max(annotator.warmups):.0f} ms); live view of a0:"
        f" {live['trade_summary']['trades']} round trips;"
        f" naive (a transaction per trade): {naive_rate:,.0f} trades/s ->"
        f" {rate / naive_rate:.1f}x"
    )


def bulk(url: str, floor_url: str, n: int, scratch: Path) -> None:
    trades = fills_stream(n, accounts=1, seed=5)
    csv = scratch / f"bulk_{n}.csv"
    pd.DataFrame(
        {
            "trade_id": [t.trade_id for t in trades],
            "timestamp": [int(t.execution_time.timestamp() * 1000) for t in trades],
            "symbol": [t.symbol for t in trades],
            "side": [t.side for t in trades],
            "price": [t.price for t in trades],
            "volume": [t.volume for t in trades],
            "commission": 0.01,
        }
    ).to_csv(csv, index=False)
    env = dict(os.environ, DATABASE_URL=url, FEEDS="none", STRATLENS_DATA_DIR=str(scratch / "d"))
    compile_sources()  # our bytecode cached, as after a user's first run (bench/_bytecode.py)
    # the database's first start (migrations, the bundled series stored) is not timed: a
    # trader imports into the database the app already made (bench/runner.py's replay alike)
    subprocess.run([sys.executable, str(ROOT / "app.py"), "trades", "accounts"], env=env,
                   check=True, capture_output=True)  # fmt: skip
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "trades", "import", str(csv), "--format", "csv",
         "--account", "bulk"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if done.returncode != 0:
        print(f"  bulk import FAILED: {done.stderr[-2000:]}")
        return
    rate = n / elapsed
    alone = _database_alone(url, floor_url, "bulk")
    # naive: the ORM, a row at a time (a sample of 20,000)
    from database.models import Trade

    engine, sessions = sessions_for(url)
    sample = trades[:20_000]
    t1 = time.perf_counter()
    with sessions.begin() as session:
        for t in sample:
            session.add(
                Trade(
                    trade_id=f"orm{t.trade_id}", account_id="orm", strategy_id="s",
                    symbol=t.symbol, side=t.side, price=t.price, volume=t.volume,
                    commission=t.commission, execution_time=t.execution_time,
                    market_context={}, labels=[],
                )
            )  # fmt: skip
            session.flush()
    naive_rate = len(sample) / (time.perf_counter() - t1)
    engine.dispose()
    verdict = "PASS" if rate >= 150_000 else "FAIL"
    print(
        f"  bulk import (app.py trades import, fresh process, {n:,} fills with context and"
        f" labels, into a database an earlier command set up):"
        f" {elapsed:.2f} s = {rate:,.0f} trades/s ({verdict} goal >= 150,000), the"
        f" import process's CPU {cpu:.2f} s (the database server's not counted);"
        f" the database alone storing the same rows from memory ({alone[0]}) into a fresh"
        f" database: {alone[1]:.2f} s = {n / alone[1]:,.0f} rows/s (the import takes"
        f" {elapsed / alone[1]:.2f}x that);"
        f" ORM row by row: {naive_rate:,.0f} trades/s -> {rate / naive_rate:.1f}x"
    )


def _database_alone(url: str, floor_url: str, account: str) -> tuple[str, float]:
    """How the database itself stores the rows the import stored for ``account``, made
    beforehand and held in memory, into the trades table of a fresh database (migrated, not
    timed), in one transaction with its commit: about the least any import of them can
    take. PostgreSQL: one binary COPY of the rows (as the server exports them); SQLite: one
    executemany of the rows as sqlite3 reads them back (the import's INSERTs of 500 rows
    each took as long, alternated: CPU 4.3-4.8 s per 1,000,000 either way). (What it did,
    seconds.)"""
    import io

    from database.repositories._trade_io import TRADE_COLUMNS

    listed = ", ".join(TRADE_COLUMNS)
    engine, _ = sessions_for(url)
    floor, _ = sessions_for(floor_url)
    read, write = engine.raw_connection(), floor.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            rows = io.BytesIO()
            read.cursor().copy_expert(f"COPY (SELECT {listed} FROM trades WHERE account_id ="
                                      f" '{account}' ORDER BY id) TO STDOUT (FORMAT binary)",
                                      rows)  # fmt: skip
            rows.seek(0)
            t0 = time.perf_counter()
            write.cursor().copy_expert(f"COPY trades ({listed}) FROM STDIN (FORMAT binary)",
                                       rows)  # fmt: skip
            write.commit()
            how = "one binary COPY"
        else:
            rows = read.execute(f"SELECT {listed} FROM trades WHERE account_id = ? ORDER BY id",
                                (account,)).fetchall()  # fmt: skip
            marks = ", ".join("?" * len(TRADE_COLUMNS))
            t0 = time.perf_counter()
            write.execute("BEGIN")
            write.executemany(f"INSERT INTO trades ({listed}) VALUES ({marks})", rows)
            write.commit()
            how = "one executemany"
        return how, time.perf_counter() - t0
    finally:
        read.close()
        write.close()
        engine.dispose()
        floor.dispose()


def stored_views(url: str, n: int) -> None:
    engine, sessions = sessions_for(url)
    service = TrackingService(sessions)
    trades = fills_stream(n, accounts=1, seed=7)
    t0 = time.perf_counter()
    service.tracker.record_many(trades[:-500])
    load = time.perf_counter() - t0
    vacuumed = _as_autovacuum_leaves_it(engine)
    first, first_cpu = _recompute(sessions)  # a fresh service after the writer
    warm, warm_cpu = _recompute(sessions)  # again: the account's columnar trade cache built
    cache = trade_cache_for(url)
    if cache is not None:  # the account's cache files deleted (base and segments): cold
        with sessions() as session:
            token = TradeRepository(session).stored_version("a0")[0]
        cache.discard("a0", str(token))
    cold, cold_cpu = _recompute(sessions)
    service.live("a0", ("label", "regime", "hour"))
    times = []
    for t in trades[-500:]:
        service.tracker.record_many([t])
        t2 = time.perf_counter()
        service.live("a0", ("label", "regime", "hour"))
        times.append((time.perf_counter() - t2) * 1000)
    engine.dispose()
    lv = "PASS" if pct(times, 99) <= 10 else "FAIL"
    verdict = {True: "PASS", False: "FAIL"}
    print(
        f"  {n:,} trades stored ({load:.1f} s to record): live view p99 {pct(times, 99):.2f} ms"
        f" ({lv} goal <= 10 ms); full recomputation (performance + attribution from the"
        f" database, fresh service; goal <= 1 s): first after the writer {first:.2f} s"
        f" ({verdict[first <= 1]}), with the account's columnar trade cache {warm:.2f} s"
        f" ({verdict[warm <= 1]}), its cache files deleted (cold) {cold:.2f} s"
        f" ({verdict[cold <= 1]}); CPU {first_cpu:.2f} s, {warm_cpu:.2f} s and {cold_cpu:.2f} s"
        f" (with the child processes'; the load moves the wall clock most){vacuumed}"
    )


def _as_autovacuum_leaves_it(engine) -> str:
    """PostgreSQL: ``VACUUM ANALYZE trades`` after the load, what the default autovacuum does
    to an insert-only table within its naptime (a minute) of a million new rows: the visibility
    map set, so the cache's row count is an index-only scan. This machine's server runs with
    ``autovacuum = off``; a trader's PostgreSQL, by default, does not. Says so in the line."""
    if engine.dialect.name != "postgresql":
        return ""
    from sqlalchemy import text

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        automatic = connection.execute(text("SHOW autovacuum")).scalar() == "on"
        if not automatic:
            connection.execute(text("VACUUM ANALYZE trades"))
    return "" if automatic else "; VACUUM ANALYZE after the load (this server's autovacuum is off)"


def _recompute(sessions) -> tuple[float, float]:
    """(wall, CPU) seconds of performance + attribution by label of a fresh service; the CPU
    with that of the child processes it waited for (a SQLite read's lower half)."""
    fresh = TrackingService(sessions)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    t1, c1 = time.perf_counter(), time.process_time()
    fresh.performance("a0")
    fresh.attribution("a0", by="label")
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return wall, cpu


def _fresh_pg(server: str, name: str) -> str:
    _on_server(server, [f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"])
    return server.rsplit("/", 1)[0] + f"/{name}"


def _on_server(server: str, statements: list[str]) -> None:
    """``statements`` (databases made or dropped) run on the server, each on its own."""
    from sqlalchemy import create_engine, text

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for statement in statements:
            c.execute(text(statement))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--stream", type=int, default=50_000)
    parser.add_argument("--bulk", type=int, default=1_000_000)
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--only", default="", help="stream, bulk or stored")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        # the caches' files in the scratch directory, this process's and the imports': a
        # PostgreSQL database's would otherwise stay in ~/.cache/stratlens after it is dropped
        # (~160 MB a run); a SQLite file's are beside it there anyway. A directory the user
        # set (or "off") is kept
        if not os.environ.get(CACHE_DIR_VARIABLE, "").strip():
            os.environ[CACHE_DIR_VARIABLE] = str(scratch / "candle_cache")
        urls = [("sqlite", lambda part: f"sqlite:///{scratch / f'{part}.db'}")]
        if args.postgres:
            urls.append(("postgresql", lambda part: _fresh_pg(args.postgres, f"bench_tr_{part}")))
        for name, url in urls:
            print(f"{name}:")
            if args.only in ("", "stream"):
                streaming(url("stream"), args.stream)
            if args.only in ("", "bulk"):
                bulk(url("bulk"), url("bulk_alone"), args.bulk, scratch)
            if args.only in ("", "stored"):
                stored_views(url("stored"), args.stored)
        if args.postgres:
            parts = ("stream", "bulk", "bulk_alone", "stored")  # dropped: nothing left behind
            drops = [f"DROP DATABASE IF EXISTS bench_tr_{p} WITH (FORCE)" for p in parts]
            _on_server(args.postgres, drops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
