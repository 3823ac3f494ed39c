"""StrategyDataIntegrator: cold computation, cache hit, one new candle, chunked batch.

    python bench/integrator.py [--bars 28800] [--rounds 30] [--redis redis://127.0.0.1:6379/15]

On a SQLite database in a temporary folder, 1m random-walk bars and eight requests (five
families on the base timeframe, three on 15m/1h). "New candle" stores one bar through the
repository, then asks for the chart window again: the live states extend by one bar instead
of recomputing the span. Prints medians in milliseconds and the integrator's counters.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caching import SharedCache
from database import migrate
from database.repositories import CandleRepository
from database.session import make_engine, make_session_factory
from indicators import request
from market.sample_data import generate_random_walk
from strategies.data_integration import StrategyDataIntegrator

SYMBOL = "BENCH"
REQUESTS = [
    request("sma", timeperiod=50),
    request("ema", timeperiod=20),
    request("rsi"),
    request("macd"),
    request("bbands"),
    request("rsi", timeframe="15m"),
    request("ema", timeframe="1h", timeperiod=20),
    request("atr", timeframe="1h"),
]


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=28_800)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--redis", default=None, help="a Redis URL: the shared cache")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        start = "2024-01-01"
        frame = generate_random_walk(SYMBOL, "1m", start, args.bars + args.rounds, seed=1)
        with factory.begin() as session:
            CandleRepository(session).upsert(SYMBOL, "1m", frame.iloc[: args.bars])
        cache = SharedCache.from_url(args.redis, key_prefix="stratlens-bench:")
        cache.clear()
        sdi = StrategyDataIntegrator(factory, cache)

        def window() -> None:
            data = sdi.frame(SYMBOL, "1m", requests=REQUESTS, last=args.window)
            assert not data.failures, data.failures

        began = time.perf_counter()
        window()
        cold = time.perf_counter() - began
        hits = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            window()
            hits.append(time.perf_counter() - began)
        ticks = []
        for i in range(args.rounds):
            bar = frame.iloc[args.bars + i : args.bars + i + 1]
            with factory.begin() as session:
                CandleRepository(session).upsert(SYMBOL, "1m", bar)
            began = time.perf_counter()
            window()
            ticks.append(time.perf_counter() - began)
        began = time.perf_counter()
        batch = sdi.batch(SYMBOL, "1m", REQUESTS, chunk_bars=5_000)
        batch_s = time.perf_counter() - began
        assert not batch.failures, batch.failures

        print(f"{args.bars} bars of 1m, {len(REQUESTS)} requests, window of {args.window} bars")
        print(f"cold (load span + compute):  {cold * 1000:8.2f} ms")
        print(f"cache hit (median):          {_ms(hits)}")
        print(f"one new candle (median):     {_ms(ticks)}")
        print(f"batch, chunks of 5000 bars:  {batch_s * 1000:8.2f} ms")
        print(sdi.stats())
        cache.clear()
        cache.close()
        engine.dispose()


if __name__ == "__main__":
    main()
