"""Transaction-cost analysis over 1,000,000 fills against the same computation written per
order in pandas (issue 16), ratios measured in one run.

    python bench/tca.py [--fills 1000000] [--sample 1000] [--repeat 5] [--symbols 20] [--days 30]

The book: ``tests.analytics.test_tca.random_tca`` (the random book of the equality test,
scaled): ``--symbols`` symbols of 1m bars over ``--days`` days (gaps, quiet hours) and one
without candles; orders of every kind with 0 to 7 fills each (about 3.6 on average), partial
fills, cancellations, quotes, limit prices.

Ours: ``analytics.tca.transaction_costs`` (the checks, every metric per order and per fill,
decision quality per round trip, the aggregates by venue, algo, symbol, side and strategy);
the first call in the process (the kernels prebuilt by analytics._execution_aot loaded, else
numba's from their disk cache, or compiled) and
the median of ``--repeat`` calls after it. Goal: <= 2 s.

The naive way: ``tests.analytics.test_tca.naive_order_tca`` (a loop over orders, pandas on
each order's fills and slices of its bars), timed on ``--sample`` random orders and
extrapolated per order to the whole book (a full run would take hours); decision quality by
``analytics.round_trips.round_trips`` and a lookup per trip, and the aggregates by a pandas
groupby per dimension and metric, both timed on the whole book. Goal: ours >= 20x faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from analytics._execution_aot import kernel
from analytics.tca import DIMENSIONS, aggregate_tca, transaction_costs
from analytics.tca._kernels import radix_order_loop
from analytics.tca.aggregate import metric_weights
from analytics.tca.decision import per_round_trip
from analytics.tca.orders import Analysis, markouts_frame, per_order
from tests.analytics.test_tca import (
    naive_aggregate,
    naive_decision_quality,
    naive_order_tca,
    random_tca,
)

GOAL_S = 2.0
GOAL_RATIO = 20.0
FILLS_PER_ORDER = 3.5  # random_tca's mean is 0.9 x 4 = 3.6: a little over --fills


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def stages(orders, fills, candles) -> dict[str, float]:
    """One run split by step (the same work as transaction_costs)."""
    out = {}
    t, analysis = timed(Analysis.of, orders, fills, candles)
    out["checks, bar groups"] = t
    out["per order"], table = timed(per_order, analysis)
    out["per fill (markouts)"], _ = timed(markouts_frame, analysis)
    out["round trips"], _ = timed(per_round_trip, analysis.inputs, 10.0)
    out["aggregates x5"], _ = timed(aggregate_tca, table, tuple(DIMENSIONS))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()

    t, (orders, fills, candles) = timed(
        random_tca, int(args.fills / FILLS_PER_ORDER), 1, args.symbols, args.days
    )
    bars = sum(len(b) for b in candles.values())
    print(f"book: {len(orders):,} orders, {len(fills):,} fills, {len(candles)} symbols, "
          f"{bars:,} 1m bars (made in {t:.1f} s)")  # fmt: skip

    cold, report = timed(transaction_costs, orders, fills, candles)
    warm = [timed(transaction_costs, orders, fills, candles)[0] for _ in range(args.repeat)]
    ours = statistics.median(warm)
    print(f"ours: transaction_costs, first call {cold:.3f} s (kernels loaded: "
          f"{kernel('radix_order', radix_order_loop)[0]}), then "
          f"median {ours:.3f} s, best {min(warm):.3f} s of {args.repeat}   goal <= {GOAL_S:g} s "
          f"{'OK' if ours <= GOAL_S else 'MISSED'}")  # fmt: skip
    print("      one run by step: " + ", ".join(
        f"{k} {v:.3f}" for k, v in stages(orders, fills, candles).items()))  # fmt: skip
    print(
        f"      {len(report.orders):,} orders, {len(report.fills):,} fills, "
        f"{len(report.round_trips):,} round trips, {len(report.aggregates):,} aggregate rows"
    )

    rng = np.random.default_rng(2)
    sample_ids = rng.choice(orders["order_id"].to_numpy(), args.sample, replace=False)
    some = orders[orders["order_id"].isin(sample_ids)]
    their_fills = fills[fills["order_id"].isin(sample_ids)]
    t_sample, _ = timed(naive_order_tca, some, their_fills, candles)
    per_order_s = t_sample / len(some)
    naive_orders = per_order_s * len(orders)
    naive_trips, _ = timed(naive_decision_quality, orders, fills)
    weights = metric_weights(report.orders)
    start = time.perf_counter()
    for column in DIMENSIONS.values():
        for metric, weight in weights.items():
            naive_aggregate(report.orders, column, metric, weight)
    naive_aggregates = time.perf_counter() - start
    naive = naive_orders + naive_trips + naive_aggregates
    print(f"naive: per order in pandas {per_order_s * 1e3:.2f} ms/order, timed on "
          f"{len(some):,} random orders ({t_sample:.1f} s) and extrapolated x {len(orders):,} "
          f"= {naive_orders:,.0f} s; round trips {naive_trips:.2f} s and aggregates "
          f"{naive_aggregates:.2f} s measured on the whole book: {naive:,.0f} s")  # fmt: skip
    ratio = naive / ours
    print(f"ratio: naive / ours = {ratio:,.0f}x (per-order part alone {naive_orders / ours:,.0f}x)"
          f"   goal >= {GOAL_RATIO:g}x {'OK' if ratio >= GOAL_RATIO else 'MISSED'}")  # fmt: skip
    ok = ours <= GOAL_S and ratio >= GOAL_RATIO
    print("overall:", "OK" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
