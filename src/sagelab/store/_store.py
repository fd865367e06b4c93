"""The metadata store: one SQLAlchemy engine, sessions, and migrations on first use.

One URL picks the backend: ``sqlite:///path`` (the embedded default) or
``postgresql://...``. SQLite runs in WAL mode with a busy timeout, and every
write transaction starts with ``BEGIN IMMEDIATE``: two processes writing at once
then queue for the write lock instead of failing with "database is locked" when
a reader tries to upgrade its lock mid-transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sagelab.config import Settings
from sagelab.errors import InvalidInput, ServiceUnavailable
from sagelab.store._migrations import upgrade_if_needed

__all__ = ["Store"]

_SQLITE_BUSY_MS = 60_000


def _normalise_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(
            f"The metadata database URL {url!r} is not a database URL. "
            "Use sqlite:///PATH or postgresql://USER@HOST/DB."
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the driver sagelab installs; name it rather than guess.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise InvalidInput(
            f"The metadata database {parsed.drivername!r} is not supported. "
            "Use sqlite:///PATH or postgresql://USER@HOST/DB."
        )
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN into our own hands (see the module docstring).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("sagelab_readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Store:
    """The metadata database sagelab keeps its resources in.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://...``.
        migrate: apply pending migrations now (the default, "on first use").

    Raises:
        InvalidInput: the URL is not a supported database URL.
        ServiceUnavailable: the database cannot be reached.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = _normalise_url(url)
        if self.url.drivername.startswith("sqlite"):
            self.engine = _sqlite_engine(self.url)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly = sessionmaker(
            self.engine.execution_options(sagelab_readonly=True), expire_on_commit=False
        )
        if migrate:
            self.upgrade()

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(settings.db_url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def upgrade(self) -> list[str]:
        """Apply pending migrations; returns the revisions applied.

        Raises:
            ServiceUnavailable: the database cannot be reached.
        """
        try:
            return upgrade_if_needed(self.engine)
        except OperationalError as exc:
            raise ServiceUnavailable(
                f"The metadata database at {self.url.render_as_string(hide_password=True)} "
                f"cannot be reached: {exc.orig}. Check SAGELAB_DB_URL."
            ) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session that never holds the write lock."""
        with self._readonly() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection (call before forking, and at exit)."""
        self.engine.dispose()


_cache: dict[str, Store] = {}
_cache_lock = threading.Lock()


def cached_store(url: str) -> Store:
    """One Store per URL and process, so migrations are checked once."""
    with _cache_lock:
        if url not in _cache:
            _cache[url] = Store(url)
        return _cache[url]
