"""Training jobs: built-in algorithms trained on lake data, with lineage, splits, CV and checkpoints.

A training job (kind ``training``) reads its channels (``train``, optional
``validation`` and ``test``) from catalog tables, SQL queries or files, checks
them before any training, holds out a validation split when none is given
(stratified for classifiers, time-ordered with ``split_by``), optionally
cross-validates, fits with early stopping and checkpoints, evaluates, and saves
the model to ``s3://artifacts/training/<job>/model/``. Its result records the
run's lineage: hyperparameters, inputs with fingerprints of the data read,
versions, metrics, artifacts and durations::

    from sagelab.training import TrainingService

    training = TrainingService.from_settings()
    info = training.submit("xgboost", {"train": "uci.cancer"}, target="label",
                           hyperparameters={"num_round": 50, "objective": "binary:logistic"},
                           wait=True)
    training.model(info.name).predict(rows)

The SDK's :class:`Estimator` and :class:`Model` wrap the same calls in the SageMaker
SDK's shape.
"""

from __future__ import annotations

from sagelab.training._compare import Comparison
from sagelab.training._estimator import Estimator, TrainingJob, TrainingJobAnalytics
from sagelab.training._evaluate import ModelEvaluation
from sagelab.training._job import CHANNELS, checkpoint_uri_for, run_training
from sagelab.training._model import Model, model_uri
from sagelab.training._service import (
    TRAINING_KIND,
    TrainingProgress,
    TrainingService,
)
from sagelab.training._sources import CONTENT_TYPES

__all__ = [
    "CHANNELS",
    "CONTENT_TYPES",
    "TRAINING_KIND",
    "Comparison",
    "Estimator",
    "Model",
    "ModelEvaluation",
    "TrainingJob",
    "TrainingJobAnalytics",
    "TrainingProgress",
    "TrainingService",
    "checkpoint_uri_for",
    "model_uri",
    "run_training",
]
