"""Kinds, executors, entry points and the checks a submission passes before any process starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from _jobtools import FNS, fn

import sagelab.jobs
from sagelab._plugins import load_target, normalise_target
from sagelab.errors import Conflict, InvalidInput, NotFound
from sagelab.jobs import (
    JobService,
    LocalExecutor,
    create_executor,
    executor_names,
    job_kind_target,
    job_kinds,
    register_executor,
    register_job_kind,
)
from sagelab.jobs._kinds import _BUILTIN_KINDS
from sagelab.store import Job, Store


def _count(store: Store) -> int:
    with store.read() as s:
        return s.query(Job).count()


def test_exports_are_sorted_and_complete() -> None:
    names = sagelab.jobs.__all__
    # Ruff's order (RUF022): CONSTANTS, then Classes, then functions.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    public = {n for n in dir(sagelab.jobs) if not n.startswith("_")} - {"annotations"}
    assert set(names) == public


def test_unknown_kind_and_executor_name_the_known_ones(jobs: JobService, store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"Unknown job kind 'pyhton'\. Did you mean 'python'\?"):
        jobs.submit("pyhton", {})
    with pytest.raises(InvalidInput, match=r"Known job kinds: .*python"):
        jobs.submit("nothing-like-it", {})
    with pytest.raises(InvalidInput, match="Did you mean 'local'"):
        jobs.submit("python", {}, executor="locl")
    assert _count(store) == 0
    assert "python" in job_kinds() and "local" in executor_names()
    assert job_kind_target("python") == "sagelab.jobs._python:run_python"


def test_every_builtin_kind_and_executor_loads() -> None:
    for kind in _BUILTIN_KINDS:
        assert callable(load_target(job_kind_target(kind))), kind
    assert isinstance(create_executor("local"), LocalExecutor)


def test_registering_kinds_and_executors() -> None:
    register_job_kind("test-registered", fn("work"))
    assert job_kind_target("test-registered") == f"{FNS}:work"
    for bad in ("Bad Name", "", "9lives", "x" * 65):
        with pytest.raises(InvalidInput, match="job kind name"):
            register_job_kind(bad, fn("work"))
    for target in ("no-colon", "mod:", ":fn", "a b:c", "mod:1fn", "pkg..mod:fn"):
        with pytest.raises(InvalidInput, match="must look like"):
            register_job_kind("test-bad-target", target)
    register_executor("test-not-an-executor", "collections:OrderedDict")
    with pytest.raises(InvalidInput, match=r"not a sagelab\.jobs\.Executor"):
        create_executor("test-not-an-executor")


def test_load_target_refuses_what_it_cannot_find(tmp_path: Path) -> None:
    assert callable(load_target(fn("work")))
    assert load_target("os.path:join") is __import__("os").path.join
    with pytest.raises(InvalidInput, match="there is no module 'no_such_pkg_xyz'"):
        load_target("no_such_pkg_xyz.mod:fn")
    with pytest.raises(InvalidInput, match=r"does not define.*Did you mean 'work'"):
        load_target(fn("wrok"))
    with pytest.raises(InvalidInput, match="does not exist"):
        load_target(str(tmp_path / ".." / ".." / "etc" / "missing.py") + ":fn")
    script = tmp_path / "script.py"
    script.write_text("import missing_dependency_xyz\n")
    with pytest.raises(ModuleNotFoundError):  # the script's own bug, not a bad entry point
        load_target(f"{script}:fn")
    assert normalise_target("rel/train.py:main") == f"{Path.cwd() / 'rel/train.py'}:main"
    with pytest.raises(InvalidInput, match="longer than 255"):
        normalise_target("a" * 300 + ".py:main")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "job name 'has space' is not valid"),
        ({"name": "-leading"}, "is not valid"),
        ({"name": "x" * 64}, "is not valid"),
        ({"name": "../../etc"}, "is not valid"),
        ({"parameters": {"s": {1, 2}}}, "must be JSON"),
        ({"parameters": {"x": float("nan")}}, "must be JSON"),
        ({"parameters": {1: "a"}}, "string keys"),
        ({"parameters": ["a"]}, "string keys"),
        ({"max_runtime_seconds": 0}, "max_runtime_seconds"),
        ({"max_runtime_seconds": 1.5}, "max_runtime_seconds"),
        ({"max_runtime_seconds": True}, "max_runtime_seconds"),
        ({"max_runtime_seconds": 10**9}, "max_runtime_seconds"),
    ],
)
def test_bad_submissions_start_nothing(
    jobs: JobService, store: Store, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"parameters": {}, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        jobs.submit("python", **args)  # type: ignore[arg-type]
    assert _count(store) == 0


def test_a_taken_name_is_a_conflict(jobs: JobService, store: Store) -> None:
    with store.session() as s:
        s.add(
            Job(
                name="taken",
                kind="python",
                target="x:y",
                host=socket.gethostname(),
                status="Completed",
            )
        )
    with pytest.raises(Conflict, match="A job named 'taken' already exists"):
        jobs.submit("python", {"entry_point": fn("work")}, name="taken")
    assert _count(store) == 1
    assert jobs.describe("taken").as_dict()["JobStatus"] == "Completed"


def test_an_unknown_job_is_not_found_everywhere(jobs: JobService, store: Store) -> None:
    with store.session() as s:
        s.add(Job(name="churn-xgb-01", kind="python", target="x:y", status="Completed"))
    for call in (jobs.describe, jobs.logs, jobs.metrics, jobs.stop, jobs.wait):
        with pytest.raises(NotFound, match=r"no job named 'churn-xgb-1'\. Did you mean"):
            call("churn-xgb-1")
