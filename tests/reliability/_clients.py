"""Clients of the reliability tests: a poster of trade batches in a loop (every answer
kept), and what the database holds of them."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx2
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

T0_MS = 1_704_067_200_000  # 2024-01-01


def batch(account: str, prefix: str, first: int, size: int) -> list[dict]:
    """``size`` trades of ``account``, ids ``<prefix>-<k>``, one a second from ``first``
    (times rise from batch to batch when ``first`` does)."""
    return [
        {"trade_id": f"{prefix}-{k}", "account_id": account, "symbol": "REL",
         "side": ("buy", "sell")[k % 2], "price": 100.0 + (first + k) % 11, "volume": 1.0,
         "execution_time": T0_MS + (first + k) * 1000}
        for k in range(size)
    ]  # fmt: skip


@dataclass
class Outcome:
    prefix: str
    size: int
    status: int | None  # None: no answer (the connection failed)
    at: float
    retry_after: str | None = None
    kind: str | None = None  # the problem's type
    error: str | None = None


@dataclass
class Poster:
    """Posts batches of ``size`` trades of ``account`` to ``base`` until stopped, each with
    new ids and later times (a refused batch is not sent again)."""

    base: str
    token: str
    account: str
    size: int = 100
    name: str = "b"
    honour_retry_after: bool = True
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> Poster:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        n = 0
        with httpx2.Client(base_url=self.base, headers=headers, timeout=60) as http:
            while not self._stop.is_set():
                prefix = f"{self.name}{n}"
                body = batch(self.account, prefix, n * self.size, self.size)
                n += 1
                try:
                    answer = http.post("/api/v1/trades", json=body)
                except httpx2.TransportError as exc:
                    self._keep(Outcome(prefix, self.size, None, time.monotonic(), error=repr(exc)))
                    continue
                kind = None
                if answer.status_code != 201:
                    kind = answer.json().get("type") if answer.content else None
                retry = answer.headers.get("retry-after")
                self._keep(Outcome(prefix, self.size, answer.status_code, time.monotonic(),
                                   retry, kind, None if answer.status_code == 201 else
                                   answer.text[:300]))  # fmt: skip
                if answer.status_code == 503 and retry and self.honour_retry_after:
                    self._stop.wait(float(retry))

    def _keep(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)


def stored_ids(database_url: str, account: str) -> Counter[str]:
    """Each trade id of ``account`` in the database, with how many rows hold it."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT trade_id FROM trades WHERE account_id = :a"), {"a": account}
            ).scalars()
            return Counter(rows)
    finally:
        engine.dispose()


def check_batches(outcomes: list[Outcome], stored: Counter[str]) -> None:
    """Every acknowledged batch stored whole, exactly once; every other one whole or not at
    all (never a part of a batch)."""
    assert all(n == 1 for n in stored.values()), [t for t, n in stored.items() if n > 1][:10]
    for outcome in outcomes:
        held = sum(1 for k in range(outcome.size) if stored.get(f"{outcome.prefix}-{k}"))
        if outcome.status == 201:
            assert held == outcome.size, (outcome, held)
        else:
            assert held in (0, outcome.size), (outcome, held)
