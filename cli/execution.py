"""Execution ML: an account's decisions as a dataset, and the cost model learned from them.

app.py dataset export --account demo --out demo.parquet [--horizon 20] [--json]
app.py costmodel train --account demo [--json]
app.py costmodel evaluate --account demo [--json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import bounded

if TYPE_CHECKING:
    from config.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    dataset = commands.add_parser("dataset", help="ML datasets of an account's decisions")
    sub = dataset.add_subparsers(dest="dataset_command", required=True)
    export = sub.add_parser(
        "export", help="one row per decision: features, outcomes, split (docs/dataset.md)"
    )
    export.add_argument("--account", required=True)
    export.add_argument("--out", required=True, type=Path, help="the Parquet file to write")
    export.add_argument("--horizon", type=bounded(int, 1, 100_000), default=20,
                        help="bars of the vertical barrier and forward return (20)")  # fmt: skip
    export.add_argument("--profit-atr", type=bounded(float, 1e-6, 1e6), default=2.0,
                        help="profit barrier in ATRs (2)")  # fmt: skip
    export.add_argument("--stop-atr", type=bounded(float, 1e-6, 1e6), default=1.0,
                        help="stop barrier in ATRs (1)")  # fmt: skip
    export.add_argument("--split", type=_split, default=(0.6, 0.2, 0.2),
                        help="train,validation,test shares, time order (0.6,0.2,0.2)")  # fmt: skip
    export.add_argument("--json", action="store_true")
    export.set_defaults(run=_export)

    model = commands.add_parser("costmodel", help="the execution cost model (docs/costmodel.md)")
    msub = model.add_subparsers(dest="costmodel_command", required=True)
    train = msub.add_parser("train", help="fit the baseline and the learned model, store them")
    train.add_argument("--account", required=True)
    train.add_argument("--json", action="store_true")
    train.set_defaults(run=_train)
    evaluate = msub.add_parser(
        "evaluate", help="the stored model's scores on the account's held-out later period"
    )
    evaluate.add_argument("--account", required=True)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_evaluate)


def _split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        wanted = "expected three numbers like 0.6,0.2,0.2"
        raise argparse.ArgumentTypeError(f"{text!r}: {wanted}") from None
    if len(parts) != 3 or min(parts) < 0 or abs(sum(parts) - 1) > 1e-9:
        raise argparse.ArgumentTypeError(f"{text!r}: expected three shares >= 0 summing to 1")
    return parts  # type: ignore[return-value]


def _service(settings: Settings):
    from database.session import make_session_factory
    from services.database_setup import prepare_database
    from services.execution_ml import ExecutionMLService

    engine = prepare_database(settings)
    return engine, ExecutionMLService(make_session_factory(engine), settings.data_dir)


def _fail(command: str, exc: Exception) -> int:
    print(f"{command}: {exc}", file=sys.stderr)
    return 2


def _print_json(document: Any) -> None:
    from cli.json_output import dumps

    print(dumps(document))


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.dataset import DatasetSettings
    from analytics.tca import TCAInputError
    from services.tracking import UnknownAccountError

    options = DatasetSettings(
        horizon_bars=args.horizon, profit_atr=args.profit_atr, stop_atr=args.stop_atr,
        split=args.split,
    )  # fmt: skip
    engine, service = _service(settings)
    try:
        done = service.export(args.account, args.out, options)
    except (UnknownAccountError, TCAInputError, OSError) as exc:
        return _fail("dataset export", exc)
    finally:
        engine.dispose()
    if args.json:
        _print_json(
            {
                "account": done.account, "path": str(done.path), "rows": done.rows,
                "columns": done.columns, "rows_by_split": done.rows_by_split,
                "embargoed": done.embargoed, "left_out": done.left_out,
            }
        )  # fmt: skip
        return 0
    splits = ", ".join(f"{k} {v}" for k, v in done.rows_by_split.items())
    print(f"{done.path}: {done.rows} decisions x {done.columns} columns ({splits};"
          f" {done.embargoed} embargoed) - definitions in the file's metadata")  # fmt: skip
    for reason, count in done.left_out.items():
        print(f"  left out: {count} {reason}")
    return 0


def _train(args: argparse.Namespace, settings: Settings) -> int:
    return _model(args, settings, train=True)


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    return _model(args, settings, train=False)


def _model(args: argparse.Namespace, settings: Settings, *, train: bool) -> int:
    from analytics.costmodel import CostModelError
    from analytics.tca import TCAInputError
    from services.tracking import UnknownAccountError

    command = "costmodel train" if train else "costmodel evaluate"
    engine, service = _service(settings)
    try:
        outcome = service.train(args.account) if train else service.evaluate(args.account)
    except (UnknownAccountError, TCAInputError, CostModelError, OSError) as exc:
        return _fail(command, exc)
    finally:
        engine.dispose()
    if args.json:
        _print_json(outcome.as_dict())
        return 0
    print(outcome.summary())
    return 0
