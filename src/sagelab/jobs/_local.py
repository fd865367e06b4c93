"""The ``local`` executor: each job in its own process group on this machine (POSIX).

A job runs as ``python -m sagelab.jobs._runner NAME`` in a new session, so a
stop reaches every process it started and a crash stays inside it. When the
``job_fork_server`` setting is on (the default) and a warm fork server is ready,
that process is forked from it, with the libraries jobs use already imported
(:mod:`sagelab.jobs._forkserver`); otherwise it starts from a fresh interpreter. The job's
process is known by its pid *and* its start time, so a pid the system has since
given to another program is not taken for the job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

import psutil

from sagelab.jobs._executors import DEFAULT_STOP_GRACE_SECONDS, Executor, JobHandle, LaunchRequest

__all__ = ["LocalExecutor"]

# Start times are read from /proc or sysctl and may differ by rounding between reads.
_START_TOLERANCE_SECONDS = 1.0


class LocalExecutor(Executor):
    """Runs each job in its own process group on this machine.

    Args:
        stop_grace_seconds: how long a stopped job may take to end before it is killed.
    """

    def __init__(self, stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS) -> None:
        self.stop_grace_seconds = stop_grace_seconds
        self.host = socket.gethostname()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def launch(self, request: LaunchRequest) -> JobHandle:
        """Start the job's runner with its output going to the job's log file.

        Raises:
            OSError: the process could not be started.
        """
        self._reap()
        settings = request.settings
        env = {
            **os.environ,
            "SAGELAB_HOME": str(settings.home),
            "SAGELAB_DB_URL": settings.db_url,
            "SAGELAB_LAKE": settings.lake,
            "PYTHONUNBUFFERED": "1",
        }
        argv = [request.job_name, "--stop-grace", repr(float(self.stop_grace_seconds))]
        request.log_path.parent.mkdir(parents=True, exist_ok=True)
        if settings.job_fork_server:
            # Imported here: ``python -m sagelab.jobs._forkserver`` must not find it imported.
            from sagelab.jobs._forkserver import DEFAULT_PRELOAD, ForkServerClient

            preload = [m for m in settings.job_preload.split(",") if m] or DEFAULT_PRELOAD
            server = ForkServerClient(settings.job_fork_server_idle_seconds, preload)
            pid = server.launch(argv, env, request.log_path)
            if pid is not None:
                return JobHandle(host=self.host, pid=pid, start_time=_start_time(pid))
        command = [sys.executable, "-m", "sagelab.jobs._runner", *argv]
        with request.log_path.open("ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        return JobHandle(host=self.host, pid=proc.pid, start_time=_start_time(proc.pid))

    def _process(self, handle: JobHandle) -> psutil.Process | None:
        """The job's process if it still exists (a zombie included), else None."""
        if handle.pid is None:
            return None
        try:
            proc = psutil.Process(handle.pid)
            if (
                handle.start_time is not None
                and abs(proc.create_time() - handle.start_time) > _START_TOLERANCE_SECONDS
            ):
                return None  # the pid now belongs to another program
            return proc
        except psutil.NoSuchProcess:
            return None

    def is_alive(self, handle: JobHandle) -> bool:
        """False when the job's process has ended (or its pid now names another program)."""
        self._reap()
        if handle.host != self.host or handle.pid is None:
            return True  # not ours to judge from here
        try:
            proc = self._process(handle)
            return proc is not None and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True

    def terminate(self, handle: JobHandle, *, force: bool = False) -> None:
        """Signal the job's whole process group: SIGTERM, or SIGKILL with ``force``."""
        if handle.host != self.host or handle.pid is None:
            return
        ours = self._process(handle) is not None
        # With the leader gone, its group id cannot be reused while members remain,
        # so a forced kill may still reach the job's orphans.
        orphans = force and not psutil.pid_exists(handle.pid)
        if ours or orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, signal.SIGKILL if force else signal.SIGTERM)
        self._reap()

    def close(self) -> None:
        """Collect the exit status of runners that have ended."""
        self._reap()

    def _reap(self) -> None:
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                self._children.pop(pid, None)


def _start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return None
