"""sagelab: SageMaker's machine-learning lifecycle on your own machine.

The package root is the Python SDK's door; the stages live in subpackages
(``sagelab.lake``, ``sagelab.ingest``, ``sagelab.jobs``, ...). Names are
imported on first use so that ``import sagelab`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sagelab._version import __version__
from sagelab.config import Settings, get_settings

if TYPE_CHECKING:
    from sagelab.session import Session
    from sagelab.training import Estimator, Model

__all__ = ["Estimator", "Model", "Session", "Settings", "__version__", "get_settings"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from sagelab.session import Session

        return Session
    if name in ("Estimator", "Model"):
        from sagelab import training

        return getattr(training, name)
    raise AttributeError(f"module 'sagelab' has no attribute {name!r}")
