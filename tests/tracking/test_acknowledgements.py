"""A streamed trade's Future (tracking.acknowledgements.Acknowledgement): one outcome shared by
its group commit, and still a whole Future to those that read its inner state (waiting on
several, callbacks, repr), whether they read it before its group is written or after."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, Future, as_completed, wait

import pytest

from database.errors import DuplicateTradeError
from tests.tracking.test_tracker import fill
from tracking.acknowledgements import Acknowledgement, Pending
from tracking.tracker import OutOfOrderTradeError, TradeTracker


def test_a_group_resolves_its_futures_read_before_and_after_it_is_written():
    pending = Pending()
    early = [Acknowledgement(pending, k) for k in range(3)]
    called: list[object] = []
    early[0].add_done_callback(lambda f: called.append(f.result()))  # a Future's state made
    assert not early[0].done()
    assert not early[1].done()
    assert early[1].cancel() is False  # a queued trade is stored with its group
    with pytest.raises(TimeoutError):
        early[1].result(timeout=0.01)
    with pytest.raises(TimeoutError):
        early[0].result(timeout=0.01)
    error = ValueError("refused")
    threading.Timer(0.05, pending.finish, args=(["a", error, "c"],)).start()
    done, _ = wait(early[:2], timeout=5, return_when=FIRST_EXCEPTION)
    assert early[1] in done
    assert early[0].result(timeout=5) == "a"
    assert called == ["a"]
    with pytest.raises(ValueError, match="refused"):
        early[1].result()
    assert early[1].exception() is error
    assert early[2].exception() is None
    assert early[2].result() == "c"
    assert early[2].done()
    assert not early[2].cancelled()
    late = Acknowledgement(pending, 1)  # its state made after the group was written
    heard: list[BaseException | None] = []
    late.add_done_callback(lambda f: heard.append(f.exception()))
    assert heard == [error]
    assert "finished" in repr(late)
    assert sorted(f.result() for f in as_completed([early[0], early[2]], timeout=5)) == ["a", "c"]
    assert isinstance(late, Future)


def test_streamed_trades_futures_work_with_concurrent_futures_wait(session_factory):
    tracker = TradeTracker(session_factory)
    try:
        futures = [tracker.submit(fill(f"w{k}", k, "buy", 100, 1)) for k in range(20)]
        futures.append(tracker.submit(fill("w3", 30, "buy", 100, 1)))  # repeated
        done, not_done = wait(futures, timeout=30)
        assert not not_done
        assert len(done) == 21
        futures.append(tracker.submit(fill("old", 0, "buy", 100, 1)))  # older than w19: refused
        futures.append(tracker.submit(fill("w20", 40, "sell", 100, 1)))
        assert futures[-1].result(timeout=30).pnl == 0
        assert [f.result().trade_id for f in futures[:20]] == [f"w{k}" for k in range(20)]
        assert isinstance(futures[20].exception(), DuplicateTradeError)
        assert isinstance(futures[21].exception(), OutOfOrderTradeError)
    finally:
        tracker.close()
