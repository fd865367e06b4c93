"""Several processes writing to one store at once: no 'database is locked', no lost update.

Each writer runs read-then-write transactions (a shared counter, then new jobs
and their metrics, and now and then a catalog table) as fast as it can. On
SQLite that is the pattern that fails with "database is locked" when a reader
tries to upgrade its lock mid-transaction; the store's ``BEGIN IMMEDIATE``
queues writers instead.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from sagelab.lake._catalog import Catalog
from sagelab.store import CatalogTable, Job, JobMetric, Store

WRITERS = 3
TRANSACTIONS = 300
TABLE_EVERY = 20

_WRITER = r"""
import sys, time
from pathlib import Path
from sqlalchemy import select
from sagelab.lake._catalog import Catalog, TableInfo
from sagelab.lake._schema import Column
from sagelab.store import Job, JobMetric, Store

url, tag, count, every, ready, go = sys.argv[1:7]
count, every = int(count), int(every)
store = Store(url)
catalog = Catalog(store)
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
for i in range(count):
    with store.session() as s:
        counter = s.scalars(select(Job).where(Job.name == "counter").with_for_update()).one()
        counter.result = {"n": counter.result["n"] + 1}
        job = Job(name=f"{tag}-{i}", kind="test", target="x:y")
        s.add(job)
        s.flush()
        s.add_all(JobMetric(job_id=job.id, name="m", step=k, value=float(k)) for k in range(3))
    if i % every == 0:
        catalog.create_table(TableInfo(
            database="conc", name=f"{tag}_{i}", location=f"s3://bucket/{tag}/{i}/",
            classification="parquet", columns=[Column("id", "bigint")],
        ))
store.dispose()
print("done", tag)
"""


def test_processes_writing_at_once(store: Store, db_url: str, tmp_path: Path) -> None:
    with store.session() as s:
        s.add(Job(name="counter", kind="test", target="x:y", result={"n": 0}))
    Catalog(store).create_database("conc")
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{k}" for k in range(WRITERS)]
    args = [str(TRANSACTIONS), str(TABLE_EVERY)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, db_url, f"w{k}", *args, str(ready[k]), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(WRITERS)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "the writers did not come up"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()  # all start writing together
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "done" in out
        assert "database is locked" not in err

    tables_each = len(range(0, TRANSACTIONS, TABLE_EVERY))
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == WRITERS * TRANSACTIONS + 1
        assert s.scalar(select(func.count()).select_from(JobMetric)) == WRITERS * TRANSACTIONS * 3
        counter = s.scalars(select(Job).where(Job.name == "counter")).one()
        assert counter.result == {"n": WRITERS * TRANSACTIONS}  # no update was lost
        assert s.scalar(select(func.count()).select_from(CatalogTable)) == WRITERS * tables_each
        if store.dialect == "sqlite":
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert len(Catalog(store).list_tables("conc")) == WRITERS * tables_each
