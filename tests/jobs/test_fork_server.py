"""The warm fork server that local jobs start from (``sagelab.jobs._forkserver``).

Each test has a runtime folder of its own (``XDG_RUNTIME_DIR``), so its server is its
own; the server imports only the job runner, so it is ready in about a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from _jobtools import end_job_processes, fn, wait_until

from sagelab.config import Settings
from sagelab.jobs import JobService
from sagelab.jobs._forkserver import runtime_dir, server_key
from sagelab.store import Store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def runtime(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder and a quick server; every server started in it ends after.

    The folder is short-named in the temporary folder: a socket's path has a length limit.
    """
    base = Path(tempfile.mkdtemp(prefix="sl-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    monkeypatch.setenv("SAGELAB_JOB_PRELOAD", "sagelab.jobs._runner")
    monkeypatch.setenv("SAGELAB_JOB_FORK_SERVER_IDLE_SECONDS", "30")
    monkeypatch.setenv("SAGELAB_TEST_MARKER", "from-the-caller")
    yield base / f"sagelab-{os.getuid()}"
    for proc in _servers(base):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
            proc.wait(10)
    shutil.rmtree(base, ignore_errors=True)


def _servers(base: Path) -> list[psutil.Process]:
    """The fork servers this test started: their command line names its runtime folder."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "sagelab.jobs._forkserver" in cmdline and any(str(base) in a for a in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def service(runtime: Path, home: Path) -> Iterator[JobService]:
    settings = Settings()
    store = Store(settings.db_url)
    jobs = JobService(store, settings)
    yield jobs
    for info in jobs.list(limit=100):
        end_job_processes(info, kill=not info.is_terminal)
    jobs.close()
    store.dispose()


def _socket(runtime: Path) -> Path:
    return runtime / f"jobs-{server_key(os.environ)}.sock"


def _run(service: JobService, **params: object) -> dict[str, object]:
    job = service.submit("python", {"entry_point": fn("whoami"), **params})
    info = service.wait(job.name, timeout=60)
    assert info.status == "Completed", info.failure_reason
    return dict(info.result)


def test_jobs_start_from_the_warm_server_as_from_a_fresh_interpreter(
    service: JobService, runtime: Path
) -> None:
    first = _run(service)
    assert first["starter_pid"] == os.getpid()  # no server yet: a fresh interpreter
    wait_until(_socket(runtime).exists, timeout=60, what="the fork server's socket")

    second, third = _run(service), _run(service)
    for result in (second, third):
        assert "sagelab.jobs._forkserver" in str(result["starter"])
        assert result["starter_pid"] == second["starter_pid"]
        assert result["cwd"] == os.getcwd() == first["cwd"]
        assert result["marker"] == "from-the-caller"
    assert second["draw"] != third["draw"]  # NumPy's global generator is reseeded per job
    assert _socket(runtime).stat().st_mode & 0o777 == 0o600
    assert runtime.stat().st_mode & 0o777 == 0o700


def test_a_stop_reaches_a_job_forked_from_the_server(service: JobService, runtime: Path) -> None:
    _run(service)
    wait_until(_socket(runtime).exists, timeout=60, what="the fork server's socket")
    job = service.submit("python", {"entry_point": fn("sleepy"), "seconds": 60})
    wait_until(lambda: service.describe(job.name).pid is not None, what="the job's pid")
    server = _servers(runtime.parent)[0]
    assert service.describe(job.name).pid in [p.pid for p in server.children()]
    info = service.stop(job.name)
    info = service.wait(job.name, timeout=30)
    assert info.status == "Stopped"
    wait_until(lambda: not server.children(), what="the job's processes to end")
    assert server.is_running()  # the server serves on


def test_a_job_outlives_an_idle_server_and_the_next_launch_starts_another(
    service: JobService, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGELAB_JOB_FORK_SERVER_IDLE_SECONDS", "3")
    service.settings = Settings()
    _run(service)
    wait_until(_socket(runtime).exists, timeout=60, what="the fork server's socket")
    server = _servers(runtime.parent)[0]
    job = service.submit("python", {"entry_point": fn("whoami"), "seconds": 6})
    pid = service.describe(job.name).pid
    assert pid is not None and psutil.Process(pid).ppid() == server.pid
    wait_until(lambda: not server.is_running(), timeout=30, what="the idle server to exit")
    assert not _socket(runtime).exists()
    info = service.wait(job.name, timeout=60)
    assert info.status == "Completed", info.failure_reason
    # The job that outlived it held neither its socket nor its lock: a new one starts.
    _run(service)
    wait_until(_socket(runtime).exists, timeout=60, what="a new fork server's socket")
    assert _servers(runtime.parent)[0].pid != server.pid


def test_the_server_answers_a_bad_request_and_serves_on(service: JobService, runtime: Path) -> None:
    _run(service)
    wait_until(_socket(runtime).exists, timeout=60, what="the fork server's socket")
    for body in (b"not json\n", b'{"argv": "x"}\n', b"\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(str(_socket(runtime)))
            conn.sendall(body)
            reply = json.loads(conn.recv(65536))
        assert "error" in reply and "pid" not in reply
    assert "sagelab.jobs._forkserver" in str(_run(service)["starter"])


def test_a_runtime_folder_open_to_others_is_refused_and_jobs_still_run(
    service: JobService, runtime: Path
) -> None:
    runtime.mkdir(mode=0o700)
    runtime.chmod(0o777)
    with pytest.raises(OSError, match="no one else can enter"):
        runtime_dir()
    for _ in range(2):
        assert _run(service)["starter_pid"] == os.getpid()
    assert list(runtime.iterdir()) == []


def test_a_runtime_folder_too_deep_for_a_socket_falls_back(
    service: JobService, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = runtime.parent / ("d" * 100)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    for _ in range(2):
        assert _run(service)["starter_pid"] == os.getpid()
    assert not list((deep / f"sagelab-{os.getuid()}").glob("*.lock"))


def test_the_setting_turns_the_server_off(
    service: JobService, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGELAB_JOB_FORK_SERVER", "false")
    service.settings = Settings()
    for _ in range(2):
        assert _run(service)["starter_pid"] == os.getpid()
    assert not runtime.exists()


def test_the_server_key_follows_what_imports_read(monkeypatch: pytest.MonkeyPatch) -> None:
    base = dict(os.environ)
    assert server_key({**base, "SAGELAB_HOME": "/elsewhere"}) == server_key(base)
    assert server_key({**base, "OMP_NUM_THREADS": "7"}) != server_key(base)
    assert server_key({**base, "PYTHONHASHSEED": "3"}) != server_key(base)
