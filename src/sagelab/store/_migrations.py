"""Alembic, driven from code: the migrations ship inside the package."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade_if_needed"]


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "sagelab.store:migrations")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_if_needed(engine: Engine) -> list[str]:
    """Bring the schema to head; safe when several processes start at once."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One migrator at a time; the others wait, then find nothing to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(726175)"))
        # On SQLite the transaction began IMMEDIATE, which is already exclusive for writers.
        before = current_revision(conn)
        if before == head:
            return []
        command.upgrade(alembic_config(conn), "head")
        return [r for r in [head] if r != before]
