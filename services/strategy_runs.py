"""Run a strategy over stored history and keep the run: integrator -> generate -> validate -> store.

>>> outcome = run_strategy(sessions, integrator, create("ema_crossover"), "SP500", "1d")
>>> outcome.run.id, len(outcome.result.signals)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.records import StrategyRunRecord
from database.repositories import StrategyRepository
from database.retry import retry_transient
from strategies.base import BaseStrategy
from strategies.data_integration import StrategyDataIntegrator
from strategies.signals import StrategyResult
from strategies.validation import validate_signals


class StrategyRunError(RuntimeError):
    """The strategy could not run on this data (the message says which input failed and why)."""


@dataclass(frozen=True)
class RunOutcome:
    result: StrategyResult
    run: StrategyRunRecord | None  # None when not stored


def run_strategy(
    sessions: sessionmaker[Session],
    integrator: StrategyDataIntegrator,
    strategy: BaseStrategy,
    symbol: str,
    timeframe: str,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    store: bool = True,
) -> RunOutcome:
    """Signals of `strategy` over the stored bars (indicators through the integrator, so each is
    computed once and cached), checked, and stored as a backtest run with its signals."""
    started = datetime.now(UTC)
    data = integrator.frame(symbol, timeframe, strategies=[strategy], start=start, end=end)
    if data.failures:
        why = "; ".join(f"{key}: {reason}" for key, reason in data.failures.items())
        raise StrategyRunError(f"{strategy.name} on {symbol} {timeframe}: {why}")
    if data.candles.empty:
        raise StrategyRunError(f"no {timeframe} candles of {symbol} in this window")
    result = strategy.generate(data, symbol=symbol, timeframe=timeframe)
    # values are computed from the window's first bar: bar `warmup` is the first that may signal
    candles = data.candles
    warmup_end = candles.index[strategy.warmup] if strategy.warmup < len(candles) else None
    problems = validate_signals(result.signals, warmup_end=warmup_end)
    if problems:  # a broken strategy must not store signals a trader would trust
        listed = "; ".join(str(p) for p in problems[:5])
        raise StrategyRunError(f"{strategy.name}: {len(problems)} invalid signal(s): {listed}")
    if not store:
        return RunOutcome(result, None)
    records = result.to_records()

    def save() -> StrategyRunRecord:
        with sessions.begin() as session:
            return StrategyRepository(session).save_run(
                strategy.name,
                strategy.config,
                symbol,
                timeframe,
                "backtest",
                records,
                started_at=started,
            )

    return RunOutcome(result, retry_transient(save, what=f"saving the signals of {symbol}"))
