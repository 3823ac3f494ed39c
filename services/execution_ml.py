"""The decision dataset and the cost model of an account, as ``app.py dataset`` and
``app.py costmodel`` use them and the dashboard will (docs/dataset.md, docs/costmodel.md).

>>> service = ExecutionMLService(sessions, settings.data_dir)
>>> data = service.dataset_bytes("demo")                 # a Parquet file's bytes (a download)
>>> service.export("demo", Path("demo.parquet"))         # the same, written to a file
>>> outcome = service.train("demo")                      # fits, scores, stores the model
>>> service.expected_cost_bps("demo", "DEMO", "buy", 50.0)

The orders, fills and bars are :meth:`services.tca.TCAService.inputs`; the features need
history before the first decision (warm-up), so each symbol's bars are read again from
:data:`WARMUP_BARS` bars before the first one those inputs hold. The signals behind a paper
account's decisions are the stored signals of its deployments' runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy.orm import Session, sessionmaker

from analytics.costmodel import (
    MODEL_VERSION,
    TARGET,
    CostModelError,
    CostModelReport,
    ExecutionCostModel,
    evaluate_cost_model,
    train_cost_model,
)
from analytics.dataset import (
    FORMAT_VERSION,
    DatasetSettings,
    bar_features,
    decision_dataset,
    decision_features,
    last_closed,
    parquet_bytes,
    to_arrow,
    write_parquet,
)
from database.repositories.candles import CandleRepository
from database.repositories.signals import SignalRepository
from database.repositories.trading import TradingRepository
from market.timeframes import Timeframe
from services.tca import TCAInputs, TCAService
from trading.orders import OrderRequest

WARMUP_BARS = 500  # bars read before the first decision: the longest window's warm-up


@dataclass(frozen=True)
class DatasetExport:
    account: str
    path: Path | None
    rows: int
    rows_by_split: dict[str, int]
    embargoed: int
    left_out: dict[str, int]  # orders not in the dataset, by reason (TCAService's)
    columns: int


class ExecutionMLService:
    def __init__(self, sessions: sessionmaker[Session], data_dir: Path | None = None) -> None:
        self._sessions = sessions
        self._data_dir = Path(data_dir) if data_dir is not None else Path("data")

    # -- the dataset ------------------------------------------------------------------------
    def dataset(
        self, account: str, settings: DatasetSettings | None = None
    ) -> tuple[pd.DataFrame, TCAInputs]:
        """The account's decision dataset (one row per order) and the inputs it came from;
        UnknownAccountError when there is no such account or it has no order."""
        inputs = TCAService(self._sessions).inputs(account)
        candles = self._with_warmup(inputs.candles)
        signals = self._signals(account)
        frame = decision_dataset(inputs.orders, inputs.fills, candles, settings, signals)
        return frame, inputs

    def dataset_table(self, account: str, settings: DatasetSettings | None = None) -> pa.Table:
        """The dataset as an Arrow table with every column's definition in its metadata."""
        settings = settings or DatasetSettings()
        frame, inputs = self.dataset(account, settings)
        return to_arrow(frame, settings, _source(account, inputs))

    def dataset_bytes(self, account: str, settings: DatasetSettings | None = None) -> bytes:
        """The dataset as a Parquet file's bytes: what a dashboard download sends."""
        return parquet_bytes(self.dataset_table(account, settings))

    def export(
        self, account: str, path: Path, settings: DatasetSettings | None = None
    ) -> DatasetExport:
        """Write the dataset to ``path`` (Parquet, snappy) and say what is in it."""
        settings = settings or DatasetSettings()
        frame, inputs = self.dataset(account, settings)
        table = to_arrow(frame, settings, _source(account, inputs))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(table, path)
        return _summary(account, path, frame, inputs)

    # -- the cost model ---------------------------------------------------------------------
    def model_path(self, account: str) -> Path:
        """Where the account's cost model is stored: ``<data dir>/models/costmodel-<account>
        .npz`` (the account's name made file-safe, with a hash of it when that changed it)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", account)
        if safe != account:
            safe += "-" + hashlib.sha256(account.encode()).hexdigest()[:8]
        return self._data_dir / "models" / f"costmodel-{safe}.npz"

    def train(self, account: str) -> CostModelReport:
        """Fit the baseline and the learned model on the account's earlier decisions, score
        both on the later ones, store the model; the report names the file."""
        frame, _ = self.dataset(account)
        model, report = train_cost_model(frame)
        model.info.update(
            account=account,
            trained_at=pd.Timestamp.now(tz="UTC").isoformat(),
            rows=report.rows,
            scores={"model": asdict(report.model), "baseline": asdict(report.baseline)},
            versions={
                "stratlens_model": MODEL_VERSION,
                "scikit-learn": _sklearn_version(),
                "dataset": FORMAT_VERSION,
            },
        )
        path = self.model_path(account)
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(".tmp")
        staged.write_bytes(model.to_bytes())
        staged.replace(path)  # a reader sees the old model or the new one, never half a file
        return replace(report, info={"account": account, "path": str(path),
                                     "trained_at": model.info["trained_at"]})  # fmt: skip

    def model(self, account: str) -> ExecutionCostModel:
        """The account's stored cost model (CostModelError: none yet)."""
        path = self.model_path(account)
        if not path.exists():
            raise CostModelError(
                f"no cost model stored for account {account!r} ({path}): run "
                f"app.py costmodel train --account {account}"
            )
        return ExecutionCostModel.from_bytes(path.read_bytes())

    def evaluate(self, account: str) -> CostModelReport:
        """The stored model's scores on the account's dataset as it is now (the test rows:
        its later period)."""
        model = self.model(account)
        frame, _ = self.dataset(account)
        report = evaluate_cost_model(model, frame, model.info.get("target", TARGET))
        return replace(report, info={"account": account, "path": str(self.model_path(account)),
                                     "trained_at": model.info.get("trained_at")})  # fmt: skip

    def order_features(
        self, symbol: str, at: pd.Timestamp | None = None, settings: DatasetSettings | None = None
    ) -> dict[str, float]:
        """The features of an order placed now (or at ``at``) in ``symbol``, read from the
        bars closed by then, with ``avg_volume``: what ``expected_cost_bps`` takes."""
        settings = settings or DatasetSettings()
        with self._sessions() as session:
            repo = CandleRepository(session)
            stored = repo.timeframes(symbol)
            if not stored:
                raise CostModelError(f"no bars stored for {symbol!r}")
            finest = min(stored, key=lambda t: Timeframe.parse(t).delta)
            bars = repo.frame(symbol, finest, end=at, last=WARMUP_BARS)
        if bars.empty:
            raise CostModelError(f"no bars of {symbol!r} before {at}")
        bar_ns = Timeframe.parse(finest).delta.value
        when = bars.index[-1].value + bar_ns if at is None else pd.Timestamp(at).value
        computed = bar_features(bars, bar_ns, settings)
        p = last_closed(computed.open_ns, bar_ns, np.array([when], np.int64))
        got = decision_features(computed, p, np.array([when], np.int64), np.array([1.0]), settings)
        out = {k: float(v[0]) for k, v in got.items() if v.dtype.kind == "f"}
        out["avg_volume"] = float(computed.avg_volume[p[0]]) if p[0] >= 0 else float("nan")
        out["hour"] = float(when % 86_400_000_000_000 // 3_600_000_000_000)
        out["weekday"] = float((when // 86_400_000_000_000 + 3) % 7)
        return out

    def expected_cost_bps(
        self, account: str, symbol: str, side: str, quantity: float, at=None
    ) -> float:
        """The account's model's expected cost (bps) of an order of ``quantity`` now."""
        features = self.order_features(symbol, at)
        return self.model(account).expected_cost_bps(symbol, side, quantity, features)

    def estimator(self, account: str) -> Callable[[OrderRequest, datetime], float | None]:
        """The paper broker's ``expected_cost`` hook for ``account``'s stored model:
        ``PaperBroker(book, expected_cost=service.estimator("demo"))`` keeps each sized
        order's expected cost (bps) in ``order.extra["expected_cost_bps"]``. Each call reads
        the symbol's last bars (one query); None where the symbol has no bars."""
        model = self.model(account)

        def expected(request: OrderRequest, now: datetime) -> float | None:
            try:
                features = self.order_features(request.symbol, pd.Timestamp(now))
            except CostModelError:
                return None
            quantity = float(request.quantity or 0.0)
            return model.expected_cost_bps(request.symbol, request.side, quantity, features)

        return expected

    def _with_warmup(self, candles: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        with self._sessions() as session:
            repo = CandleRepository(session)
            for symbol, frame in candles.items():
                stored = repo.timeframes(symbol)
                if not len(frame) or not stored:
                    out[symbol] = frame
                    continue
                finest = min(stored, key=lambda t: Timeframe.parse(t).delta)
                bar = Timeframe.parse(finest).delta
                before = repo.frame(
                    symbol, finest, start=frame.index[0] - WARMUP_BARS * bar, end=frame.index[-1]
                )
                out[symbol] = before if len(before) >= len(frame) else frame
        return out

    def _signals(self, account: str) -> pd.DataFrame | None:
        """The signals of the account's deployments' current runs: strategy_id (the
        deployment's name), symbol, time, confidence and each numeric metadata value as
        ``signal_<key>``."""
        with self._sessions() as session:
            repo = TradingRepository(session)
            row = repo.account(account)
            if row is None or row.id is None:
                return None
            runs = {d.run_id: d.name for d in repo.deployments(account_id=row.id) if d.run_id}
            signals = SignalRepository(session)
            records = [(name, r) for run, name in runs.items() for r in signals.list(run_id=run)]
        if not records:
            return None
        table: dict[str, list] = {"strategy_id": [], "symbol": [], "time": [], "confidence": []}
        values: dict[str, list[float]] = {}
        for k, (name, r) in enumerate(records):
            table["strategy_id"].append(name)
            table["symbol"].append(r.symbol)
            table["time"].append(r.timestamp)
            table["confidence"].append(float(r.confidence))
            for key, value in (r.metadata or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values.setdefault(f"signal_{key}", [np.nan] * len(records))[k] = float(value)
        return pd.DataFrame(table | values)


def _sklearn_version() -> str:
    from importlib.metadata import version

    return version("scikit-learn")


def _source(account: str, inputs: TCAInputs) -> dict[str, object]:
    return {"account": account, "left_out": inputs.left_out}


def _summary(account: str, path: Path | None, frame: pd.DataFrame, inputs: TCAInputs):
    counts = frame["split"].value_counts()
    return DatasetExport(
        account=account,
        path=path,
        rows=len(frame),
        rows_by_split={k: int(counts.get(k, 0)) for k in ("train", "validation", "test")},
        embargoed=int(frame["embargo"].sum()),
        left_out=dict(inputs.left_out),
        columns=frame.shape[1],
    )


__all__ = ["WARMUP_BARS", "DatasetExport", "ExecutionMLService"]
