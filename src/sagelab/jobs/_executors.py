"""Executors: what starts a job's process and answers for it afterwards.

Executors are found by name (``local`` is built in) in a table extended by the
``sagelab.executors`` entry-point group and by :func:`register_executor`; the
name is stored on the job, so any process can later check on or stop the job
through the same executor.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from sagelab._plugins import Registry
from sagelab.config import Settings
from sagelab.errors import InvalidInput
from sagelab.jobs._records import JobHandle

__all__ = [
    "DEFAULT_STOP_GRACE_SECONDS",
    "Executor",
    "JobHandle",
    "LaunchRequest",
    "create_executor",
    "executor_names",
    "register_executor",
]

#: How long a job has, after a stop request, before its processes are killed.
DEFAULT_STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class LaunchRequest:
    """What an executor needs to start a job whose record already exists."""

    job_name: str
    settings: Settings
    log_path: Path


class Executor(abc.ABC):
    """Starts the runner of a job and can later tell whether it lives, and end it.

    The runner records the job's progress itself; an executor only owns the
    process. Contract:

    * :meth:`launch` starts the runner for a job whose record exists and is
      ``InProgress``, returns without waiting for it, and raises if it could not start.
    * :meth:`is_alive` answers ``False`` only on evidence that the job's process
      is gone, and must not take a recycled process id for the job; an executor
      that cannot tell answers ``True``, because ``False`` gets the job marked failed.
    * :meth:`terminate` asks the process to stop (``force``: kills it) and never
      raises because it has already gone.
    """

    @abc.abstractmethod
    def launch(self, request: LaunchRequest) -> JobHandle:
        """Start the job's runner; returns where it runs.

        Raises:
            OSError: the process could not be started.
        """

    @abc.abstractmethod
    def is_alive(self, handle: JobHandle) -> bool:
        """Whether the job's process may still be running."""

    @abc.abstractmethod
    def terminate(self, handle: JobHandle, *, force: bool = False) -> None:
        """Ask the job's processes to stop (SIGTERM), or kill them (``force``)."""

    def close(self) -> None:  # noqa: B027 - an optional hook, empty on purpose
        """Release what the executor holds (never the jobs, which outlive it)."""


_BUILTIN_EXECUTORS = {
    "local": "sagelab.jobs._local:LocalExecutor",
}

_EXECUTORS = Registry("executor", "sagelab.executors", _BUILTIN_EXECUTORS)


def register_executor(name: str, target: str) -> None:
    """Make ``name`` create executors with ``target`` (an ``Executor`` class or factory).

    Raises:
        InvalidInput: the name or the target is malformed.
    """
    _EXECUTORS.register(name, target)


def executor_names() -> list[str]:
    """The names of every known executor, sorted."""
    return _EXECUTORS.names()


def create_executor(name: str) -> Executor:
    """A new executor of the named type.

    Raises:
        InvalidInput: the name is unknown, or does not make an ``Executor``.
    """
    executor = _EXECUTORS.load(name)()
    if not isinstance(executor, Executor):
        raise InvalidInput(
            f"The executor {name!r} ({_EXECUTORS.target(name)}) made a "
            f"{type(executor).__name__}, not a sagelab.jobs.Executor."
        )
    return executor
