"""Built-in algorithms behind one contract, with SageMaker's names for hyperparameters and metrics."""

from __future__ import annotations

from sagelab.algorithms._base import (
    PROBLEM_TYPES,
    Algorithm,
    Capabilities,
    Checkpoint,
    DataSource,
    InMemorySource,
    MetricDefinition,
    Prediction,
    TrainingCallbacks,
    TrainingData,
)
from sagelab.algorithms._hyperparameters import (
    Hyperparameter,
    HyperparameterError,
    validate_hyperparameters,
)
from sagelab.algorithms._registry import algorithm_names, get_algorithm, register_algorithm

__all__ = [
    "PROBLEM_TYPES",
    "Algorithm",
    "Capabilities",
    "Checkpoint",
    "DataSource",
    "Hyperparameter",
    "HyperparameterError",
    "InMemorySource",
    "MetricDefinition",
    "Prediction",
    "TrainingCallbacks",
    "TrainingData",
    "algorithm_names",
    "get_algorithm",
    "register_algorithm",
    "validate_hyperparameters",
]
