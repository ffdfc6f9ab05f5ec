"""Opening a project database: WAL, foreign keys and a busy timeout; sqlite-utils on demand."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .errors import Stage5Error, UsageError, describe_error


def _import_sqlite_utils():
    """sqlite-utils, without the numpy and pandas it imports at module level (~60 ms) only to
    accept their types as column values, which stage5 never passes. While it loads, numpy and
    pandas are marked absent in sys.modules (sqlite-utils then skips them) unless something
    already imported them; the marks are removed at once, so a later `import numpy` (torch,
    diffusers, litellm) works as usual. Its pluggy entry-point scan is skipped too (the
    Database is made with execute_plugins=False)."""
    import sys

    if "sqlite_utils" in sys.modules:
        return sys.modules["sqlite_utils"]
    blocked = [m for m in ("numpy", "pandas") if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        for m in blocked:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]
    return sqlite_utils


class Database:
    """A project (or library) database: `execute`, `query`, `table_names` and `conn` straight
    on the sqlite3 connection, as sqlite_utils.Database has them; everything else (`db[table]`,
    `db.table(...)`, ...) is sqlite_utils.Database's own, made on first use over the same
    connection. Commands that only read (status, review, show) never import sqlite-utils
    (~50 ms)."""

    __slots__ = ("conn", "_full")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._full = None

    def execute(self, sql: str, parameters=None) -> sqlite3.Cursor:
        if parameters is not None:
            return self.conn.execute(sql, parameters)
        return self.conn.execute(sql)

    def query(self, sql: str, params=None) -> Iterator[dict]:
        cursor = self.execute(sql, params or ())
        keys = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(keys, row, strict=True))

    def table_names(self, fts4: bool = False, fts5: bool = False) -> list[str]:
        if fts4 or fts5:
            return self.full.table_names(fts4=fts4, fts5=fts5)
        return [r[0] for r in self.execute("select name from sqlite_master where type = 'table'")]

    @property
    def full(self):
        """The sqlite_utils.Database over this connection (imported on first use)."""
        if self._full is None:
            self._full = _import_sqlite_utils().Database(self.conn, execute_plugins=False)
        return self._full

    def __getitem__(self, name: str):
        return self.full[name]

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.full, name)


BUSY_TIMEOUT_MS = 15_000


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: Path | str, *, create: bool = False) -> Database:
    """Open `path` with the pragmas every stage5 connection uses (no migrations)."""
    path = Path(path)
    if not create and not path.is_file():
        raise UsageError(f"no database at {path}")
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA recursive_triggers = ON")  # as sqlite_utils.Database sets it
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{path} is not a usable SQLite database ({e})") from None
    _open_connections.append(conn)
    return Database(conn)


# Connections opened by this process; the CLI closes them when a command ends (so a
# checkpoint never happens later, at garbage collection, in a long-lived test process).
_open_connections: list[sqlite3.Connection] = []


def close_all() -> None:
    while _open_connections:
        conn = _open_connections.pop()
        try:
            if conn.in_transaction:
                conn.rollback()
            conn.close()
        except sqlite3.Error:
            pass


@contextmanager
def atomic(db: Database) -> Iterator[Database]:
    """One write transaction (BEGIN IMMEDIATE), rolled back on any exception.

    Nested use joins the outer transaction through a SAVEPOINT.
    """
    conn = db.conn
    if conn.in_transaction:
        name = f"sp_{id(conn)}_{_depth(conn)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            if conn.in_transaction:  # (SQLite may have rolled the whole transaction back)
                try:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                except sqlite3.Error:
                    pass
            raise
        conn.execute(f"RELEASE {name}")
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise Stage5Error(describe_error(e)) from None
    try:
        yield db
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as e:
        _rollback(conn)
        raise Stage5Error(f"could not save the change: {describe_error(e)}") from None


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back only what is still open: SQLite already rolled back after SQLITE_FULL or an
    I/O error, and a second ROLLBACK ("no transaction is active") would hide the real error."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


_depths: dict[int, int] = {}


def _depth(conn: sqlite3.Connection) -> int:
    _depths[id(conn)] = _depths.get(id(conn), 0) + 1
    return _depths[id(conn)]


# one encoder for every value stored (json.dumps with options builds a new one per call,
# and a long extraction stores one metadata object per asset)
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)


def dumps(value: object) -> str:
    return _ENCODER.encode(value)


def loads(value: str | None, default: object = None) -> object:
    if value in (None, ""):
        return default
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        shown = str(value)[:40]
        raise Stage5Error(f"the project database holds a value that is not valid JSON "
                          f"({shown!r}): it was edited by hand; run stage5 doctor") from None
