"""random-cut-forest: the paper's trees and scores, reservoirs, threshold, metrics, quality."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from sagelab.algorithms import InMemorySource, get_algorithm
from sagelab.algorithms._rcf_forest import (
    CUT,
    DIM,
    LEFT,
    MASS,
    TREE,
    Forest,
    Reservoirs,
    build_forest,
)
from sagelab.algorithms.testing import RecordingCallbacks, conformance_data
from sagelab.errors import InvalidInput

RCF = get_algorithm("random-cut-forest")


# ---------------------------------------------------------------------- a reference
# The paper's definitions, computed the slow way on a pointer tree: insert the point
# (each outcome of the random cut, with its probability), then for every subtree C
# that holds it, remove C and count how much the other points' depths change.
def _pointer_tree(nodes: np.ndarray, i: int) -> dict[str, Any]:
    left = int(nodes[i, LEFT])
    if left < 0:
        return {"count": int(nodes[i, MASS])}
    return {"kids": [_pointer_tree(nodes, left), _pointer_tree(nodes, left + 1)]}


def _size(t: dict[str, Any]) -> int:
    return t["count"] if "count" in t else sum(_size(k) for k in t["kids"])


def _complexity(t: dict[str, Any], depth: int = 0) -> int:
    """The sum of the depths of the points (a leaf's points all at its depth)."""
    if "count" in t:
        return int(t["count"]) * depth
    return sum(_complexity(k, depth + 1) for k in t["kids"])


def _without(t: dict[str, Any], gone: dict[str, Any]) -> dict[str, Any]:
    """The tree with subtree ``gone`` deleted: its parent is replaced by its sibling."""
    if "count" in t:
        return t
    a, b = t["kids"]
    if a is gone:
        return b
    if b is gone:
        return a
    return {"kids": [_without(a, gone), _without(b, gone)]}


def _replaced(t: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if t is old:
        return new
    if "count" in t:
        return t
    return {"kids": [_replaced(k, old, new) for k in t["kids"]]}


def _path(t: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]] | None:
    if t is target:
        return [t]
    for kid in t.get("kids", []):
        below = _path(kid, target)
        if below:
            return [t, *below]
    return None


def _codisp(root: dict[str, Any], leaf: dict[str, Any]) -> float:
    path = _path(root, leaf)
    assert path is not None
    best = 0.0
    for depth, C in enumerate(path):
        if depth == 0:
            continue
        others_before = _complexity(root) - _complexity(C, depth)
        others_after = _complexity(_without(root, C))
        best = max(best, (others_before - others_after) / _size(C))
    return best


def _expected_codisp(forest: Forest, root: int, x: np.ndarray) -> float:
    tree = _pointer_tree(forest.nodes, root)
    i, t = root, tree
    remain, total = 1.0, 0.0
    while True:
        lo, hi = forest.lower[i], forest.upper[i]
        e = float(np.sum(np.maximum(lo - x, 0) + np.maximum(x - hi, 0)))
        s = float(np.sum(hi - lo)) + e
        p = e / s if s > 0 else 0.0
        if p > 0:  # the insertion cuts x off here: a new leaf beside this subtree
            leaf: dict[str, Any] = {"count": 1}
            total += remain * p * _codisp(_replaced(tree, t, {"kids": [t, leaf]}), leaf)
        if "count" in t:
            if p == 0:  # x equals the leaf's points and joins them
                t["count"] += 1
                total += remain * _codisp(tree, t)
            return total
        remain *= 1 - p
        right = x[int(forest.nodes[i, DIM])] > forest.nodes[i, CUT]
        i = int(forest.nodes[i, LEFT]) + int(right)
        t = t["kids"][int(right)]


def _roots(forest: Forest) -> np.ndarray:
    return np.searchsorted(forest.nodes[:, TREE], np.arange(forest.num_trees))


def test_rcf_scores_are_the_papers_expected_collusive_displacement() -> None:
    rng = np.random.default_rng(3)
    samples = np.round(rng.normal(size=(3, 24, 2)), 1)
    samples[:, 5] = samples[:, 6]  # identical points share a leaf
    forest = build_forest(samples, np.random.default_rng(1))
    queries = np.vstack(
        [samples[0, :6], rng.normal(size=(6, 2)) * 3, samples[1, 6:7], [[40.0, -40.0]]]
    )
    expected = [
        np.mean([_expected_codisp(forest, int(r), q) for r in _roots(forest)]) for q in queries
    ]
    np.testing.assert_allclose(forest.score(queries), expected, rtol=1e-12)
    np.testing.assert_allclose(forest.score(queries, compiled=False), expected, rtol=1e-12)


def test_rcf_trees_hold_the_bounding_boxes_and_counts_of_their_points() -> None:
    rng = np.random.default_rng(0)
    samples = np.round(rng.normal(size=(4, 50, 3)), 1)
    forest = build_forest(samples, np.random.default_rng(0))
    forest.check(4, 3)
    for tree, root in enumerate(_roots(forest)):
        reached: dict[int, list[np.ndarray]] = {}
        for point in samples[tree]:
            i = int(root)
            while True:
                reached.setdefault(i, []).append(point)
                if forest.nodes[i, LEFT] < 0:
                    break
                right = point[int(forest.nodes[i, DIM])] > forest.nodes[i, CUT]
                i = int(forest.nodes[i, LEFT]) + int(right)
        for i, points in reached.items():
            P = np.array(points)
            np.testing.assert_array_equal(forest.lower[i], P.min(axis=0))
            np.testing.assert_array_equal(forest.upper[i], P.max(axis=0))
            assert forest.nodes[i, MASS] == len(points)
            if forest.nodes[i, LEFT] < 0:
                assert (P[0] == P).all()  # a leaf holds identical points only


def test_rcf_cut_dimensions_are_drawn_in_proportion_to_their_range() -> None:
    rng = np.random.default_rng(0)
    trees = 4000
    samples = rng.uniform(size=(trees, 8, 2)) * np.array([3.0, 1.0])
    forest = build_forest(samples, np.random.default_rng(1))
    roots = _roots(forest)
    ranges = samples.max(axis=1) - samples.min(axis=1)
    expected_share = float(np.mean(ranges[:, 0] / ranges.sum(axis=1)))
    share = float(np.mean(forest.nodes[roots, DIM] == 0))
    sd = np.sqrt(expected_share * (1 - expected_share) / trees)
    assert abs(share - expected_share) < 5 * sd
    # The cut value is uniform within the chosen range: about half fall below its middle.
    dims = forest.nodes[roots, DIM].astype(int)
    lo, hi = forest.lower[roots, dims], forest.upper[roots, dims]
    relative = (forest.nodes[roots, CUT] - lo) / (hi - lo)
    assert ((relative >= 0) & (relative < 1)).all()
    assert abs(float(np.mean(relative < 0.5)) - 0.5) < 5 * np.sqrt(0.25 / trees)


def test_rcf_reservoirs_are_uniform_and_independent_of_batches() -> None:
    rows, size, trees = 100, 10, 3000
    X = np.arange(rows, dtype=np.float64)[:, None]
    whole = Reservoirs(trees, size, 1, np.random.default_rng(5))
    whole.add(X)
    pieces = Reservoirs(trees, size, 1, np.random.default_rng(5))
    for start, stop in ((0, 3), (3, 40), (40, 41), (41, rows)):
        pieces.add(X[start:stop])
    np.testing.assert_array_equal(whole.samples(), pieces.samples())
    counts = np.bincount(whole.samples()[..., 0].astype(int).ravel(), minlength=rows)
    p = size / rows  # every row is in a tree's sample with this probability
    sd = np.sqrt(trees * p * (1 - p))
    assert np.abs(counts - trees * p).max() < 5 * sd
    few = Reservoirs(2, size, 1, np.random.default_rng(0))
    few.add(X[:4])
    assert few.samples().shape == (2, 4, 1)  # fewer rows than the sample size: all of them


def _fit(X: np.ndarray, y: np.ndarray | None = None, seed: int = 0, **hp: Any) -> Any:
    model = RCF({"num_trees": 50, "num_samples_per_tree": 64, **hp}, seed=seed)
    model.fit(InMemorySource(X, y), None, RecordingCallbacks())
    return model


def test_rcf_threshold_is_the_training_mean_plus_three_deviations() -> None:
    data = conformance_data("anomaly_detection")
    model = _fit(data.X_train)
    scores = model.predict(data.X_train).values
    assert model.threshold == pytest.approx(scores.mean() + 3 * scores.std(), rel=1e-9)
    test = model.predict(data.X_test)
    np.testing.assert_array_equal(test.labels, (test.values > model.threshold).astype(int))


def test_rcf_metrics_against_labels_match_scikit_learn() -> None:
    data = conformance_data("anomaly_detection")
    model = _fit(data.X_train)
    flags = model.predict(data.X_test).labels
    metrics = model.evaluate(InMemorySource(data.X_test, data.y_test), "test")
    assert metrics == pytest.approx(
        {
            "test:f1": f1_score(data.y_test, flags, zero_division=0),
            "test:precision": precision_score(data.y_test, flags, zero_division=0),
            "test:recall": recall_score(data.y_test, flags, zero_division=0),
        }
    )
    assert model.evaluate(InMemorySource(data.X_test), "test") == {}  # no labels, no metrics
    with pytest.raises(InvalidInput, match="0 or 1"):
        model.evaluate(InMemorySource(data.X_test, np.full(len(data.X_test), 2)), "test")


def test_rcf_validation_metrics_are_logged_when_the_channel_is_labelled() -> None:
    data = conformance_data("anomaly_detection")
    model = RCF({"num_trees": 50, "num_samples_per_tree": 64})
    callbacks = RecordingCallbacks()
    model.fit(data.train(), InMemorySource(data.X_test, data.y_test), callbacks)
    assert {n for n, _, _ in callbacks.metrics} == {
        "validation:f1",
        "validation:precision",
        "validation:recall",
    }


def test_rcf_ignores_training_labels() -> None:
    data = conformance_data("anomaly_detection")
    plain = _fit(data.X_train).predict(data.X_test)
    labelled = _fit(data.X_train, np.ones(len(data.X_train))).predict(data.X_test)
    np.testing.assert_array_equal(plain.values, labelled.values)


@pytest.mark.parametrize("compiled", [False, None], ids=["numpy", "default"])
def test_rcf_scores_alike_in_any_chunks_and_threads(compiled: bool | None) -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(5, 32, 3))
    forest = build_forest(samples, np.random.default_rng(0))
    X = np.vstack([rng.normal(size=(300, 3)), samples[0, :4]])
    whole = forest.score(X, compiled=compiled)
    np.testing.assert_array_equal(
        whole, forest.score(X, threads=3, chunk_rows=37, compiled=compiled)
    )
    order = rng.permutation(len(X))
    np.testing.assert_array_equal(
        whole[order], forest.score(X[order], chunk_rows=50, compiled=compiled)
    )


def test_rcf_more_samples_and_another_seed_change_the_forest() -> None:
    data = conformance_data("anomaly_detection")
    base = _fit(data.X_train).predict(data.X_test).values
    assert not np.array_equal(base, _fit(data.X_train, seed=1).predict(data.X_test).values)
    bigger = _fit(data.X_train, num_samples_per_tree=200)
    assert bigger.predict(data.X_test).values.max() > base.max()  # CoDisp grows with the sample


def test_rcf_refuses_a_wrong_feature_dim_and_sparse_rows() -> None:
    from scipy import sparse

    data = conformance_data("anomaly_detection")
    with pytest.raises(InvalidInput, match="feature_dim"):
        _fit(data.X_train, feature_dim=3)
    model = _fit(data.X_train, feature_dim=data.X_train.shape[1])
    with pytest.raises(InvalidInput, match="sparse"):
        model.predict(sparse.csr_matrix(data.X_test))
    with pytest.raises(InvalidInput, match="not trained"):
        RCF().predict(data.X_test)


def test_rcf_forest_check_refuses_edited_structure() -> None:
    forest = build_forest(
        np.random.default_rng(0).normal(size=(2, 10, 2)), np.random.default_rng(0)
    )
    forest.check(2, 2)
    looping = forest.nodes.copy()
    inner = np.flatnonzero(looping[:, LEFT] >= 0)[1]
    looping[inner, LEFT] = 0  # a child pointing back up would loop forever
    with pytest.raises(InvalidInput, match="valid forest"):
        Forest(looping, forest.lower, forest.upper).check(2, 2)
    with pytest.raises(InvalidInput, match="valid forest"):
        forest.check(3, 2)


def test_rcf_saved_model_records_the_threshold(tmp_path: Path) -> None:
    data = conformance_data("anomaly_detection")
    model = _fit(data.X_train)
    model.save(tmp_path / "m")
    loaded = RCF.load(tmp_path / "m")
    assert loaded.threshold == model.threshold
    np.testing.assert_array_equal(
        loaded.predict(data.X_test).values, model.predict(data.X_test).values
    )


# ---------------------------------------------------------------------- quality on real data
def _mitdb() -> Path:
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sktime is not installed (pip install --no-deps sktime): no MIT-BIH data")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/mitdb/mitdb.csv"
    if not path.is_file():
        pytest.skip(f"sktime ships no MIT-BIH sample at {path}")
    return path


def test_rcf_finds_the_irregular_heartbeat_in_mit_bih() -> None:
    """MIT-BIH ECG (360 Hz, 7,500 samples, one labelled arrhythmia of 352 samples).

    Rows are shingles, as SageMaker's examples feed time series: 2.5 s of signal
    (about three beats) averaged over 1/6 s steps, so 15 features. Trained with
    SageMaker's defaults on the first half (no anomaly), scored on the second half.
    """
    import pandas as pd
    from numpy.lib.stride_tricks import sliding_window_view

    table = pd.read_csv(_mitdb())
    signal, labels = table["data"].to_numpy(), table["label"].to_numpy()
    step, width, split = 60, 900, 4000
    smooth = np.convolve(signal, np.ones(step) / step, mode="same")
    shingles = sliding_window_view(smooth, width)[:, ::step]
    centre = labels[width // 2 : width // 2 + shingles.shape[0]]
    train, held_out = slice(0, split - width), slice(split - width // 2, None)
    assert centre[train].sum() == 0 and centre[held_out].sum() > 0
    model = RCF()  # num_trees=100, num_samples_per_tree=256
    model.fit(InMemorySource(shingles[train]), None, RecordingCallbacks())
    scores = model.predict(shingles[held_out]).values
    auc = roc_auc_score(centre[held_out], scores)
    assert auc >= 0.85, f"random-cut-forest AUC {auc:.3f} on MIT-BIH"
