"""Job kinds: the name a job is submitted under, and the function that does its work.

A job function has the signature ``fn(ctx: JobContext, **parameters) -> dict | None``;
what it returns becomes the job's ``result``. Kinds are found by name in a
built-in table, extended by the ``sagelab.job_kinds`` entry-point group and by
:func:`register_job_kind`. The job's record keeps the target itself, so the
process that runs the job does not need the registration.
"""

from __future__ import annotations

from sagelab._plugins import Registry

__all__ = ["builtin_job_modules", "job_kind_target", "job_kinds", "register_job_kind"]

#: The kinds sagelab ships; each stage adds its own here (training, tuning trials, ...).
_BUILTIN_KINDS = {
    "etl.python": "sagelab.etl._jobs:run_python",
    "etl.sql": "sagelab.etl._jobs:run_sql",
    "python": "sagelab.jobs._python:run_python",
    "training": "sagelab.training._job:run_training",
    "transform": "sagelab.serving._transform_job:run_transform",
    "tuning": "sagelab.tuning._job:run_tuning",
}

_KINDS = Registry("job kind", "sagelab.job_kinds", _BUILTIN_KINDS)


def register_job_kind(kind: str, target: str) -> None:
    """Make ``kind`` run ``target`` (``module.path:function`` or ``path/to/file.py:function``).

    The registration lasts for this process; a plug-in package registers its
    kinds for every process through the ``sagelab.job_kinds`` entry-point group.

    Raises:
        InvalidInput: the kind name or the target is malformed.
    """
    _KINDS.register(kind, target)


def job_kinds() -> list[str]:
    """The names of every known job kind, sorted."""
    return _KINDS.names()


def job_kind_target(kind: str) -> str:
    """The function a kind runs, as ``module:function``.

    Raises:
        InvalidInput: the kind is unknown; the message lists the known kinds.
    """
    return _KINDS.target(kind)


def builtin_job_modules() -> list[str]:
    """The modules of the job functions sagelab ships (what a warm job server imports)."""
    return sorted({target.partition(":")[0] for target in _BUILTIN_KINDS.values()})
