"""StrategyRepository: the facade a strategy service uses (runs with their signals, retention)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select
from sqlalchemy.orm import Session

from database.records import (
    RUN_MODES,
    RUN_STATUSES,
    RetentionPolicy,
    RetentionReport,
    RunResultRecord,
    SignalBlock,
    SignalRecord,
    StrategyRunRecord,
    check_non_empty,
    utc_datetime,
)
from database.repositories._common import DEFAULT_CHUNK_ROWS, choices
from database.repositories._signal_io import metadata_keys, shared_config
from database.repositories.run_results import RESULTS, insert_result, read_result_row
from database.repositories.runs import (
    RUNS,
    StrategyRunRepository,
    add_run,
    check_finished_after_started,
    run_record,
)
from database.repositories.signal_blocks import delete_blocks, insert_block
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
        signals: Iterable[SignalRecord] | SignalBlock,
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        status: str = "finished",
        error: str | None = None,
        result: RunResultRecord | None = None,
    ) -> StrategyRunRecord:
        """Store a run and its signals in bulk; returns the run with its id.

        Every argument and signal is checked before anything is written (ValueError or
        TypeError naming the defect). Signals (records, or one :class:`SignalBlock` of
        columns) must be of this strategy, symbol and timeframe and carry no run id (they get
        the new run's); one without a config gets ``config``. A finished or failed run without
        ``finished_at`` finishes now. ``result``: the finished run's trades and equity, stored
        with it (``run_result`` reads them back).
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
        if result is not None and not isinstance(result, RunResultRecord):
            raise TypeError(f"result must be a RunResultRecord, got {type(result).__name__}")
        run_key = {"strategy_name": strategy_name, "symbol": symbol, "timeframe": timeframe}
        batch = _run_signals(signals, run_key)
        keys = metadata_keys(batch)
        # the config the signals share, once on the run when it is not the run's own
        common = shared_config(batch)
        signal_config = None
        if common is not None and json.dumps(dict(common)) != json.dumps(dict(config)):
            signal_config = dict(common)

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
            signal_metadata_keys=None if keys is None else list(keys),
            signal_config=signal_config,
        )
        if (
            isinstance(batch, SignalBlock)
            and len(batch)
            and (keys is not None or not batch.metadata)
        ):
            insert_block(self._session, run.id, batch, keys or ())
        else:
            insert_signals(
                self._session,
                batch,
                self._chunk_rows,
                run_id=run.id,
                run_config=config if signal_config is None else signal_config,
                typed_keys=keys,
            )
        if result is not None:
            insert_result(self._session, run.id, result)
        return run_record(run)

    def run_result(self, run_id: int) -> RunResultRecord | None:
        """The trades and equity stored with run ``run_id`` (None: none stored)."""
        row = self._session.execute(select(RESULTS).where(RESULTS.c.run_id == run_id)).first()
        return None if row is None else read_result_row(row._mapping)

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
        in_blocks = delete_blocks(self._session, expired)
        traded = exists().where(TRADES.c.run_id == RUNS.c.id)
        runs = self._session.execute(delete(RUNS).where(RUNS.c.id.in_(expired)).where(~traded))
        return RetentionReport(
            deleted_signals=int(signals.rowcount) + in_blocks,  # type: ignore[attr-defined]
            deleted_runs=int(runs.rowcount),  # type: ignore[attr-defined]
            cutoff=cutoff,
        )


def _run_signals(
    signals: Iterable[SignalRecord] | SignalBlock, run_key: Mapping[str, str]
) -> list[SignalRecord] | SignalBlock:
    """The new run's signals, checked: of its strategy, symbol and timeframe, without a run."""
    if isinstance(signals, SignalBlock):
        for name, expected in run_key.items():
            if getattr(signals, name) != expected:
                raise ValueError(
                    f"the signals have {name}={getattr(signals, name)!r} but the run is for "
                    f"{name}={expected!r}"
                )
        return signals
    batch = new_signals(signals)
    for name, expected in run_key.items():
        values = list(map(attrgetter(name), batch))
        if values.count(expected) != len(values):
            index = next(i for i, value in enumerate(values) if value != expected)
            raise ValueError(
                f"signal {index} has {name}={values[index]!r} but the run is for "
                f"{name}={expected!r}"
            )
    runs = list(map(attrgetter("run_id"), batch))
    if runs.count(None) != len(runs):
        index = next(i for i, run in enumerate(runs) if run is not None)
        raise ValueError(
            f"signal {index} already names run {runs[index]}; save_run assigns the new run's id"
        )
    return batch
