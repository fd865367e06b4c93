"""Alembic, driven from code: the migrations ship inside the package.

Every process that opens the store checks the schema's revision, so the check
is one plain query against :data:`HEAD`; Alembic itself (a tenth of a second to
import) is loaded only when there is something to migrate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "alembic_config", "current_revision", "head_revision", "upgrade_if_needed"]

#: The newest revision under ``migrations/versions``; a test keeps it equal to Alembic's head.
HEAD = "0003"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "sagelab.store:migrations")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The head revision as Alembic reads it from the scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _quick_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet
        return None


def upgrade_if_needed(engine: Engine) -> list[str]:
    """Bring the schema to head; safe when several processes start at once."""
    if _quick_revision(engine) == HEAD:
        return []
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One migrator at a time; the others wait, then find nothing to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(726175)"))
        # On SQLite the transaction began IMMEDIATE, which is already exclusive for writers.
        before = current_revision(conn)
        if before == HEAD:
            return []
        command.upgrade(alembic_config(conn), "head")
        return [HEAD]
