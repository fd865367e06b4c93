"""Helpers for the jobs tests: entry points in ``_fns.py`` and process clean-up."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from sagelab.jobs import JobInfo

FNS = Path(__file__).with_name("_fns.py")


def fn(name: str) -> str:
    """The entry point of a function in ``_fns.py``."""
    return f"{FNS}:{name}"


def _ours(info: JobInfo) -> psutil.Process | None:
    """The job's recorded process, if it still exists and is the one the job recorded."""
    if info.pid is None or info.pid_start_time is None:
        return None
    try:
        proc = psutil.Process(info.pid)
        return proc if abs(proc.create_time() - info.pid_start_time) < 1.0 else None
    except psutil.NoSuchProcess:
        return None


def end_job_processes(info: JobInfo, *, kill: bool, timeout: float = 10.0) -> None:
    """Optionally kill a job's process group (by its leader's pid), then wait for the leader."""
    proc = _ours(info)
    if proc is None:
        return
    if kill:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def wait_until(check: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``check`` until it is truthy.

    Raises:
        AssertionError: it was not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
