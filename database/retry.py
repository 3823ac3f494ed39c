"""Riding out a busy or briefly unreachable database: retry a whole transaction with
exponential backoff and jitter while its failure is transient (database/errors.py).

    run_id = retry_transient(lambda: save(session_factory), what="saving the backtest run")

``work`` must be one complete transaction (``with factory.begin() as session: ...``): a failed
attempt is rolled back, so running it again writes everything once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from database.errors import failure_reason, is_transient_failure

T = TypeVar("T")
log = logging.getLogger(__name__)
_rng = random.Random()


def backoff_wait(attempt: int, first_s: float, max_s: float, rng: random.Random = _rng) -> float:
    """Seconds before retry ``attempt`` (1 = the first): ``first_s`` doubling up to ``max_s``,
    drawn in [w/2, w] so that writers that failed together do not retry together."""
    full = min(max_s, first_s * 2 ** min(max(attempt, 1) - 1, 30))
    return full / 2 + rng.uniform(0, full / 2)


def retry_transient(
    work: Callable[[], T],
    *,
    what: str,
    give_up_after_s: float = 300.0,
    first_wait_s: float = 0.1,
    max_wait_s: float = 5.0,
) -> T:
    """``work()``, run again after each transient database failure until it succeeds; once
    ``give_up_after_s`` has passed, the last failure is raised. Other errors are raised at once.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient_failure(exc):
                raise
            attempt += 1
            wait = backoff_wait(attempt, first_wait_s, max_wait_s)
            if time.monotonic() - started + wait > give_up_after_s:
                raise
            log.warning(
                "%s: the database is busy or unreachable (%s); retry %d in %.1f s",
                what,
                failure_reason(exc),
                attempt,
                wait,
            )
            time.sleep(wait)
