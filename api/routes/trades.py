"""POST /api/v1/trades: one trade or a batch of up to 10,000, recorded whole or not at all
(write scope).

Every trade is checked field by field first; a batch with any invalid trade is refused whole
(422) with every problem listed (index, field, reason). A trade id repeated in the batch or
already stored in the account is refused by name (409), as is a trade older than the account's
last stored trade of its symbol. An accepted batch goes through the TradeTracker (market
context, labels, realised PnL) in one transaction, committed before the answer (201).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import Writer, not_found
from api.models.trades import MAX_BATCH, StoredTrade, TradeIn, TradesCreated
from api.problems import FieldError, Problem, field_errors
from api.routes.deps import Trades, problems
from database.errors import DuplicateTradeError
from database.records import TradeRecord
from services.tokens import Grant
from tracking.tracker import OutOfOrderTradeError

router = APIRouter(prefix="/api/v1", tags=["trades"])
_BATCH = TypeAdapter(list[TradeIn])
SOURCE = "api"

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


async def _payload(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Problem(415, f"send the trades as application/json (got {kind or 'no type'!r})")
    try:
        return orjson.loads(await _body(request))
    except orjson.JSONDecodeError as exc:
        reason = f"not JSON: {exc}"
        raise Problem(422, reason, [FieldError(field="body", reason=reason)]) from None


Payload = Annotated[Any, Depends(_payload)]


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
async def post_trades(caller: Writer, trades: Trades, payload: Payload) -> TradesCreated:
    """Record one trade (an object) or a batch (a list), all or nothing."""
    records = _records(payload, caller)
    try:
        outcome = await run_in_threadpool(trades.record, records)
    except DuplicateTradeError as exc:
        raise _duplicates(records, set(exc.trade_ids), stored=True) from None
    except OutOfOrderTradeError as exc:
        raise Problem(409, str(exc), title="Trade out of order") from None
    stored = [
        StoredTrade(
            trade_id=r.trade_id, pnl=r.pnl, cumulative_pnl=r.cumulative_pnl, labels=list(r.labels)
        )
        for r in outcome.stored
    ]
    return TradesCreated(account_id=caller.account_id, stored=len(stored), trades=stored)


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
    others = sorted({t.account_id for t in trades if t.account_id not in (None, caller.account_id)})
    if others:
        raise not_found(others[0])
    records = [
        TradeRecord(**t.model_dump(exclude={"account_id", "labels"}),
                    account_id=caller.account_id, labels=tuple(t.labels), source=SOURCE)
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
