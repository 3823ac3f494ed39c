"""POST /api/v1/trades: one trade or a batch of up to 10,000, recorded whole or not at all
(write scope).

Every trade is checked field by field first; a batch with any invalid trade is refused whole
(422) with every problem listed (index, field, reason). A trade id repeated in the batch or
already stored in the account is refused by name (409), as is a trade older than the account's
last stored trade of its symbol. An accepted batch goes through the TradeTracker (market
context, labels, realised PnL) in one transaction, committed before the answer (201).

The body is validated as it came (pydantic's JSON validation of the raw bytes, ~2x faster
than building Python objects first and validating those); any refusal is made again by the
general path (parsed, then validated as objects), so that every problem reads as it always
did. The ids already stored are looked up when the tracker refuses one (to name them all),
not before every batch; the answer is encoded directly (orjson), not through its model.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.auth import Writer, not_found
from api.models.trades import MAX_BATCH, TradeIn, TradesCreated
from api.problems import FieldError, Problem, field_errors
from api.routes.deps import problems
from database.errors import DuplicateTradeError
from database.records import TradeRecord
from database.repositories.trades import TradeRepository
from services.tokens import Grant
from tracking.tracker import OutOfOrderTradeError, Recorded, TradeTracker

router = APIRouter(prefix="/api/v1", tags=["trades"])
_BATCH = TypeAdapter(list[TradeIn])
SOURCE = "api"
_OPENING = re.compile(rb"[ \t\r\n]*([\[{])")  # JSON's white space, then a list or an object

BODY_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/TradeIn"},
        {
            "type": "array",
            "items": {"$ref": "#/components/schemas/TradeIn"},
            "minItems": 1,
            "maxItems": MAX_BATCH,
        },
    ]
}


async def _body(request: Request) -> bytes:
    """The request body, refused (413) once past the app's limit without reading the rest."""
    limit: int = request.app.state.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is over the limit of {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, f"send the trades as application/json (got {kind or 'no type'!r})")
    return await _body(request)


def _parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = f"not JSON: {exc}"
        raise Problem(422, reason, [FieldError(field="body", reason=reason)]) from None


Body = Annotated[bytes, Depends(_json_body)]


@router.post(
    "/trades",
    status_code=201,
    response_model=TradesCreated,
    responses=problems(401, 403, 404, 409, 413, 415, 422, 500),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BODY_SCHEMA}},
            "description": f"one trade, or a list of 1 to {MAX_BATCH:,}",
        }
    },
)
async def post_trades(request: Request, caller: Writer, body: Body) -> Response:
    """Record one trade (an object) or a batch (a list), all or nothing."""
    trades = _valid_as_sent(body)
    if trades is None:  # refused: the general path names every problem
        records = _records(_parsed(body), caller)
    else:
        records = _as_records(trades, caller)
    tracking = request.app.state.tracking
    try:
        outcome = await run_in_threadpool(record, tracking.tracker, tracking.sessions, records)
    except DuplicateTradeError as exc:
        raise _duplicates(records, set(exc.trade_ids), stored=True) from None
    except OutOfOrderTradeError as exc:
        raise Problem(409, str(exc), title="Trade out of order") from None
    document = {
        "account_id": caller.account_id,
        "stored": len(outcome.stored),
        "trades": [
            {"trade_id": r.trade_id, "pnl": _number(r.pnl),
             "cumulative_pnl": _number(r.cumulative_pnl), "labels": r.labels}
            for r in outcome.stored
        ],
    }  # fmt: skip
    return Response(orjson.dumps(document), status_code=201, media_type="application/json")


def _number(value: float | None) -> float | None:
    """As the model's Number: a float, None for NaN and infinities."""
    return None if value is None or not math.isfinite(value) else float(value)


def _valid_as_sent(body: bytes) -> list[TradeIn] | None:
    """The body's trades validated from its bytes; None when anything is amiss (not a list
    or an object, an empty or too long list, any invalid field)."""
    opening = _OPENING.match(body)
    try:
        if opening is None:
            return None
        if opening.group(1) == b"{":
            return [TradeIn.model_validate_json(body)]
        trades = _BATCH.validate_json(body)
    except ValidationError:
        return None
    return trades if 0 < len(trades) <= MAX_BATCH else None


def record(
    tracker: TradeTracker, sessions: sessionmaker[Session], records: Sequence[TradeRecord]
) -> Recorded:
    """Record the batch through the tracker in one transaction, committed on return. Ids the
    account already holds raise DuplicateTradeError naming all of them (the tracker itself
    stops at the first, looked up then); nothing is written on any refusal."""
    try:
        return tracker.record_many(records)
    except DuplicateTradeError as exc:
        if exc.account is None or "within the batch" in str(exc):
            raise
        ids = [r.trade_id for r in records if r.account_id == exc.account]
        with sessions() as session:
            stored = TradeRepository(session).stored_ids(exc.account, ids)
        if not stored:
            raise
        raise DuplicateTradeError(stored, where="already stored", account=exc.account) from None


def _records(payload: Any, caller: Grant) -> list[TradeRecord]:
    """The payload's trades as records of the caller's account, or the problem that refuses
    them all."""
    single = isinstance(payload, dict)
    items = [payload] if single else payload
    if not isinstance(items, list) or not items:
        reason = "expected a trade (an object) or a non-empty list of trades"
        raise Problem(422, reason, [FieldError(field="body", reason=reason)])
    if len(items) > MAX_BATCH:
        reason = f"a batch holds at most {MAX_BATCH:,} trades, got {len(items):,}"
        raise Problem(422, reason, [FieldError(field="body", reason=reason)])
    try:
        trades = _BATCH.validate_python(items)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        if single:
            errors = [e.model_copy(update={"index": None}) for e in errors]
        bad = len({e.index for e in errors})
        raise Problem(
            422,
            f"{len(errors)} problem(s) in {bad} of {len(items)} trade(s); nothing was stored",
            errors,
            title="Invalid trades",
        ) from None
    return _as_records(trades, caller)


def _as_records(trades: list[TradeIn], caller: Grant) -> list[TradeRecord]:
    """Valid trades as records of the caller's account; 404 for a trade naming another
    account, 409 for an id repeated in the batch."""
    account = caller.account_id
    others = sorted({t.account_id for t in trades if t.account_id not in (None, account)})
    if others:
        raise not_found(others[0])
    records = [
        TradeRecord(
            trade_id=t.trade_id, account_id=account, strategy_id=t.strategy_id,
            symbol=t.symbol, side=t.side, price=t.price, volume=t.volume,
            execution_time=t.execution_time, commission=t.commission,
            labels=tuple(t.labels), source=SOURCE, order_id=t.order_id,
        )
        for t in trades
    ]  # fmt: skip
    counts = Counter(r.trade_id for r in records)
    repeated = {trade_id for trade_id, n in counts.items() if n > 1}
    if repeated:
        raise _duplicates(records, repeated, stored=False)
    return records


def _duplicates(records: list[TradeRecord], ids: set[str], *, stored: bool) -> Problem:
    """409 naming ``ids``: each trade carrying one when they are ``stored`` already, else each
    repeat after the first."""
    why = "is stored already in the account" if stored else "repeats an earlier trade's id"
    seen: set[str] = set()
    errors = []
    for index, record in enumerate(records):
        if record.trade_id in ids and (stored or record.trade_id in seen):
            reason = f"{record.trade_id!r} {why}"
            errors.append(FieldError(index=index, field="trade_id", reason=reason))
        seen.add(record.trade_id)
    shown = ", ".join(repr(i) for i in sorted(ids)[:10])
    more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    return Problem(
        409,
        f"duplicate trade id(s) {shown}{more}: nothing was stored",
        errors,
        title="Duplicate trade ids",
        kind="duplicate-trade",
    )


__all__ = ["router"]
