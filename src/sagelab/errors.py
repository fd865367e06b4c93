"""sagelab's errors: one base, a small tree, one HTTP status each.

Every door (SDK, CLI, REST API) raises or shows these same errors, so a
user sees the same words wherever they stand. A message names the thing,
what was expected, what was got, and how to fix it.

The tree::

    SagelabError
    ├── InvalidInput        bad input from the user (400); job failures "ClientError: ..."
    │   ├── InvalidKey      an object key or path that would leave its root (400)
    │   └── InvalidSpec     a specification (a recipe, a pipeline) with a list of problems (400)
    ├── NotFound            the named resource does not exist (404)
    ├── Conflict            the resource exists, or is in a state that forbids this (409)
    ├── ServiceUnavailable  a backing service (database, lake) cannot be reached (503)
    └── AlgorithmError      a failure inside the work itself (500)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "HTTP_STATUS",
    "AlgorithmError",
    "Conflict",
    "InvalidInput",
    "InvalidKey",
    "InvalidSpec",
    "NotFound",
    "SagelabError",
    "ServiceUnavailable",
    "closest",
    "http_status",
]


class SagelabError(Exception):
    """Base of every error sagelab raises on purpose."""

    #: SageMaker's error code for the same condition, used by the wire API.
    code: str = "InternalFailure"


class InvalidInput(SagelabError, ValueError):
    """The user's input is wrong: a value, a shape, a name. Fix the input and retry."""

    code = "ValidationException"


class InvalidKey(InvalidInput):
    """An object key or path that is malformed or would escape its root."""


class InvalidSpec(InvalidInput):
    """A specification is wrong; ``problems`` lists one message per problem.

    Args:
        problems: one message each, every one naming where the problem is.
        what: what the specification is ("recipe", "inference pipeline"), for the message.
    """

    def __init__(self, problems: Iterable[str], what: str) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) with the {what}:\n{lines}")


class NotFound(SagelabError, LookupError):
    """The named resource (bucket, key, table, job...) does not exist."""

    code = "ResourceNotFound"


class Conflict(SagelabError):
    """The resource already exists, or its state forbids the operation."""

    code = "ResourceInUse"


class ServiceUnavailable(SagelabError):
    """A backing service (metadata database, object store) cannot be reached."""

    code = "ServiceUnavailable"


class AlgorithmError(SagelabError):
    """A failure inside the work a job does, not caused by its input."""

    code = "InternalFailure"


#: One status per error class; a subclass not listed takes its parent's.
HTTP_STATUS: dict[type[SagelabError], int] = {
    SagelabError: 500,
    InvalidInput: 400,
    InvalidKey: 400,
    NotFound: 404,
    Conflict: 409,
    ServiceUnavailable: 503,
    AlgorithmError: 500,
}


def http_status(error: SagelabError) -> int:
    """The HTTP status a door answers with for ``error``."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def closest(name: str, known: Iterable[str]) -> str:
    """A ' Did you mean ...?' hint for ``name`` among ``known``, or ''."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""
