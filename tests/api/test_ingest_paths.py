"""POST /api/v1/trades validates the body as it came (pydantic's JSON validation of the
bytes) and falls back to the general path (parsed, then validated as objects) on any
refusal: the records of both paths are equal for every spelling a client may send, and
whatever the fast path refuses the general path refuses too (its problems are the answer)."""

from __future__ import annotations

import json

import orjson
import pytest

from api.routes.trades import _as_records, _records, _valid_as_sent
from services.tokens import Grant

CALLER = Grant("000000000000", "acc1", "write")
BASE = {"trade_id": "t1", "symbol": "BTC/USDT", "side": "buy", "price": 100.0, "volume": 1.5}

VALID = [
    BASE | {"execution_time": "2024-05-01T10:00:00Z"},
    BASE | {"execution_time": "2024-05-01T12:00:00+02:00", "side": "SELL"},
    BASE | {"execution_time": 1714557600000, "commission": -0.25, "labels": ["a", "b"]},
    BASE | {"execution_time": "1714557600000", "price": 3, "volume": "2.5"},
    BASE
    | {
        "execution_time": "2024-05-01T10:00:00.123456-05:30",
        "order_id": "o-1",
        "strategy_id": "s1",
        "account_id": "acc1",
    },
    BASE | {"execution_time": "2024-05-01 10:00:00Z", "commission": 0},
]

INVALID = [
    b"",
    b"null",
    b"[]",
    b"3",
    b'"x"',
    b"[1, 2]",
    b'{"trade_id": "t1"}',
    json.dumps(BASE | {"execution_time": "2024-05-01T10:00:00"}).encode(),  # no zone
    json.dumps(BASE | {"execution_time": 1714557600}).encode(),  # epoch seconds
    json.dumps(BASE | {"execution_time": 1714557600000, "price": 0}).encode(),
    json.dumps(BASE | {"execution_time": 1714557600000, "side": "hold"}).encode(),
    json.dumps(BASE | {"execution_time": 1714557600000, "extra": 1}).encode(),
    json.dumps(BASE | {"execution_time": 1714557600000, "symbol": " BTC"}).encode(),
    b'{"trade_id": "t1", "price": NaN}',
    b"["
    + b",".join([json.dumps(BASE | {"execution_time": 1714557600000}).encode()] * 10_001)
    + b"]",
]


def _general(body: bytes) -> object:
    return _records(orjson.loads(body), CALLER)


@pytest.mark.parametrize("trade", VALID)
def test_the_fast_path_makes_the_general_paths_records(trade):
    for body in (json.dumps(trade).encode(), json.dumps([trade, trade | {"trade_id": "t2"}])
                 .encode(), b" \n" + json.dumps([trade]).encode()):  # fmt: skip
        fast = _valid_as_sent(body)
        assert fast is not None, body
        assert _as_records(fast, CALLER) == _general(body)


@pytest.mark.parametrize("body", INVALID)
def test_what_the_fast_path_refuses_the_general_path_refuses(body):
    from api.problems import Problem

    assert _valid_as_sent(body) is None
    with pytest.raises((Problem, orjson.JSONDecodeError)):
        _general(body)
