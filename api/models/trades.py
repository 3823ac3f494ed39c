"""A trade in (POST /api/v1/trades) and out (the trade list).

A posted trade is checked field by field: every problem of a batch is listed at once, each
naming the trade's index, the field and the reason (docs/api.md#posting-trades).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from api.models.common import PRINTABLE, Number

MAX_BATCH = 10_000
EPOCH_MS_FLOOR = 100_000_000_000  # 1973-03-03 in ms: an integer below is epoch seconds (refused)
# what a nanosecond timestamp (pandas, the tracker's labels) holds: a time outside is refused
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)


def _no_edge_blanks(value: Any) -> Any:
    if isinstance(value, str) and value != value.strip():
        raise ValueError("must not start or end with white space")
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _epoch_ms(value: Any) -> Any:
    """An integer (or digits) as epoch milliseconds; an ISO 8601 text is left to pydantic."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < EPOCH_MS_FLOOR:
            raise ValueError(
                f"{value} is before 1973 as epoch milliseconds (epoch seconds? multiply by 1000)"
            )
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, ValueError, OSError):
            raise ValueError(f"{value} is past the year 9999 as epoch milliseconds") from None
    return value


def _storable(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"{value.isoformat()} is outside {EARLIEST.date()} to {LATEST.date()} (the times a"
            " trade can hold)"
        )
    return value


def _text(most: int) -> Any:
    return Annotated[
        str,
        StringConstraints(min_length=1, max_length=most, pattern=PRINTABLE),
        BeforeValidator(_no_edge_blanks),
    ]


Id = _text(128)  # trade, account and strategy ids: what a stored trade holds
Symbol = _text(64)
OrderId = _text(160)
Side = Annotated[Literal["buy", "sell"], BeforeValidator(_lower)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE)]
ExecutionTime = Annotated[AwareDatetime, BeforeValidator(_epoch_ms), AfterValidator(_storable)]


class TradeIn(BaseModel):
    """One executed trade (a fill) as a bot reports it. Unknown fields are refused by name."""

    model_config = ConfigDict(extra="forbid")

    trade_id: Id = Field(description="unique within the account")
    account_id: Id | None = Field(
        None, description="the token's account when left out; another account: 404"
    )
    strategy_id: Id = "manual"
    symbol: Symbol
    side: Side = Field(description="buy or sell (any case)")
    price: float = Field(gt=0, allow_inf_nan=False, description="quote currency")
    volume: float = Field(gt=0, allow_inf_nan=False)
    execution_time: ExecutionTime = Field(
        description="ISO 8601 with a zone (`2024-01-02T10:00:00Z`) or epoch milliseconds"
    )
    commission: float = Field(0.0, allow_inf_nan=False, description="quote currency; < 0: rebate")
    labels: list[Label] = Field(default_factory=list, max_length=32)
    order_id: OrderId | None = None


class StoredTrade(BaseModel):
    trade_id: str
    pnl: Number = Field(description="realised by this fill (FIFO), net of its commission")
    cumulative_pnl: Number = Field(description="the account's, after this fill")
    labels: list[str] = Field(description="yours and the tracker's (docs/labels.md)")


class TradesCreated(BaseModel):
    account_id: str
    stored: int
    trades: list[StoredTrade] = Field(description="in the order they were recorded (by time)")


class TradeOut(BaseModel):
    id: int = Field(description="the stored row id: the trade list's cursor")
    trade_id: str
    account_id: str
    strategy_id: str
    symbol: str
    side: Literal["buy", "sell"]
    price: float
    volume: float
    commission: float
    execution_time: datetime
    pnl: Number
    cumulative_pnl: Number
    labels: list[str]
    market_context: dict[str, Any]
    source: str | None
    order_id: str | None


class TradesPage(BaseModel):
    account_id: str
    trades: list[TradeOut]
    next_cursor: int | None = Field(
        description="pass as ?cursor= for the next page; null on the last page"
    )
