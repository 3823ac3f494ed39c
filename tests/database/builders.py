"""Small builders for database tests: candle frames and records with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from database.records import SignalRecord, TradeRecord

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def candle_frame(
    bars: int, start: str = "2024-01-01", freq: str = "1min", base: float = 100.0, seed: int = 0
) -> pd.DataFrame:
    """A valid random-walk candle frame in the contract (UTC index ``ts``, float64 columns)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=bars, freq=freq, tz="UTC", name="ts")
    close = base * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    open_ = np.concatenate([[base], close[:-1]])
    spread = rng.uniform(0.0001, 0.01, bars) * close
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(0, 1000, bars).astype(np.float64),
        },
        index=index,
    )
    return frame


def signal(**changes: Any) -> SignalRecord:
    values: dict[str, Any] = {
        "strategy_name": "sma_cross",
        "strategy_config": {"fast": 10, "slow": 30},
        "symbol": "SP500",
        "timeframe": "1d",
        "timestamp": T0,
        "signal_type": "entry_long",
        "price": 4742.83,
        "confidence": 0.75,
        "metadata": {"fast_sma": 4700.1, "reasons": ["cross"]},
    }
    values.update(changes)
    return SignalRecord(**values)


def trade(trade_id: str = "t-1", minutes: int = 0, **changes: Any) -> TradeRecord:
    values: dict[str, Any] = {
        "trade_id": trade_id,
        "account_id": "paper-1",
        "strategy_id": "sma_cross",
        "symbol": "SP500",
        "side": "buy",
        "price": 4742.83,
        "volume": 2.0,
        "commission": 1.25,
        "execution_time": T0 + timedelta(minutes=minutes),
        "market_context": {"spread": 0.25, "regime": "trend"},
        "labels": ("breakout", "morning"),
        "pnl": None,
        "cumulative_pnl": None,
    }
    values.update(changes)
    return TradeRecord(**values)


def signals(
    count: int, start: datetime = T0, step: timedelta = timedelta(hours=1), **changes: Any
) -> list[SignalRecord]:
    """``count`` signals ``step`` apart from ``start``, alternating entry and exit."""
    kinds = ("entry_long", "exit_long")
    return [
        signal(
            **{
                "timestamp": start + i * step,
                "price": 4700.0 + i,
                "signal_type": kinds[i % 2],
                **changes,
            }
        )
        for i in range(count)
    ]


def copy_recorder() -> tuple[list[bool], Any]:
    """(what each call made, a stand-in for ``trades.copied_rows`` that calls it and
    records whether it copied the rows: True, or gave None)."""
    import database.repositories.trades as trades_module

    made: list[bool] = []
    real = trades_module.copied_rows

    def recording(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        made.append(found is not None)
        return found

    return made, recording
