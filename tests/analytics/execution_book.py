"""Synthetic books for the dataset and cost-model tests and bench/execution_ml.py: 1m bars of
a few symbols whose volatility and volume change over time, and market orders whose cost
follows a known square-root impact law plus noise.

>>> book = impact_book(orders=20_000, symbols=4, bars=20_000, a=2.0, b=0.8, noise_bps=3.0)
>>> book.orders, book.fills, book.candles, book.noise_bps   # TCA inputs and each order's noise

Each order is decided at the close of a bar p (decision time = p's close, decision price =
p's close), arrives then and fills in full at the open of the next bar, at
open x (1 + s x cost / 1e4) with cost = a + b x sigma x sqrt(qty / avg volume) + noise, where
sigma and avg volume are computed here with plain pandas from bars 0..p: the population
standard deviation of the last 20 one-bar returns (bps) and the mean of the last 20 volumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")
MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class Book:
    orders: pd.DataFrame
    fills: pd.DataFrame
    candles: dict[str, pd.DataFrame]
    noise_bps: np.ndarray  # per order, in the orders' row order
    impact_term_bps: np.ndarray  # sigma x sqrt(participation), per order


def random_bars(n: int, rng: np.random.Generator, start: pd.Timestamp = START) -> pd.DataFrame:
    """n contiguous 1m bars, volatility switching between calm and busy stretches, volume
    following it; open = the previous close."""
    regime = np.repeat(rng.choice([4.0, 9.0, 20.0], size=n // 500 + 1), 500)[:n]  # bps per bar
    moves = rng.standard_normal(n) * regime / 1e4
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.r_[100.0, close[:-1]]
    wiggle = np.abs(rng.standard_normal((2, n))) * regime / 1e4 * 0.6
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    volume = 1_000.0 * regime / 9.0 * np.exp(0.4 * rng.standard_normal(n))
    index = pd.date_range(start, periods=n, freq="1min", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def impact_book(
    *,
    orders: int,
    symbols: int,
    bars: int,
    a: float,
    b: float,
    noise_bps: float,
    seed: int = 7,
    warmup: int = 120,
) -> Book:
    """``orders`` market orders spread over ``symbols`` symbols of ``bars`` bars each (at
    most one order per symbol and bar; see the module docstring)."""
    rng = np.random.default_rng(seed)
    names = [f"S{k}" for k in range(symbols)]
    candles = {name: random_bars(bars, rng) for name in names}
    per_symbol = np.bincount(rng.integers(0, symbols, orders), minlength=symbols)
    parts = []
    for k, name in enumerate(names):
        frame = candles[name]
        close, volume = frame["close"], frame["volume"]
        sigma = (close.pct_change() * 1e4).rolling(20).std(ddof=0).to_numpy()
        avg_volume = volume.rolling(20).mean().to_numpy()
        count = min(int(per_symbol[k]), bars - warmup - 1)
        p = np.sort(rng.choice(np.arange(warmup, bars - 1), size=count, replace=False))
        side = rng.choice([1, -1], size=count)
        participation = np.exp(rng.uniform(np.log(0.001), np.log(0.5), size=count))
        qty = participation * avg_volume[p]
        term = sigma[p] * np.sqrt(qty / avg_volume[p])
        noise = rng.standard_normal(count) * noise_bps
        cost = a + b * term + noise
        decided = frame.index[p] + MINUTE  # the close of bar p
        fill_price = frame["open"].to_numpy()[p + 1] * (1 + side * cost / 1e4)
        parts.append(
            pd.DataFrame(
                {
                    "symbol": name,
                    "side": np.where(side > 0, "buy", "sell"),
                    "order_qty": qty,
                    "decision_time": decided,
                    "decision_price": close.to_numpy()[p],
                    "fill_price": fill_price,
                    "noise": noise,
                    "term": term,
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values("decision_time", kind="stable").reset_index(drop=True)
    ids = np.array([f"o{k}" for k in range(len(table))], dtype=object)
    order_frame = pd.DataFrame(
        {
            "order_id": ids,
            "account_id": "synthetic",
            "strategy_id": "impact",
            "symbol": table["symbol"],
            "side": table["side"],
            "order_qty": table["order_qty"],
            "order_type": "market",
            "limit_price": np.nan,
            "decision_time": table["decision_time"],
            "decision_price": table["decision_price"],
            "arrival_time": table["decision_time"],
            "venue": "sim",
            "algo": "market",
        }
    )
    fills = pd.DataFrame(
        {
            "order_id": ids,
            "fill_time": table["decision_time"],
            "fill_price": table["fill_price"],
            "fill_qty": table["order_qty"],
            "fee": 0.0,
        }
    )
    return Book(order_frame, fills, candles, table["noise"].to_numpy(), table["term"].to_numpy())
