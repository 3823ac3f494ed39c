"""The SQLite multi-row INSERT's VALUES (_signal_io._sqlite_rows: the shared values' ?NNN,
then plain ?) bind what the same rows with every parameter numbered bind."""

from __future__ import annotations

import sqlite3

import pytest

from database.repositories._signal_io import _sqlite_rows


def numbered(shared: int, varying: int, rows: int) -> str:
    head = [f"?{k}" for k in range(1, shared + 1)]
    return ", ".join(
        "("
        + ", ".join([*head, *(f"?{shared + 1 + varying * r + k}" for k in range(varying))])
        + ")"
        for r in range(rows)
    )


@pytest.mark.parametrize(("shared", "varying", "rows"), [(3, 13, 500), (0, 16, 7), (2, 1, 3)])
def test_plain_parameters_bind_as_the_numbered_ones(shared, varying, rows):
    names = ", ".join(f"c{k}" for k in range(shared + varying))
    parameters = tuple(f"v{k}" for k in range(shared + varying * rows))
    stored = []
    for values in (_sqlite_rows(shared, varying, rows), numbered(shared, varying, rows)):
        connection = sqlite3.connect(":memory:")
        connection.execute(f"CREATE TABLE t ({names})")
        connection.execute(f"INSERT INTO t ({names}) VALUES {values}", parameters)
        stored.append(connection.execute("SELECT * FROM t ORDER BY rowid").fetchall())
        connection.close()
    assert stored[0] == stored[1]
    assert len(stored[0]) == rows
    assert stored[0][-1][-1] == parameters[-1]
