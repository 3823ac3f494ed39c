"""The performance summary over all an account's trades served from the live state
(TrackingService.performance without metrics to compute: a new trade costs its delta) is the
document the full recomputation from the stored trades gives, to the last bit: after each of
random batches of trades, some stored by the serving process's tracker, some by another
process's (another TrackingService on the same database), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from database.records import TradeRecord
from services.tracking import TrackingService, UnknownAccountError

LABELS = ("breakout", "momentum", "stop_loss", "news")


def random_fills(n: int, seed: int) -> list[TradeRecord]:
    """Fills of two symbols in time order: prices and volumes with decimals (their sums are
    not exact in floats, open positions leave float residue), scale-ins, partial exits and
    flips, a random label set on each, commissions."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    position = {"AAA": 0.0, "BBB": 0.0}
    price = {"AAA": 101.37, "BBB": 0.4321}
    out = []
    for k in range(n):
        symbol = ("AAA", "BBB")[int(rng.random() < 0.4)]
        price[symbol] = round(price[symbol] * float(np.exp(rng.normal(0, 0.01))), 6)
        lean = -0.15 * np.sign(position[symbol])
        side = "buy" if rng.random() < 0.5 + lean else "sell"
        volume = round(float(rng.choice([0.1, 0.3, 0.7, 1.0, 1.7, 2.2])), 1)
        position[symbol] += volume if side == "buy" else -volume
        labels = tuple(x for x in LABELS if rng.random() < 0.25)
        out.append(
            TradeRecord(
                trade_id=f"t{k}", account_id="acc", strategy_id=("s1", "s2")[k % 2],
                symbol=symbol, side=side, price=price[symbol], volume=volume,
                commission=round(float(rng.random()) * 0.3, 4),
                execution_time=t0 + timedelta(minutes=7 * k + int(rng.integers(0, 5))),
                labels=labels, source="csv",
            )
        )  # fmt: skip
    return out


def _bits(document: dict) -> str:
    """The document as text: equal iff every figure is the same double (NaN as NaN)."""
    return json.dumps(document, sort_keys=True)


def _recomputed(sessions, account: str, *, metrics: bool = True) -> dict:
    """The full recomputation: a fresh service reading every stored trade (no live state)."""
    fresh = TrackingService(sessions)
    try:
        document = fresh._performance(account, None, "all", None, "quantstats")
    finally:
        fresh.tracker.close()
    if not metrics:
        for entry in document["periods"]:
            del entry["metrics"]
    return document


def test_live_summary_equals_the_recomputation_after_each_batch(session_factory):
    fills = random_fills(600, seed=5)
    serving, other = TrackingService(session_factory), TrackingService(session_factory)
    rng = np.random.default_rng(9)
    try:
        serving.tracker.record_many(fills[:40])
        done, batches = 40, 0
        while done < len(fills):
            size = int(rng.integers(1, 60))
            # the other process's rows: read by the serving one's catch-up when asked
            who = other if rng.random() < 0.5 else serving
            if rng.random() < 0.3:  # one at a time, through the group commit
                for record in fills[done : done + size]:
                    who.tracker.record(record)
            else:
                who.tracker.record_many(fills[done : done + size])
            done = min(done + size, len(fills))
            batches += 1
            live = serving.performance("acc")
            assert _bits(live) == _bits(_recomputed(session_factory, "acc")), batches
            summary = serving.performance("acc", metrics=False, capital=10_000.0)
            whole = _recomputed(session_factory, "acc", metrics=False)
            whole["capital"] = 10_000.0
            assert _bits(summary) == _bits(whole), batches
        assert batches > 10
        final = serving.performance("acc")
        assert final["fills"] == len(fills)
        assert final["open_positions"]  # the random book ends open: residue is tested too
        assert set(LABELS) <= final["periods"][0]["labels"].keys()  # and the annotator's
    finally:
        serving.tracker.close()
        other.tracker.close()


def test_a_first_read_of_an_account_stored_elsewhere_equals_the_recomputation(session_factory):
    fills = random_fills(300, seed=8)
    writer = TrackingService(session_factory)
    writer.tracker.record_many(fills)
    writer.tracker.close()
    serving = TrackingService(session_factory)
    try:
        assert _bits(serving.performance("acc")) == _bits(_recomputed(session_factory, "acc"))
        with pytest.raises(UnknownAccountError):
            serving.performance("nobody")
    finally:
        serving.tracker.close()


def test_requests_asking_a_document_being_computed_wait_for_that_one_computation(
    session_factory,
):
    """A burst of requests after a new trade computes the metrics document once, not once
    each side by side (the first computes; the others, arriving meanwhile, get its answer)."""
    import threading

    fills = random_fills(60, seed=2)
    service = TrackingService(session_factory)
    service.tracker.record_many(fills)
    computing, release = threading.Event(), threading.Event()
    calls: list[int] = []
    compute = service._performance

    def counted(*args):
        calls.append(1)
        computing.set()
        assert release.wait(30)
        return compute(*args)

    service._performance = counted  # type: ignore[method-assign]
    answers: list[dict] = []

    def ask() -> None:
        answers.append(service.performance("acc", capital=10_000.0))

    try:
        threads = [threading.Thread(target=ask) for _ in range(5)]
        threads[0].start()
        assert computing.wait(30)
        for thread in threads[1:]:
            thread.start()
        # the others are waiting for that computation: none starts its own (given 1 s to)
        deadline = time.monotonic() + 1.0
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        for thread in threads:
            thread.join(30)
        assert len(calls) == 1
        assert len(answers) == 5
        assert all(_bits(a) == _bits(answers[0]) for a in answers)
        assert answers[0]["periods"][0]["metrics"]  # with a capital: the metrics computed
    finally:
        service.tracker.close()


def test_a_server_answers_from_the_stored_trades_while_the_live_state_is_read(session_factory):
    """With read_in_background (the API's), the first summary of an account is not held up
    by the live state's first read: the same document from the stored trades, then the live
    state's once it is read."""
    fills = random_fills(200, seed=6)
    writer = TrackingService(session_factory)
    writer.tracker.record_many(fills[:150])
    serving = TrackingService(session_factory)
    serving.read_in_background = True
    try:
        first = serving.performance("acc", metrics=False)
        assert _bits(first) == _bits(_recomputed(session_factory, "acc", metrics=False))
        deadline = time.monotonic() + 60
        while not serving.live_accounts.known("acc") or serving._reading:
            assert time.monotonic() < deadline, "the live state was not read within 60 s"
            time.sleep(0.01)
        writer.tracker.record_many(fills[150:])  # another process's trades, then the live path
        assert _bits(serving.performance("acc", metrics=False)) == _bits(
            _recomputed(session_factory, "acc", metrics=False)
        )
        assert serving.live_accounts.summary("acc")["fills"] == len(fills)
    finally:
        writer.tracker.close()
        serving.tracker.close()
