"""The persistent state every stateful backend keeps: one SQLite database shared by the request threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SqliteStore:
    """A WAL-mode SQLite connection behind a re-entrant lock.

    The server answers requests on many threads; one lock-guarded connection keeps a backend's
    read-check-write sequences (conditional puts, multipart completion) atomic without retry loops.
    """

    def __init__(self, path: Path, schema: str) -> None:
        self.lock = threading.RLock()
        # Autocommit mode: transactions are opened explicitly by transaction().
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(schema)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Checkpoint and close, so a clean shutdown leaves no write-ahead log behind."""
        with self.lock:
            self.db.close()
