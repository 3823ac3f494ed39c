"""Plain numpy/pandas references, written from the published definitions, not from our wrappers.

>>> sma(np.arange(1.0, 5.0), 2)
array([nan, 1.5, 2.5, 3.5])

They check the wrapper's parameter mapping with something other than TA-Lib, and the benchmark
times the pandas ones (ewm/rolling) as the "plain pandas" column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sma(close: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(close).rolling(n).mean().to_numpy()


def ema(
    close: np.ndarray, n: int, seed_at: int | None = None, seed_len: int | None = None
) -> np.ndarray:
    """EMA with k = 2/(n+1), seeded at index `seed_at` (default n-1) with the SMA of `seed_len`
    bars ending there (default n): TA-Lib's seeding."""
    seed_at = n - 1 if seed_at is None else seed_at
    seed_len = n if seed_len is None else seed_len
    out = np.full(len(close), np.nan)
    if len(close) <= seed_at:
        return out
    series = pd.Series(close[seed_at:], dtype=float).copy()
    series.iloc[0] = close[seed_at - seed_len + 1 : seed_at + 1].mean()
    out[seed_at:] = series.ewm(alpha=2.0 / (n + 1), adjust=False).mean().to_numpy()
    return out


def wma(close: np.ndarray, n: int) -> np.ndarray:
    weights = np.arange(1.0, n + 1)
    out = np.full(len(close), np.nan)
    if len(close) >= n:
        out[n - 1 :] = np.convolve(close, weights[::-1], mode="valid") / weights.sum()
    return out


def bbands(close: np.ndarray, n: int, up: float, dn: float) -> tuple[np.ndarray, ...]:
    rolling = pd.Series(close).rolling(n)
    middle = rolling.mean().to_numpy()
    std = rolling.std(ddof=0).to_numpy()  # TA-Lib: population standard deviation
    return middle + up * std, middle, middle - dn * std


def wilder(values: np.ndarray, n: int, first: int) -> np.ndarray:
    """Wilder's smoothing: mean of values[first : first+n] at first+n-1, then (a(n-1)+v)/n."""
    out = np.full(len(values), np.nan)
    if len(values) < first + n:
        return out
    average = values[first : first + n].mean()
    out[first + n - 1] = average
    for i in range(first + n, len(values)):
        average = (average * (n - 1) + values[i]) / n
        out[i] = average
    return out


def rsi(close: np.ndarray, n: int) -> np.ndarray:
    change = np.diff(close, prepend=np.nan)
    gain = wilder(np.where(change > 0, change, 0.0), n, first=1)
    loss = wilder(np.where(change < 0, -change, 0.0), n, first=1)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0, 0.0, 100.0 * gain / total) + 0 * total


def macd(close: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, ...]:
    # TA-Lib starts both EMAs at bar slow-1, the fast one seeded by the SMA of its last `fast` bars
    line = ema(close, fast, seed_at=slow - 1, seed_len=fast) - ema(close, slow)
    sig = np.full(len(close), np.nan)
    if len(close) > slow - 1:
        sig[slow - 1 :] = ema(line[slow - 1 :], signal)
    line = np.where(np.isnan(sig), np.nan, line)
    return line, sig, line - sig


def stoch(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, fastk: int, slowk: int, slowd: int
) -> tuple[np.ndarray, np.ndarray]:
    highest = pd.Series(high).rolling(fastk).max().to_numpy()
    lowest = pd.Series(low).rolling(fastk).min().to_numpy()
    span = highest - lowest
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(span > 0, 100.0 * (close - lowest) / span, 0.0)
    raw[np.isnan(span)] = np.nan
    k = pd.Series(raw).rolling(slowk).mean()
    d = k.rolling(slowd).mean().to_numpy()
    k = k.to_numpy()
    return np.where(np.isnan(d), np.nan, k), d


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    previous = np.roll(close, 1)
    true_range = np.maximum.reduce([high - low, np.abs(high - previous), np.abs(low - previous)])
    true_range[0] = np.nan
    return wilder(true_range, n, first=1)


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    signed = np.sign(np.diff(close, prepend=close[:1])) * volume
    signed[:1] = volume[:1]
    return np.cumsum(signed)


def donchian(high: np.ndarray, low: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    upper = pd.Series(high).rolling(n).max().to_numpy()
    lower = pd.Series(low).rolling(n).min().to_numpy()
    return upper, (upper + lower) / 2, lower


def vwap(frame: pd.DataFrame, anchor: str) -> np.ndarray:
    freq = {"D": "D", "W": "W-SUN"}[anchor]  # W-SUN: weeks ending Sunday, starting Monday
    session = frame.index.tz_convert("UTC").tz_localize(None).to_period(freq)
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3
    pv = (typical * frame["volume"]).groupby(session).cumsum()
    volume = frame["volume"].groupby(session).cumsum()
    return (pv / volume).to_numpy()


def rsi_ewm(close: np.ndarray, n: int) -> np.ndarray:
    """RSI with pandas ewm (alpha = 1/n, Wilder) after the SMA seed: the vectorized twin of rsi."""
    change = pd.Series(close).diff()
    out = np.full(len(close), np.nan)
    if len(close) <= n:
        return out
    averages = []
    for part in (change.clip(lower=0.0), (-change).clip(lower=0.0)):
        seeded = part.iloc[n:].copy()
        seeded.iloc[0] = part.iloc[1 : n + 1].mean()
        averages.append(seeded.ewm(alpha=1.0 / n, adjust=False).mean().to_numpy())
    gain, loss = averages
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out[n:] = np.where(total == 0, 0.0, 100.0 * gain / total)
    return out
