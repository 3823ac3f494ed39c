"""The REST API through FastAPI's TestClient on a real database (SQLite and PostgreSQL, the
``session_factory`` fixture of tests/conftest.py): tokens of every scope, and an account
seeded through the TradeTracker with bars of its symbols and of a benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import create_api
from database.records import TradeRecord
from database.repositories import CandleRepository
from services.tokens import TokenService
from services.tracking import TrackingService

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "acc1"
T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)


@dataclass
class Api:
    client: TestClient
    sessions: sessionmaker[Session]
    database_url: str
    tokens: dict[str, str]  # "read", "write", "admin" of ACCOUNT; "other": read of acc2

    def headers(self, who: str = "read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "read", **params: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), params=params)

    def post(self, body: Any, who: str = "write", **kwargs: Any) -> Any:
        return self.client.post("/api/v1/trades", headers=self.headers(who), json=body, **kwargs)


@pytest.fixture
def api(session_factory, database_url) -> Iterator[Api]:
    tokens = TokenService(session_factory)
    made = {scope: tokens.create(ACCOUNT, scope).token for scope in ("read", "write", "admin")}
    made["other"] = tokens.create("acc2", "read").token
    with TestClient(create_api(session_factory, max_request_bytes=2 << 20)) as client:
        yield Api(client, session_factory, database_url, made)


def bars(start: str, periods: int, freq: str, seed: int, level: float = 100.0) -> pd.DataFrame:
    """A random walk of bars (index: bar open times, UTC)."""
    index = pd.date_range(start, periods=periods, freq=freq, tz="UTC", name="timestamp")
    close = level * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, periods)))
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
         "volume": 1_000.0},
        index=index,
    )  # fmt: skip


def seed_trades(n_trips: int = 80, seed: int = 7) -> list[TradeRecord]:
    """Round trips of two symbols and two strategies over three months, some labelled."""
    rng = np.random.default_rng(seed)
    when = T0
    out = []
    for k in range(n_trips):
        symbol = ("BTC", "ETH")[k % 2]
        strategy = ("s1", "s2")[k % 3 == 0]
        price = 100 * (1 + rng.normal(0, 0.05))
        volume = float(rng.uniform(0.5, 2))
        labels = ("breakout",) if k % 4 == 0 else ()
        common = {"account_id": ACCOUNT, "strategy_id": strategy, "symbol": symbol,
                  "volume": volume, "commission": 0.05}  # fmt: skip
        out.append(TradeRecord(trade_id=f"t{k}a", side="buy", price=price,
                               execution_time=when, labels=labels, **common))  # fmt: skip
        when += timedelta(hours=int(rng.integers(1, 30)))
        exit_price = price * (1 + rng.normal(0.001, 0.02))
        out.append(TradeRecord(trade_id=f"t{k}b", side="sell", price=exit_price,
                               execution_time=when, **common))  # fmt: skip
        when += timedelta(hours=int(rng.integers(1, 30)))
    return out


@pytest.fixture
def seeded(session_factory) -> list[TradeRecord]:
    """ACCOUNT's trades recorded through the TradeTracker (market context and labels from the
    stored hourly bars of BTC and ETH), and daily bars of a benchmark, BENCH."""
    with session_factory.begin() as session:
        candles = CandleRepository(session)
        candles.upsert("BTC", "1h", bars("2023-12-01", 24 * 150, "h", 1))
        candles.upsert("ETH", "1h", bars("2023-12-01", 24 * 150, "h", 2))
        candles.upsert("BENCH", "1d", bars("2023-10-01", 250, "D", 3))
    tracking = TrackingService(session_factory)
    return tracking.tracker.record_many(seed_trades()).stored


def cli_json(database_url: str, *args: str) -> Any:
    """``app.py ARGS --json`` on the test's database, its output read back."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "DATABASE_URL": database_url, "LOAD_SAMPLE_DATA": "false", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "app.py", *args, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
