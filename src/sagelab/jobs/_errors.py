"""The two exceptions the jobs package adds to :mod:`sagelab.errors`."""

from __future__ import annotations

from sagelab.errors import SagelabError

__all__ = ["JobStopped", "WaitTimeout"]


class JobStopped(BaseException):
    """Raised inside a running job when it is asked to stop (a stop request or its max runtime).

    It derives from ``BaseException``, like ``KeyboardInterrupt``, so that an
    ``except Exception`` in a job's own code does not swallow it. A job may catch
    it to clean up (``finally`` blocks run) and should then let it propagate; the
    job ends ``Stopped`` either way.
    """


class WaitTimeout(SagelabError, TimeoutError):
    """A job did not reach a final status within the time the caller was willing to wait."""

    code = "RequestTimeout"
