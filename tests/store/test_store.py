from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select, text

from sagelab.errors import InvalidInput, ServiceUnavailable
from sagelab.store import Job, JobMetric, Store
from sagelab.store._migrations import current_revision, head_revision


def test_migrations_run_on_first_use_and_are_idempotent(db_url: str) -> None:
    store = Store(db_url)
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "jobs",
        "job_metrics",
        "catalog_tables",
        "catalog_partitions",
        "alembic_version",
    } <= tables
    assert Store(db_url).upgrade() == []
    store.dispose()


def test_timestamps_come_back_aware_in_utc(store: Store) -> None:
    naive = datetime(2024, 5, 1, 12, 0, 0)
    with store.session() as s:
        s.add(Job(name="t1", kind="etl", target="m:f", creation_time=naive))
    with store.read() as s:
        job = s.scalars(select(Job).where(Job.name == "t1")).one()
    assert job.creation_time == naive.replace(tzinfo=UTC)
    assert job.creation_time.tzinfo is not None


def test_write_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as s:
        s.add(Job(name="t2", kind="etl", target="m:f"))
        s.flush()
        raise RuntimeError("boom")
    with store.read() as s:
        assert s.scalars(select(Job).where(Job.name == "t2")).one_or_none() is None


def test_metrics_cascade_with_their_job(store: Store) -> None:
    with store.session() as s:
        job = Job(name="t3", kind="training", target="m:f")
        s.add(job)
        s.flush()
        s.add_all(
            [
                JobMetric(job_id=job.id, name="train:loss", step=i, value=1.0 / (i + 1))
                for i in range(5)
            ]
        )
    with store.session() as s:
        s.delete(s.scalars(select(Job).where(Job.name == "t3")).one())
    with store.read() as s:
        assert s.scalar(select(text("count(*)")).select_from(JobMetric)) == 0


def test_sqlite_runs_in_wal_mode(home: object, tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/wal.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


@pytest.mark.parametrize("url", ["mysql://x@localhost/db", "not a url", "redis://localhost"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="sqlite:///PATH or postgresql://"):
        Store(url)


def test_unreachable_postgres_is_a_clear_error() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_head_constant_matches_the_migration_scripts() -> None:
    from sagelab.store._migrations import HEAD

    assert head_revision() == HEAD
