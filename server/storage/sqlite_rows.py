"""Many rows in few statements, for the group commit on the writer thread.

Python's `sqlite3` gives the GIL back around every `sqlite3_step`, and `executemany` steps once
per row: a batch of 500 gifts wrote ~4,500 rows, so the writer thread gave the GIL back and
waited to get it back ~4,500 times while the event loop was busy, each time a handoff between
the two threads. A multi-row `VALUES` list is one step per statement instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

PARAMS_PER_STATEMENT = 4000  # SQLite allows 32,766 host parameters (3.32+); statements stay small


def _chunks(rows: Sequence[Sequence[Any]]) -> list[Sequence[Sequence[Any]]]:
    per = max(1, PARAMS_PER_STATEMENT // len(rows[0]))
    return [rows[start : start + per] for start in range(0, len(rows), per)]


def _values(width: int, count: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return ",".join([one] * count)


def insert_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """`{head} VALUES (...), (...) {tail}` for every row (`tail`: an ON CONFLICT clause)."""
    if not rows:
        return
    width = len(rows[0])
    for chunk in _chunks(rows):
        sql = f"{head} VALUES {_values(width, len(chunk))} {tail}"
        conn.execute(sql, [value for row in chunk for value in row])


def update_rows(conn: sqlite3.Connection, update: str, rows: Sequence[Sequence[Any]]) -> int:
    """`update` with `FROM (VALUES ...) AS v` for every row; the rows it changed.

    `update` names the values' columns `v.column1`, `v.column2`... (SQLite's names for them),
    e.g. `UPDATE t SET x = v.column2 FROM {values} WHERE t.id = v.column1`."""
    changed = 0
    if not rows:
        return changed
    width = len(rows[0])
    for chunk in _chunks(rows):
        sql = update.format(values=f"(VALUES {_values(width, len(chunk))}) AS v")
        changed += conn.execute(sql, [value for row in chunk for value in row]).rowcount
    return changed
