"""Strategies: vectorized signal generation on top of precomputed indicators, in one run.

    python bench/strategies.py [--bars 1000000] [--repeat 5]

For each strategy (default parameters, direction "both") on a --bars random walk: indicators
are computed first (outside the timing) and handed over as IntegratedData, then
``strategy.generate(data)`` is timed (best of --repeat): rules, warm-up, position pass and the
result frame. Also shown, not judged: building the StrategySignal objects (``result.signals``).
Goal: generate <= 50 ns per bar per strategy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd

from market.sample_data import generate_random_walk
from market.timeframes import Timeframe
from strategies.data_integration import IntegratedData
from strategies.indicator_series import DataVersion
from strategies.registry import all_strategies

GOAL_NS_PER_BAR = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    frame = generate_random_walk("BENCH", "1m", "2020-01-01", args.bars, seed=7)
    n = len(frame)
    version = DataVersion(frame.index[-1], n)
    print(f"{n:,} bars; ns per bar, best of {args.repeat}; goal generate <= {GOAL_NS_PER_BAR:g}")
    print(f"{'strategy':<22}{'generate':>10}{'signals':>10}{'objects':>10}  verdict")
    ok_all = True
    for cls in all_strategies():
        strategy = cls(direction="both")
        values = {
            key: pd.DataFrame(columns, index=frame.index)
            for key, columns in strategy.indicator_values(frame).items()
        }
        data = IntegratedData("BENCH", Timeframe.parse("1m"), frame, values, {}, version)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter_ns()
            result = strategy.generate(data)
            best = min(best, time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        count = len(result.signals)
        objects = time.perf_counter_ns() - start
        ok = best / n <= GOAL_NS_PER_BAR
        ok_all &= ok
        print(
            f"{cls.name:<22}{best / n:>10.1f}{count:>10,}{objects / n:>10.1f}  "
            + ("PASS" if ok else "FAIL")
        )
    print("overall:", "PASS" if ok_all else "FAIL")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
