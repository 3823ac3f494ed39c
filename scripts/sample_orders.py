"""A desk's orders and fills as a CSV for ``app.py trades import --format orders-csv``: orders
on the bundled DEMO 1m bars with several venues, algos and order types, to look at (and test)
the Execution page on an account whose costs vary.

    python scripts/sample_orders.py out.csv [--trips 450] [--seed 5]

Deterministic for a seed. Round trips: an entry order, then an exit order of what it filled
3 to 60 bars later (trips never overlap). Each order is decided at the close of a bar (decision
price: that close), arrives 0.05 to 3 s later (its arrival price given for most orders, else
read from the bars) and fills in 1 to 4 slices, the first at the arrival price, the next at
their bar's typical price, each moved against the trader by a square-root law (venue offset +
0.8 x volatility x sqrt(qty / average volume)) plus noise. Limit entries fill only the slices
priced within their limit (often in part, some never); lit venues give the quote at arrival;
a few trips are on ``DEMO2``, a symbol without stored bars (market metrics n/a, with the
reason).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
VENUES = {"XNAS": 1.5, "ARCA": 1.0, "IEX": 0.5, "DARK": -0.5}  # bps added to every cost
FEES_BPS = {"XNAS": 0.3, "ARCA": 0.25, "IEX": 0.09, "DARK": 0.1}
ALGOS = ("twap", "vwap", "pov", "sweep")
MINUTE = pd.Timedelta(minutes=1)


def _time(value: pd.Timestamp) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sample_orders(bars: pd.DataFrame, trips: int = 450, seed: int = 5) -> pd.DataFrame:
    """The rows (one per fill, orders-csv columns of docs/tca.md) of ``trips`` round trips
    (an entry order, then an exit order of what it filled, 3 to 60 bars later; trips never
    overlap) on ``bars`` (1m bars: open, high, low, close, volume) of the symbol DEMO."""
    rng = np.random.default_rng(seed)
    close, volume = bars["close"], bars["volume"]
    sigma = (close.pct_change() * 1e4).rolling(20).std(ddof=0).to_numpy()
    avg_volume = volume.rolling(20).mean().to_numpy()
    typical = ((bars["high"] + bars["low"] + bars["close"]) / 3).to_numpy()
    span = (len(bars) - 200) // trips  # each trip within its own stretch of bars
    rows: list[dict[str, object]] = []
    for t in range(trips):
        p = 60 + t * span + int(rng.integers(0, max(span - 70, 1)))
        side = 1 if rng.random() < 0.55 else -1
        symbol = "DEMO2" if rng.random() < 0.03 else "DEMO"
        strategy = "momentum" if rng.random() < 0.6 else "meanrev"
        qty = round(float(np.exp(rng.uniform(np.log(0.01), np.log(0.4))) * avg_volume[p]), 2)
        limit = rng.random() < 0.35
        entry, filled = _order(rng, bars, typical, sigma, avg_volume, f"desk-{t:04d}-in", p, side,
                               qty, limit, symbol, strategy)  # fmt: skip
        rows.extend(entry)
        if filled <= 0:
            continue
        exit_bar = p + 4 + int(rng.integers(0, 57))
        leave, _ = _order(rng, bars, typical, sigma, avg_volume, f"desk-{t:04d}-out", exit_bar,
                          -side, filled, False, symbol, strategy)  # fmt: skip
        rows.extend(leave)
    return pd.DataFrame(rows)


def _order(
    rng: np.random.Generator,
    bars: pd.DataFrame,
    typical: np.ndarray,
    sigma: np.ndarray,
    avg_volume: np.ndarray,
    order_id: str,
    p: int,
    side: int,
    qty: float,
    limit: bool,
    symbol: str,
    strategy: str,
) -> tuple[list[dict[str, object]], float]:
    """One order decided at the close of bar ``p``: its CSV rows and the quantity filled."""
    venue = str(rng.choice(list(VENUES), p=[0.35, 0.3, 0.2, 0.15]))
    decided = bars.index[p] + MINUTE
    arrival = decided + pd.Timedelta(seconds=float(np.exp(rng.uniform(np.log(0.05), 1.1))))
    arrival_price = float(bars["open"].iloc[p + 1])
    term = sigma[p] * np.sqrt(qty / avg_volume[p])
    limit_price = (
        round(arrival_price * (1 + side * rng.uniform(-1.0, 4.0) / 1e4), 4) if limit else None
    )
    quote = venue in ("XNAS", "ARCA")
    half_spread = rng.uniform(1.0, 4.0) / 1e4 * arrival_price
    order = {
        "order_id": order_id,
        "account_id": "",
        "strategy_id": strategy,
        "symbol": symbol,
        "side": "buy" if side > 0 else "sell",
        "order_qty": qty,
        "order_type": "limit" if limit else "market",
        "limit_price": limit_price,
        "decision_time": _time(decided),
        "decision_price": round(float(bars["close"].iloc[p]), 4),
        "arrival_time": _time(arrival),
        "arrival_price": round(arrival_price, 4) if rng.random() < 0.7 else None,
        "venue": venue,
        "algo": str(rng.choice(ALGOS)),
        "bid": round(arrival_price - half_spread, 4) if quote else None,
        "ask": round(arrival_price + half_spread, 4) if quote else None,
        "expected_return_bps": round(float(rng.normal(8.0, 6.0)), 2),
    }
    slices = int(rng.choice([1, 2, 3, 4], p=[0.45, 0.25, 0.2, 0.1]))
    shares = rng.dirichlet(np.ones(slices))
    last, filled, fills = arrival, 0.0, []
    for k in range(slices):
        bar = p + 1 + k
        when = max(bars.index[bar] + pd.Timedelta(seconds=float(rng.uniform(1, 59))), last)
        reference = arrival_price if k == 0 else typical[bar]
        cost = VENUES[venue] + 0.8 * term + rng.normal(0.0, 1.5)
        price = reference * (1 + side * cost / 1e4)
        if limit_price is not None:
            if side * (reference - limit_price) > 0:
                continue  # the market is beyond the limit: this slice does not fill
            price = min(price, limit_price) if side > 0 else max(price, limit_price)
        fill_qty = float(np.floor(qty * shares[k] * 100) / 100)
        if fill_qty <= 0:
            continue
        rebate = limit and venue == "ARCA"  # a resting order's maker rebate
        fee = fill_qty * price * FEES_BPS[venue] / 1e4 * (-1 if rebate else 1)
        fills.append({"fill_time": _time(when), "fill_price": round(price, 4),
                      "fill_qty": fill_qty, "fee": round(fee, 6)})  # fmt: skip
        last, filled = when, filled + fill_qty
    end = last + pd.Timedelta(minutes=int(rng.integers(1, 6))) if limit else None
    order["end_time"] = None if end is None else _time(end)
    empty = {"fill_time": None, "fill_price": None, "fill_qty": None, "fee": None}
    return [{**order, **fill} for fill in (fills or [empty])], round(filled, 2)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from market.sample_data import load_sample

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--trips", type=int, default=450)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    sample_orders(load_sample("DEMO"), args.trips, args.seed).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
