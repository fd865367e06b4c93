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
    from sagelab.serving import DataCaptureConfig, Predictor
    from sagelab.session import Session
    from sagelab.training import Estimator, Model
    from sagelab.tuning import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
    )

__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "DataCaptureConfig",
    "Estimator",
    "HyperparameterTuner",
    "IntegerParameter",
    "Model",
    "Predictor",
    "Session",
    "Settings",
    "__version__",
    "get_settings",
]

_TUNING_NAMES = (
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperparameterTuner",
    "IntegerParameter",
)


def __getattr__(name: str) -> Any:
    if name == "Session":
        from sagelab.session import Session

        return Session
    if name in ("Estimator", "Model"):
        from sagelab import training

        return getattr(training, name)
    if name == "Predictor":
        from sagelab.serving import Predictor

        return Predictor
    if name == "DataCaptureConfig":
        from sagelab.serving import DataCaptureConfig

        return DataCaptureConfig
    if name in _TUNING_NAMES:
        from sagelab import tuning

        return getattr(tuning, name)
    raise AttributeError(f"module 'sagelab' has no attribute {name!r}")
