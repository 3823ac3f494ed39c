"""Signals and results: frozen values a strategy hands out, convertible to stored records.

>>> result = create("sma_crossover").generate(load_sample("SP500"), symbol="SP500", timeframe="1d")
>>> result.frame[["entry_long", "exit_long"]].sum()          # the vectorized view, one row a bar
>>> result.signals[0].signal_type, result.signals[0].metadata
('entry_long', {'fast_sma': 1275.3, 'slow_sma': 1271.2, 'atr': 21.4})
>>> result.to_records(run_id=7)[0]                            # database.records.SignalRecord
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from database.records import SignalBlock, SignalRecord

SignalType = Literal["entry_long", "exit_long", "entry_short", "exit_short"]
SIGNAL_TYPES: tuple[str, ...] = get_args(SignalType)
# the order of signals on one bar: a reversal closes before it opens
BAR_ORDER: tuple[str, ...] = ("exit_long", "exit_short", "entry_long", "entry_short")
SIGNAL_COLUMNS: tuple[str, ...] = ("entry_long", "exit_long", "entry_short", "exit_short")


def canonical_config(name: str, params: Mapping[str, Any]) -> str:
    """Sorted, compact JSON of the strategy name and its parameters.

    >>> canonical_config("sma_crossover", {"slow": 30, "fast": 10})
    '{"name":"sma_crossover","params":{"fast":10,"slow":30}}'
    """
    return json.dumps({"name": name, "params": dict(params)}, sort_keys=True, separators=(",", ":"))


def config_hash(name: str, params: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of :func:`canonical_config` (stable across runs).

    >>> len(config_hash("sma_crossover", {"fast": 10, "slow": 30, "direction": "long"}))
    12
    """
    return hashlib.sha256(canonical_config(name, params).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StrategySignal:
    """One signal on one closed bar.

    >>> StrategySignal(pd.Timestamp("2024-01-02", tz="UTC"), "SP500", "1d", "sma_crossover",
    ...                "1a2b3c4d5e6f", "entry_long", 4742.8, 0.6, {"fast_sma": 4700.1}).price
    4742.8

    ``price`` is the bar's close; ``metadata`` holds the indicator values that triggered it;
    ``config`` the strategy's parameters (stored as the record's ``strategy_config``).
    """

    timestamp: pd.Timestamp
    symbol: str
    timeframe: str
    strategy_name: str
    config_hash: str
    signal_type: SignalType
    price: float
    confidence: float
    metadata: Mapping[str, float] = field(default_factory=dict, hash=False)
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.signal_type not in SIGNAL_TYPES:
            raise ValueError(
                f"signal_type={self.signal_type!r} is invalid: expected one of "
                + ", ".join(SIGNAL_TYPES)
            )
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence={self.confidence!r} is invalid: expected 0 to 1")

    @property
    def direction(self) -> str:
        """'long' or 'short'."""
        return self.signal_type.split("_")[1]

    @property
    def is_entry(self) -> bool:
        return self.signal_type.startswith("entry")

    def to_record(
        self, run_id: int | None = None, *, config: Mapping[str, Any] | None = None
    ) -> SignalRecord:
        """The row to store: ``strategy_config`` = params (``config``: a copy of them to share,
        else its own), ``metadata`` = indicator values."""
        return SignalRecord(
            strategy_name=self.strategy_name,
            symbol=self.symbol,
            timeframe=self.timeframe,
            timestamp=self.timestamp.to_pydatetime(),
            signal_type=self.signal_type,
            price=self.price,
            confidence=self.confidence,
            strategy_config=dict(self.config) if config is None else config,
            metadata=dict(self.metadata),
            run_id=run_id,
        )


@dataclass(frozen=True)
class StrategyResult:
    """A strategy's signals over a history: the vectorized ``frame`` and the ``signals``.

    >>> result.frame.columns.tolist()
    ['entry_long', 'exit_long', 'entry_short', 'exit_short', 'confidence']

    ``frame`` has one row per candle: boolean signal columns and ``confidence`` (the entry's
    on an entry bar, 1.0 on a bar with exits only, NaN without a signal). ``signals`` are built
    from it on first access (a million bars hold tens of thousands of signals).
    """

    strategy_name: str
    config: Mapping[str, Any] = field(hash=False)
    config_hash: str
    symbol: str
    timeframe: str
    frame: pd.DataFrame = field(hash=False, compare=False, repr=False)
    prices: np.ndarray = field(hash=False, compare=False, repr=False)
    metadata_columns: Mapping[str, np.ndarray] = field(hash=False, compare=False, repr=False)

    @cached_property
    def signals(self) -> tuple[StrategySignal, ...]:
        """Every signal, by time; on one bar exits come before entries (see BAR_ORDER)."""
        frame = self.frame
        position, code = self._order()
        stamps = frame.index[position].tolist()
        prices = self.prices[position].tolist()
        confidence = frame["confidence"].to_numpy()[position]
        is_exit = code < 2
        confidence = np.where(is_exit, 1.0, confidence).tolist()
        names = list(self.metadata_columns)
        meta = [self.metadata_columns[n][position].tolist() for n in names]
        return tuple(
            StrategySignal(
                stamps[i],
                self.symbol,
                self.timeframe,
                self.strategy_name,
                self.config_hash,
                BAR_ORDER[c],  # type: ignore[arg-type]
                prices[i],
                confidence[i],
                dict(zip(names, (column[i] for column in meta), strict=True)),
                self.config,
            )
            for i, c in enumerate(code.tolist())
        )

    def to_block(self) -> SignalBlock:
        """All signals as one :class:`database.records.SignalBlock` of columns: the rows of
        ``to_records`` without a Python object per signal (what a run stores)."""
        position, code = self._order()
        confidence = self.frame["confidence"].to_numpy()[position]
        return SignalBlock(
            strategy_name=self.strategy_name,
            symbol=self.symbol,
            timeframe=self.timeframe,
            timestamp=self.frame.index[position],
            signal_type=np.asarray(BAR_ORDER, dtype=object)[code],
            price=self.prices[position],
            confidence=np.where(code < 2, 1.0, confidence),
            metadata={name: column[position] for name, column in self.metadata_columns.items()},
            strategy_config=dict(self.config),
        )

    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        """(bar position, BAR_ORDER code) of every signal, by time then BAR_ORDER."""
        frame = self.frame
        positions, codes = [], []
        for code, column in enumerate(BAR_ORDER):
            where = np.flatnonzero(frame[column].to_numpy())
            positions.append(where)
            codes.append(np.full(len(where), code, dtype=np.int8))
        position = np.concatenate(positions)
        code = np.concatenate(codes)
        order = np.lexsort((code, position))
        return position[order], code[order]

    def to_records(self, run_id: int | None = None) -> list[SignalRecord]:
        """All signals as :class:`database.records.SignalRecord` rows, ready to store; they
        share one copy of the config, which the store serializes once."""
        config = dict(self.config)
        return [signal.to_record(run_id, config=config) for signal in self.signals]
