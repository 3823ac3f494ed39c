"""Columnar serialisation of bulk writes: the same text as a json.dumps / isoformat per row, and
the same values stored and read back on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from database.repositories import StrategyRepository
from database.repositories._columnar import float_texts, json_texts, utc_texts
from tests.database.builders import T0, signal

ODD = 'a "quoted", comma\nnew line \\ back\tslash é ✓ 100%s'


def _floats() -> list[float]:
    rng = np.random.default_rng(3)
    magnitudes = 10 ** rng.uniform(-12, 22, 20_000) * rng.choice([-1, 1], 20_000)
    special = [
        0.0,
        -0.0,
        1.0,
        1e-4,
        9.99e-5,
        1e16,
        1e-5,
        0.1,
        1 / 3,
        5e-324,
        1.7976931348623157e308,
    ]
    return [*magnitudes.tolist(), *rng.normal(100, 5, 5_000).tolist(), *special, math.nan,
            math.inf, -math.inf]  # fmt: skip


def test_float_texts_are_what_json_dumps_writes():
    values = _floats()
    assert float_texts(values) == [json.dumps(v) for v in values]


@pytest.mark.parametrize(
    "mappings",
    [
        [{"fast_sma": v, "slow_sma": -v, "atr": abs(v)} for v in _floats()],  # one key set
        [{"n": i, "flag": i % 2 == 0, "none": None, "text": f"{ODD}{i}"} for i in range(50)],
        [{}, {"a": 1.5}, {"a": 2.5, "b": [1, None, 2.5]}, {"b": {"x": ODD}}, {}],  # mixed keys
        [{1: 2.0, None: "x"}, {True: 1}, {1.5: 2}],  # keys json.dumps turns into text
        [{ODD: 1.0, "%s": "%d"}, {ODD: np.float64(2.5), "%s": 3}],  # odd keys, a float subclass
        [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": "1"}],  # equal in Python, not in JSON
    ],
    ids=["floats", "scalars", "mixed-keys", "non-text-keys", "odd-keys", "equal-not-same"],
)
def test_json_texts_are_what_json_dumps_writes(mappings):
    assert json_texts(mappings) == [json.dumps(dict(m)) for m in mappings]


def test_json_texts_refuse_what_json_dumps_refuses():
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_texts([{"a": 1}, {"a": object()}])
    assert json_texts([]) == []


def test_utc_texts_are_the_stored_wall_times():
    times = [datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC), T0, T0 + timedelta(microseconds=7)]
    assert utc_texts(times) == [
        t.replace(tzinfo=None).isoformat(" ", "microseconds") for t in times
    ]
    zoned = utc_texts(times, zone=True)
    assert [datetime.fromisoformat(t) for t in zoned] == times
    assert utc_texts([]) == []


def test_stored_json_and_times_read_back_as_before(session, database_backend):
    metadata = [
        {"fast_sma": 101.25, "slow_sma": 1e-05, "atr": 3.0},
        {"fast_sma": -0.0, "slow_sma": 1e16, "atr": 0.1},
        {"note": ODD, "nested": {"x": [1, None, 2.5]}, "n": 7, "ok": True},
        {},
    ]
    records = [
        signal(timestamp=T0 + timedelta(minutes=i, microseconds=i), metadata=m, strategy_config={})
        for i, m in enumerate(metadata)
    ]
    config = {"fast": 10, "slow": 30.0, "text": ODD}
    repo = StrategyRepository(session, chunk_rows=3)
    run = repo.save_run("sma_cross", config, "SP500", "1d", "backtest", records)

    back = repo.signals.list(run_id=run.id)
    assert [b.metadata for b in back] == metadata
    assert [b.timestamp for b in back] == [r.timestamp for r in records]
    assert {json.dumps(b.strategy_config) for b in back} == {json.dumps(config)}
    column = "signal_metadata" if database_backend == "sqlite" else "signal_metadata::text"
    stored = session.execute(
        text(f"SELECT {column} FROM strategy_signals WHERE run_id = :run ORDER BY id"),
        {"run": run.id},
    ).scalars()
    # the very text json.dumps gave (plain json on PostgreSQL too); no metadata: NULL
    assert list(stored) == [json.dumps(m) if m else None for m in metadata[:3]] + [None]
