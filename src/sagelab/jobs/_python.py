"""The ``python`` job kind: run a user's function as a job.

``submit("python", {"entry_point": "train.py:main", "epochs": 3})`` calls
``main(ctx, epochs=3)`` in the job's process. A relative script path is read
against the working directory of the process that submitted the job, which the
job's process inherits.
"""

from __future__ import annotations

from typing import Any

from sagelab._plugins import check_call, load_target
from sagelab.errors import InvalidInput
from sagelab.jobs._context import JobContext

__all__ = ["run_python"]


def run_python(ctx: JobContext, entry_point: str = "", **parameters: Any) -> Any:
    """Import ``entry_point`` and call it with the job context and the other parameters.

    Raises:
        InvalidInput: ``entry_point`` is missing, malformed, not importable or not callable,
            or the parameters do not fit it.
    """
    if not entry_point:
        raise InvalidInput(
            "A 'python' job needs the parameter 'entry_point', e.g. "
            "{'entry_point': 'train.py:main'} or {'entry_point': 'mypkg.jobs:main'}."
        )
    fn = load_target(entry_point)
    if not callable(fn):
        raise InvalidInput(f"The entry point {entry_point!r} is not a function.")
    check_call(fn, (ctx,), parameters, entry_point)
    ctx.logger.info("Calling %s", entry_point)
    return fn(ctx, **parameters)
