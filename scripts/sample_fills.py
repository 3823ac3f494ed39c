"""A bot's fills as a CSV for ``app.py trades import --format csv``: intraday round trips on
the bundled SP500 daily bars, to look at (and test) an imported account beside the paper ones.

    python scripts/sample_fills.py out.csv [--trips 160] [--seed 7]

Deterministic for a seed. Each round trip enters on a weekday between 14:00 and 20:59 UTC and
leaves a few hours later the same day (sometimes the next), long or short, with a 5 bp fee;
its prices lie between the day's low and high (the next day's when it holds past midnight;
trips never overlap). Two strategies: ``scalper`` (short holds, small
sizes) and ``swing`` (longer holds, larger sizes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FEE = 0.0005


def intraday_fills(
    days: pd.DataFrame, trips: int = 160, seed: int = 7, start: str = "2015-01-01"
) -> pd.DataFrame:
    """The fills (CSV columns of docs/tracking.md) of ``trips`` round trips on ``days`` (daily
    bars: open, high, low, close) from ``start``."""
    rng = np.random.default_rng(seed)
    bars = days.loc[days.index >= pd.Timestamp(start, tz="UTC")]
    chosen = np.sort(rng.choice(len(bars) - 1, size=trips, replace=False))
    rows = []
    for n, i in enumerate(chosen):
        day, bar, after = bars.index[i], bars.iloc[i], bars.iloc[i + 1]
        swing = rng.random() < 0.4
        entry = day + pd.Timedelta(hours=int(rng.integers(14, 21)), minutes=int(rng.integers(60)))
        held = pd.Timedelta(minutes=int(rng.integers(120, 360) if swing else rng.integers(5, 90)))
        exit_ = entry + held
        low, high = float(bar["low"]), float(bar["high"])
        entry_price = low + (high - low) * rng.random()
        # the exit's day: the next bar's range when the hold crosses midnight
        later = after if exit_.normalize() > day else bar
        exit_price = (
            float(later["low"]) + (float(later["high"]) - float(later["low"])) * rng.random()
        )
        volume = round(float(rng.uniform(4, 12) if swing else rng.uniform(1, 4)), 3)
        side = "buy" if rng.random() < 0.7 else "sell"
        back = "sell" if side == "buy" else "buy"
        strategy = "swing" if swing else "scalper"
        for leg, (when, how, price) in enumerate(
            ((entry, side, entry_price), (exit_, back, exit_price))
        ):
            rows.append(
                {
                    "trade_id": f"bot-{n:04d}-{leg}",
                    "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "symbol": "SP500",
                    "side": how,
                    "price": round(price, 2),
                    "volume": volume,
                    "commission": round(price * volume * FEE, 4),
                    "strategy_id": strategy,
                    "order_id": f"o-{n:04d}-{leg}",
                }
            )
    frame = pd.DataFrame(rows)
    order = pd.to_datetime(frame["timestamp"]).argsort(kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from market.sample_data import load_sample

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--trips", type=int, default=160)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    intraday_fills(load_sample("SP500"), args.trips, args.seed).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
