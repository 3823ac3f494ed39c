"""PostgreSQL statement texts of the paper-trading batch (database/repositories/
trading_batch.py): rows as ONE JSON parameter read by ``json_to_recordset``, and statements
prepared once per connection.

>>> rows_json([{"id": 1, "cash": 5.0}])                 # '[{"id":1,"cash":5.0}]'
>>> recordset((("id", "BIGINT"),))                       # 'json_to_recordset(%s) AS v (id BIGINT)'
>>> prepared(connection.info, ["BEGIN", statement], specs)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any


def rows_json(rows: list[dict[str, Any]]) -> str:
    """The rows as a JSON array of objects; a float that is not finite as PostgreSQL's text
    of it ('NaN', 'Infinity', '-Infinity': json_to_recordset reads a string through the
    column type's input, as the VALUES statements stored it)."""
    try:
        return json.dumps(rows, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(
            [{k: pg_float_text(v) for k, v in row.items()} for row in rows],
            separators=(",", ":"),
        )


def pg_float_text(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def recordset(columns: Sequence[tuple[str, str]], alias: str = "v") -> str:
    """``json_to_recordset(%s) AS v (column type, ...)``: a JSON parameter's rows."""
    listed = ", ".join(f"{n} {kind}" for n, kind in columns)
    return f"json_to_recordset(%s) AS {alias} ({listed})".replace("AS  (", "AS (")


PREPARED = "stratlens_prepared"  # a connection's info: the statements it prepared


Spec = Callable[[str], "tuple[str, tuple[str, ...]] | None"]


def prepared(info: dict[Any, Any], parts: list[str], specs: Spec) -> list[str]:
    """``parts`` (statements whose parameters are ``%s``) as ``EXECUTE`` of statements
    prepared on this connection (``info``: its SQLAlchemy info), those ``specs`` names
    (name, parameter types; None: left as it is) each ``PREPARE``d at its first use: the
    server parses, analyses and plans them once instead of every time (the live runner's
    candle: ~0.5 ms of its time). The parameters stay the same ``%s``, in order. A
    connection whose prepared statements are not known (its first text, or one after a
    failed text: the caller drops :data:`PREPARED` from ``info``) drops any first
    (``DEALLOCATE ALL``)."""
    known = info.get(PREPARED)
    out: list[str] = []
    if known is None:
        known = set()
        out.append("DEALLOCATE ALL")
    for part in parts:
        spec = specs(part)
        if spec is None:
            out.append(part)
            continue
        name, types = spec
        if name not in known:
            numbered = part.split("%s")
            text = numbered[0] + "".join(f"${k}{rest}" for k, rest in enumerate(numbered[1:], 1))
            out.append(f"PREPARE {name} ({', '.join(types)}) AS {text}")
            known.add(name)
        out.append(f"EXECUTE {name} ({', '.join(['%s'] * len(types))})")
    info[PREPARED] = known
    return out


__all__ = ["PREPARED", "pg_float_text", "prepared", "recordset", "rows_json"]
