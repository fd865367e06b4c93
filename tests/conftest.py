"""Fixtures shared by every test: an isolated home, a metadata store on each backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sagelab.config import Settings
from sagelab.store import Store

PG_ADMIN_URL = os.environ.get(
    "SAGELAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("SAGELAB_REQUIRE_SERVICES") == "1"


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: not usable here
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({type(exc).__name__}: {exc})"


_PG_PROBLEM: str | None = None
_PG_CHECKED = False


def need_postgres() -> None:
    """Skip (or fail, when services are required) if PostgreSQL is not there."""
    global _PG_PROBLEM, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_PROBLEM, _PG_CHECKED = _postgres_reachable(), True
    if _PG_PROBLEM:
        if REQUIRE_SERVICES:
            pytest.fail(_PG_PROBLEM + " and SAGELAB_REQUIRE_SERVICES=1")
        pytest.skip(_PG_PROBLEM)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    need_postgres()
    schema = f"sagelab_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated SAGELAB_HOME with the embedded defaults, seen by child processes too."""
    home = tmp_path / "home"
    monkeypatch.setenv("SAGELAB_HOME", str(home))
    monkeypatch.delenv("SAGELAB_DB_URL", raising=False)
    monkeypatch.delenv("SAGELAB_LAKE", raising=False)
    monkeypatch.delenv("SAGELAB_CONFIG", raising=False)
    return home


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, home: Path) -> str:
    """The metadata database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'sagelab.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def settings(home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for one test, exported to the environment so child processes agree."""
    monkeypatch.setenv("SAGELAB_DB_URL", db_url)
    return Settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.db_url)
    yield store
    store.dispose()
