"""StrategyRunRepository: create a strategy run, finish or fail it once, read runs back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from database.errors import RunNotFoundError
from database.models import StrategyRun
from database.records import RUN_MODES, StrategyRunRecord, check_choice, utc_datetime
from database.repositories._common import ordered, where_matching

RUNS: Table = StrategyRun.__table__  # type: ignore[assignment]


class StrategyRunRepository:
    """Strategy runs: created ``running``, then finished or failed exactly once."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def create(
        self,
        strategy_name: str,
        config: dict[str, Any],
        symbol: str,
        timeframe: str,
        mode: str,
        *,
        started_at: datetime | None = None,
    ) -> StrategyRunRecord:
        """Record a run that starts now (or at ``started_at``); returns it with its id."""
        check_choice("mode", mode, RUN_MODES)
        started = utc_datetime(started_at or datetime.now(UTC), "started_at")
        run = add_run(self._session, strategy_name, config, symbol, timeframe, mode, started)
        return run_record(run)

    def finish(
        self,
        run_id: int,
        status: str = "finished",
        error: str | None = None,
        finished_at: datetime | None = None,
    ) -> StrategyRunRecord:
        """Close a running run as ``finished`` or ``failed`` (with its error text)."""
        if status not in ("finished", "failed"):
            raise ValueError(f"status={status!r} is invalid: expected finished or failed")
        run = self._session.get(StrategyRun, run_id)
        if run is None:
            raise RunNotFoundError(f"no strategy run with id {run_id}")
        if run.status != "running":
            raise ValueError(f"strategy run {run_id} is already {run.status}")
        finished = utc_datetime(finished_at or datetime.now(UTC), "finished_at")
        check_finished_after_started(run.started_at, finished)
        run.status, run.error, run.finished_at = status, error, finished
        self._session.flush()
        return run_record(run)

    def get(self, run_id: int) -> StrategyRunRecord | None:
        run = self._session.get(StrategyRun, run_id)
        return None if run is None else run_record(run)

    def list(
        self,
        *,
        strategy_name: str | None = None,
        symbol: str | None = None,
        mode: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[StrategyRunRecord]:
        """Runs matching every given filter, newest first."""
        statement = where_matching(
            select(StrategyRun),
            RUNS,
            {"strategy_name": strategy_name, "symbol": symbol, "mode": mode, "status": status},
        )
        statement = ordered(statement, (RUNS.c.started_at.desc(), RUNS.c.id.desc()), limit)
        return [run_record(run) for run in self._session.scalars(statement)]


def add_run(
    session: Session,
    strategy_name: str,
    config: Mapping[str, Any],
    symbol: str,
    timeframe: str,
    mode: str,
    started_at: datetime,
    *,
    status: str = "running",
    finished_at: datetime | None = None,
    error: str | None = None,
    signal_metadata_keys: list[str] | None = None,
    signal_config: dict[str, Any] | None = None,
) -> StrategyRun:
    """Insert one checked run (its config copied to a dict), flushed so that it has its id."""
    run = StrategyRun(
        strategy_name=strategy_name,
        config=dict(config),
        symbol=symbol,
        timeframe=timeframe,
        mode=mode,
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        error=error,
        signal_metadata_keys=signal_metadata_keys,
        signal_config=signal_config,
    )
    session.add(run)
    session.flush()
    return run


def check_finished_after_started(started: datetime, finished: datetime) -> None:
    if finished < started:
        raise ValueError(
            f"finished_at={finished.isoformat()} is before started_at={started.isoformat()}"
        )


def run_record(run: StrategyRun) -> StrategyRunRecord:
    return StrategyRunRecord(
        id=run.id,
        strategy_name=run.strategy_name,
        config=run.config,
        symbol=run.symbol,
        timeframe=run.timeframe,
        mode=run.mode,  # type: ignore[arg-type]
        status=run.status,  # type: ignore[arg-type]
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
    )
