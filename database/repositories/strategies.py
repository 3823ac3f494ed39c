"""StrategyRepository: the facade a strategy service uses (runs with their signals, retention)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select
from sqlalchemy.orm import Session

from database.records import (
    RUN_MODES,
    RUN_STATUSES,
    RetentionPolicy,
    RetentionReport,
    SignalRecord,
    StrategyRunRecord,
    check_non_empty,
    utc_datetime,
)
from database.repositories._common import DEFAULT_CHUNK_ROWS, choices
from database.repositories.runs import (
    RUNS,
    StrategyRunRepository,
    add_run,
    check_finished_after_started,
    run_record,
)
from database.repositories.signals import SIGNALS, SignalRepository, insert_signals, new_signals
from database.repositories.trades import TRADES


class StrategyRepository:
    """The facade a strategy service uses: runs with their signals, queries, retention.

    Never commits; one ``save_run`` is all or nothing within the caller's transaction::

        with factory.begin() as session:
            run = StrategyRepository(session).save_run("sma_cross", config, "SP500", "1d",
                                                       "backtest", signals)

    ``runs`` and ``signals`` are the underlying repositories (create/finish a live run,
    add signals to it, ``signals.list``/``frame``/``count`` and the aggregations).
    """

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows
        self.runs = StrategyRunRepository(session)
        self.signals = SignalRepository(session, chunk_rows=chunk_rows)

    def save_run(
        self,
        strategy_name: str,
        config: Mapping[str, Any],
        symbol: str,
        timeframe: str,
        mode: str,
        signals: Iterable[SignalRecord],
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        status: str = "finished",
        error: str | None = None,
    ) -> StrategyRunRecord:
        """Store a run and its signals in bulk; returns the run with its id.

        Every argument and signal is checked before anything is written (ValueError or
        TypeError naming the defect). Signals must be of this strategy, symbol and timeframe
        and carry no run id (they get the new run's); one without a config gets ``config``.
        A finished or failed run without ``finished_at`` finishes now.
        """
        for name, value in (
            ("strategy_name", strategy_name),
            ("symbol", symbol),
            ("timeframe", timeframe),
        ):
            check_non_empty(name, value)
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping, got {type(config).__name__}")
        choices("mode", mode, RUN_MODES)
        choices("status", status, RUN_STATUSES)
        now = datetime.now(UTC)
        started = utc_datetime(started_at or now, "started_at")
        finished = None if finished_at is None else utc_datetime(finished_at, "finished_at")
        if status == "running" and finished is not None:
            raise ValueError("finished_at is given but status='running': a running run has none")
        if status != "running" and finished is None:
            finished = max(now, started)
        if finished is not None:
            check_finished_after_started(started, finished)
        batch = new_signals(signals)
        run_key = {"strategy_name": strategy_name, "symbol": symbol, "timeframe": timeframe}
        for index, record in enumerate(batch):
            if record.run_id is not None:
                raise ValueError(
                    f"signal {index} already names run {record.run_id}; save_run assigns the "
                    "new run's id"
                )
            for name, expected in run_key.items():
                if getattr(record, name) != expected:
                    raise ValueError(
                        f"signal {index} has {name}={getattr(record, name)!r} but the run is "
                        f"for {name}={expected!r}"
                    )

        run = add_run(
            self._session,
            strategy_name,
            config,
            symbol,
            timeframe,
            mode,
            started,
            status=status,
            finished_at=finished,
            error=error,
        )
        insert_signals(self._session, batch, self._chunk_rows, run_id=run.id, run_config=config)
        return run_record(run)

    def apply_retention(
        self, policy: RetentionPolicy, now: datetime | None = None
    ) -> RetentionReport:
        """Delete the analysis results older than the policy keeps (see ``RetentionPolicy``).

        Two bulk DELETEs: the signals of backtest runs started before the cutoff (and, if
        the policy says so, signals without a run whose bar time is before it), then those
        runs. Live and paper runs and their signals are never touched, nor is a running
        backtest; a backtest run that trades refer to keeps its row (trades are immutable).
        """
        if not isinstance(policy, RetentionPolicy):
            raise TypeError(f"expected a RetentionPolicy, got {type(policy).__name__}")
        cutoff = utc_datetime(now or datetime.now(UTC), "now") - timedelta(
            days=policy.keep_analysis_days
        )
        expired = (
            select(RUNS.c.id)
            .where(RUNS.c.mode == "backtest")
            .where(RUNS.c.status != "running")
            .where(RUNS.c.started_at < cutoff)
        )
        doomed: ColumnElement[bool] = SIGNALS.c.run_id.in_(expired)
        if policy.include_unattached_signals:
            doomed = or_(doomed, SIGNALS.c.run_id.is_(None) & (SIGNALS.c.timestamp < cutoff))
        signals = self._session.execute(delete(SIGNALS).where(doomed))
        traded = exists().where(TRADES.c.run_id == RUNS.c.id)
        runs = self._session.execute(delete(RUNS).where(RUNS.c.id.in_(expired)).where(~traded))
        return RetentionReport(
            deleted_signals=int(signals.rowcount),  # type: ignore[attr-defined]
            deleted_runs=int(runs.rowcount),  # type: ignore[attr-defined]
            cutoff=cutoff,
        )
