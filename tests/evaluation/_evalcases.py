"""The shape of a test case: truth, prediction and what the model knows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sagelab.algorithms import Prediction


@dataclass
class Case:
    """A held-out target, the model's prediction on it, and what the model knows."""

    y_true: np.ndarray
    prediction: Prediction
    class_names: list[str]
    feature_importance: dict[str, float]
