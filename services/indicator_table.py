"""One indicator as a table (a timestamp per bar, a column per output), for the command line.

A stored timeframe goes through the StrategyDataIntegrator (cached, shared with the charts and
the strategies). A higher timeframe that is not stored is resampled from the finest stored one
that tiles it (complete bars only) and computed on those bars.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.repositories import CandleRepository
from indicators import registry
from market.resample import resample
from market.timeframes import Timeframe
from strategies.data_integration import StrategyDataIntegrator


class IndicatorTableError(LookupError):
    """The symbol or timeframe cannot give this indicator (the message says what is stored)."""


def parse_param(text: str) -> tuple[str, Any]:
    """``"timeperiod=14"`` -> ``("timeperiod", 14)``; numbers become int or float."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"--set {text!r}: expected PARAM=VALUE, for example timeperiod=14")
    value = value.strip()
    for kind in (int, float):
        try:
            return name.strip(), kind(value)
        except ValueError:
            continue
    return name.strip(), value


def indicator_table(
    sessions: sessionmaker[Session],
    integrator: StrategyDataIntegrator,
    symbol: str,
    timeframe: str,
    name: str,
    params: dict[str, Any],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Columns named after the indicator's outputs, indexed by bar open time (UTC).

    Values are those of one pass over the whole stored history (what a chart shows);
    ``start``/``end`` only choose which rows come out.
    """
    spec = registry.get(name)
    wanted = registry.request(name, **params)  # validates: errors name the parameter and range
    tf = Timeframe.parse(timeframe)
    with sessions() as session:
        stored = [
            Timeframe.parse(s.timeframe)
            for s in CandleRepository(session).series()
            if s.symbol == symbol
        ]
    if not stored:
        raise IndicatorTableError(f"no candles of {symbol!r} are stored")
    if tf in stored:
        data = integrator.frame(symbol, tf, requests=[wanted])
        if wanted.key in data.failures:
            raise IndicatorTableError(f"{wanted.key}: {data.failures[wanted.key]}")
        return data.values[wanted.key].loc[start:end]
    bases = sorted(base for base in stored if base.can_resample_to(tf))
    if not bases:
        have = ", ".join(sorted(t.label for t in stored))
        raise IndicatorTableError(
            f"{symbol} is stored in {have}: {tf} is neither stored nor resampled from those"
        )
    base = bases[-1]  # the coarsest that tiles it: the fewest rows to read
    with sessions() as session:
        rows = CandleRepository(session).frame(symbol, base.label)
    bars = resample(rows, base, tf)
    return pd.DataFrame(spec.compute(bars, wanted.param_dict), index=bars.index).loc[start:end]
