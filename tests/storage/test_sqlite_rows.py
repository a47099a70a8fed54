"""Many rows in few statements (`server/storage/sqlite_rows.py`), on a real SQLite database:
every row lands once, in order, across statement boundaries; upserts and updates too."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from server.storage.sqlite import require_sqlite
from server.storage.sqlite_rows import PARAMS_PER_STATEMENT, insert_rows, update_rows


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
    return c


@pytest.mark.parametrize("count", [1, 2, PARAMS_PER_STATEMENT // 3, PARAMS_PER_STATEMENT + 7])
def test_insert_rows_writes_every_row_once(conn: sqlite3.Connection, count: int) -> None:
    rows = [(i, f"r{i}", i * 10) for i in range(count)]
    with closing(conn):
        insert_rows(conn, "INSERT INTO t (id, name, n)", rows)
        assert conn.execute("SELECT id, name, n FROM t ORDER BY id").fetchall() == rows


def test_insert_rows_of_nothing_writes_nothing(conn: sqlite3.Connection) -> None:
    with closing(conn):
        insert_rows(conn, "INSERT INTO t (id, name, n)", [])
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_insert_rows_with_an_upsert_tail(conn: sqlite3.Connection) -> None:
    with closing(conn):
        insert_rows(conn, "INSERT INTO t (id, name, n)", [(1, "a", 5), (2, "b", 7)])
        insert_rows(
            conn,
            "INSERT INTO t (id, name, n)",
            [(2, "x", 1), (3, "c", 2)],
            "ON CONFLICT (id) DO UPDATE SET n = n + excluded.n",
        )
        rows = conn.execute("SELECT id, name, n FROM t ORDER BY id").fetchall()
        assert rows == [(1, "a", 5), (2, "b", 8), (3, "c", 2)]


def test_update_rows_counts_only_the_rows_it_changed(conn: sqlite3.Connection) -> None:
    count = PARAMS_PER_STATEMENT  # three parameters a row: spans two statements
    with closing(conn):
        insert_rows(conn, "INSERT INTO t (id, name, n)", [(i, "r", i) for i in range(count)])
        # A compare-and-set: row 0 expects a stale value and must be left alone.
        changes = [(0, 99, -1)] + [(i, i + 1000, i) for i in range(1, count)]
        written = update_rows(
            conn,
            "UPDATE t SET n = v.column2 FROM {values} WHERE t.id = v.column1 AND t.n = v.column3",
            changes,
        )
        assert written == count - 1
        assert conn.execute("SELECT n FROM t WHERE id = 0").fetchone() == (0,)
        assert conn.execute("SELECT min(n), max(n) FROM t WHERE id > 0").fetchone() == (
            1001,
            count - 1 + 1000,
        )
        assert update_rows(conn, "UPDATE t SET n = 0 FROM {values} WHERE 0", []) == 0


@pytest.mark.parametrize(
    ("version", "ok"), [((3, 34, 1), False), ((3, 35, 0), True), ((3, 40, 1), True)]
)
def test_an_sqlite_too_old_for_the_adapter_is_refused_by_name(
    version: tuple[int, int, int], ok: bool
) -> None:
    if ok:
        require_sqlite(version)
    else:
        with pytest.raises(ValueError, match=r"needs SQLite 3\.35\.0 or later; .* SQLite 3\.34\.1"):
            require_sqlite(version)
    require_sqlite(sqlite3.sqlite_version_info)  # the one this suite runs on
