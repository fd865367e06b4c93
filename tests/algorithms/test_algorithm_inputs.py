"""Bad labels, bad features and hostile artifacts fail with messages that say what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sagelab.algorithms import InMemorySource, get_algorithm
from sagelab.algorithms.testing import RecordingCallbacks, conformance_data, example_hyperparameters
from sagelab.errors import InvalidInput, NotFound

NAMES = ["xgboost", "lightgbm", "linear-learner"]


def _fit(name: str, problem: str, X: Any, y: Any, validation: Any = None, **extra: Any) -> Any:
    cls = get_algorithm(name)
    algorithm = cls({**example_hyperparameters(cls, problem), **extra})
    algorithm.fit(InMemorySource(X, y), validation, RecordingCallbacks())
    return algorithm


@pytest.mark.parametrize("name", NAMES)
def test_text_classes_must_be_encoded_first(name: str) -> None:
    data = conformance_data("multiclass_classifier")
    labels = np.array(["cat", "dog", "emu"], dtype=object)[data.y_train]
    with pytest.raises(InvalidInput) as info:
        _fit(name, "multiclass_classifier", data.X_train, labels)
    message = str(info.value)
    assert "must be integers 0..k-1 for a multiclass classifier; got 'emu' at row 0" in message
    assert "Encode them first" in message


@pytest.mark.parametrize("name", NAMES)
def test_binary_labels_must_be_0_or_1(name: str) -> None:
    data = conformance_data("binary_classifier")
    y = data.y_train * 2  # 0/2
    with pytest.raises(InvalidInput, match=r"must be 0 or 1 for a binary classifier; got 2 at row"):
        _fit(name, "binary_classifier", data.X_train, y)


@pytest.mark.parametrize("name", NAMES)
def test_a_single_class_is_refused(name: str) -> None:
    data = conformance_data("binary_classifier")
    with pytest.raises(InvalidInput, match=r"single class \(1\)"):
        _fit(name, "binary_classifier", data.X_train, np.ones(len(data.y_train)))


@pytest.mark.parametrize("name", NAMES)
def test_missing_labels_are_refused(name: str) -> None:
    data = conformance_data("regressor")
    y = data.y_train.astype(float)
    y[[4, 9]] = np.nan
    with pytest.raises(
        InvalidInput, match=r"2 train label\(s\) .* missing \(NaN\), the first at row 4"
    ):
        _fit(name, "regressor", data.X_train, y)


@pytest.mark.parametrize("name", NAMES)
def test_validation_classes_must_be_known(name: str) -> None:
    data = conformance_data("multiclass_classifier")
    keep = data.y_train < 2
    validation = InMemorySource(data.X_valid, np.full(len(data.y_valid), 2))
    with pytest.raises(InvalidInput, match="validation labels"):
        _fit(name, "multiclass_classifier", data.X_train[keep], data.y_train[keep], validation)


@pytest.mark.parametrize("name", NAMES)
def test_predict_checks_the_feature_count_and_shape(name: str) -> None:
    data = conformance_data("binary_classifier")
    algorithm = _fit(name, "binary_classifier", data.X_train, data.y_train)
    with pytest.raises(InvalidInput, match="trained on 30 features but got rows with 29"):
        algorithm.predict(data.X_test[:, 1:])
    with pytest.raises(InvalidInput, match=r"X.reshape\(1, -1\)"):
        algorithm.predict(data.X_test[0])
    with pytest.raises(InvalidInput, match="must be numbers"):
        algorithm.predict([["a"] * 30])
    single = algorithm.predict(data.X_test[0].tolist() and [data.X_test[0].tolist()])
    assert single.values.shape == (1,)


@pytest.mark.parametrize("name", NAMES)
def test_an_untrained_model_says_so(name: str) -> None:
    cls = get_algorithm(name)
    with pytest.raises(InvalidInput, match="not trained"):
        cls(example_hyperparameters(cls, "regressor")).predict(np.zeros((1, 3)))


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_trees_take_missing_values(name: str) -> None:
    data = conformance_data("binary_classifier")
    X = data.X_train.copy()
    X[::7, 3] = np.nan
    algorithm = _fit(name, "binary_classifier", X, data.y_train)
    assert np.isfinite(algorithm.predict(np.full((2, 30), np.nan)).values).all()


def test_linear_learner_refuses_missing_values() -> None:
    data = conformance_data("binary_classifier")
    X = data.X_train.copy()
    X[5, 2] = np.nan
    with pytest.raises(InvalidInput, match="row 5, column 2"):
        _fit("linear-learner", "binary_classifier", X, data.y_train)


@pytest.mark.parametrize(
    ("name", "objective", "labels"),
    [
        ("xgboost", {"objective": "count:poisson"}, -1.0),
        ("xgboost", {"objective": "reg:gamma"}, 0.0),
        ("xgboost", {"objective": "reg:logistic"}, 3.0),
        ("lightgbm", {"objective": "poisson"}, -1.0),
        ("lightgbm", {"objective": "gamma"}, 0.0),
    ],
)
def test_objectives_check_their_label_range(
    name: str, objective: dict[str, str], labels: float
) -> None:
    data = conformance_data("regressor")
    y = np.abs(data.y_train) + 1
    y[3] = labels
    with pytest.raises(InvalidInput, match="objective"):
        _fit(name, "regressor", data.X_train, y, **objective)


def test_xgboost_early_stopping_needs_validation() -> None:
    data = conformance_data("binary_classifier")
    with pytest.raises(InvalidInput, match="no validation channel"):
        _fit("xgboost", "binary_classifier", data.X_train, data.y_train, early_stopping_rounds=3)


# ---------------------------------------------------------------------- artifacts
@pytest.fixture
def saved(tmp_path: Path) -> dict[str, Path]:
    data = conformance_data("binary_classifier")
    out = {}
    for name in NAMES:
        _fit(name, "binary_classifier", data.X_train, data.y_train).save(tmp_path / name)
        out[name] = tmp_path / name
    return out


def test_metadata_says_what_the_model_is(saved: dict[str, Path]) -> None:
    meta = json.loads((saved["xgboost"] / "sagelab-model.json").read_text())
    assert meta["algorithm"] == "xgboost"
    assert meta["problem_type"] == "binary_classifier"
    assert meta["num_classes"] == 2
    assert meta["feature_names"] == [f"f{i}" for i in range(30)]
    assert meta["hyperparameters"]["objective"] == "binary:logistic"
    assert set(meta["versions"]) >= {"sagelab", "numpy", "xgboost"}
    assert set(meta["sha256"]) == {"model.ubj"}
    assert sorted(p.name for p in saved["lightgbm"].iterdir()) == [
        "model.txt",
        "sagelab-model.json",
    ]
    assert sorted(p.name for p in saved["linear-learner"].iterdir()) == [
        "bias.npy",
        "sagelab-model.json",
        "weights.npy",
    ]


def test_a_model_loads_only_with_its_own_algorithm(saved: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput, match="saved by 'xgboost', not 'lightgbm'"):
        get_algorithm("lightgbm").load(saved["xgboost"])
    with pytest.raises(NotFound, match="no sagelab model"):
        get_algorithm("xgboost").load(saved["xgboost"] / "nowhere")


def test_a_newer_format_is_refused(saved: dict[str, Path]) -> None:
    path = saved["xgboost"] / "sagelab-model.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(InvalidInput, match="Upgrade sagelab"):
        get_algorithm("xgboost").load(saved["xgboost"])


class _Canary:
    fired = False

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_fire, ())


def _fire() -> None:
    _Canary.fired = True


def test_linear_learner_never_unpickles_even_with_a_matching_checksum(
    saved: dict[str, Path],
) -> None:
    """An attacker who can write the folder can fix the checksum; allow_pickle=False still holds."""
    import hashlib

    directory = saved["linear-learner"]
    np.save(directory / "weights.npy", np.array([_Canary()], dtype=object), allow_pickle=True)
    meta_path = directory / "sagelab-model.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"]["weights.npy"] = hashlib.sha256(
        (directory / "weights.npy").read_bytes()
    ).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="never unpickles"):
        get_algorithm("linear-learner").load(directory)
    assert not _Canary.fired


def test_edited_hyperparameters_in_metadata_are_validated(saved: dict[str, Path]) -> None:
    path = saved["lightgbm"] / "sagelab-model.json"
    meta = json.loads(path.read_text())
    meta["hyperparameters"]["num_leaves"] = -5
    path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="num_leaves"):
        get_algorithm("lightgbm").load(saved["lightgbm"])
