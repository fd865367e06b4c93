"""random-cut-forest's compiled scoring (Numba): the NumPy path's scores, faster.

The kernel must give the scores of the NumPy path to float rounding on real data,
leave training unchanged, stay optional (no Numba: the NumPy path, and a clear
message when the compiled path is asked for), and load from Numba's on-disk cache
in a second process instead of compiling again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from sagelab.algorithms import InMemorySource, get_algorithm
from sagelab.algorithms._rcf_forest import Forest, Reservoirs, build_forest
from sagelab.algorithms.testing import RecordingCallbacks
from sagelab.errors import InvalidInput

pytest.importorskip("numba", reason="the compiled path needs numba: pip install 'sagelab[fast]'")

RCF = get_algorithm("random-cut-forest")
#: Float rounding: the two paths may only differ in the last bits of a score.
RTOL = 1e-12


def _forest(X: np.ndarray, trees: int = 50, size: int = 128, seed: int = 0) -> Forest:
    rng = np.random.default_rng(seed)
    reservoirs = Reservoirs(trees, size, X.shape[1], rng)
    reservoirs.add(X)
    return build_forest(reservoirs.samples(), rng)


def _mitdb_shingles() -> np.ndarray:
    """MIT-BIH ECG as the RCF quality test shingles it (15 features a row)."""
    import pandas as pd
    from numpy.lib.stride_tricks import sliding_window_view

    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sktime is not installed (pip install --no-deps sktime): no MIT-BIH data")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets/data/mitdb/mitdb.csv"
    if not path.is_file():
        pytest.skip(f"sktime ships no MIT-BIH sample at {path}")
    signal = pd.read_csv(path)["data"].to_numpy()
    smooth = np.convolve(signal, np.ones(60) / 60, mode="same")
    return np.ascontiguousarray(sliding_window_view(smooth, 900)[:, ::60])


def _real_data(name: str) -> np.ndarray:
    if name == "wine":
        return load_wine().data
    if name == "breast_cancer":  # 30 features: sums longer than NumPy's unrolled blocks
        return load_breast_cancer().data
    if name == "diabetes":  # 10 features, as in the benchmark
        return load_diabetes().data
    if name == "digits":  # 64 pixels, many always 0: boxes of zero range, identical points
        return load_digits().data
    return _mitdb_shingles()


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "diabetes", "digits", "mit_bih"])
def test_compiled_scores_are_the_numpy_scores(name: str) -> None:
    X = _real_data(name)
    forest = _forest(X)
    rng = np.random.default_rng(1)
    # Training rows, rows beyond every box, and rows on a sampled point exactly.
    queries = np.vstack([X, X[:50] * 3.0 + rng.normal(size=(50, X.shape[1])), X[:5]])
    numpy_scores = forest.score(queries, compiled=False)
    compiled = forest.score(queries, compiled=True)
    assert compiled.shape == numpy_scores.shape
    assert np.isfinite(compiled).all()
    np.testing.assert_allclose(compiled, numpy_scores, rtol=RTOL, atol=0)


def test_compiled_scores_do_not_depend_on_chunks_threads_or_order() -> None:
    X = load_breast_cancer().data
    forest = _forest(X, trees=60, size=64, seed=3)
    whole = forest.score(X, compiled=True)
    # Each row is summed alone, in tree order: the same bits however rows are grouped.
    np.testing.assert_array_equal(whole, forest.score(X, threads=2, chunk_rows=37, compiled=True))
    one_by_one = np.concatenate([forest.score(X[i : i + 1], compiled=True) for i in range(20)])
    np.testing.assert_array_equal(whole[:20], one_by_one)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(whole[order], forest.score(X[order], compiled=True))


def test_training_gives_the_numpy_paths_threshold() -> None:
    """Fitting scores the train rows with the kernel; the threshold must be the one the
    NumPy path's scores give, and the forest itself does not depend on the scoring."""
    X = load_wine().data
    model = RCF({"num_trees": 50, "num_samples_per_tree": 64}, seed=4)
    model.fit(InMemorySource(X), None, RecordingCallbacks())
    forest = model._forest
    assert forest is not None
    scores = forest.score(X, compiled=False)
    assert model.threshold == pytest.approx(scores.mean() + 3 * scores.std(), rel=RTOL)
    np.testing.assert_allclose(model.predict(X).values, scores, rtol=RTOL, atol=0)
    again = RCF({"num_trees": 50, "num_samples_per_tree": 64}, seed=4)
    again.fit(InMemorySource(X), None, RecordingCallbacks())
    assert again._forest is not None
    np.testing.assert_array_equal(again._forest.nodes, forest.nodes)


def test_loaded_model_scores_with_the_kernel_ready(tmp_path: Path) -> None:
    X = load_wine().data
    model = RCF({"num_trees": 50, "num_samples_per_tree": 64}, seed=2)
    model.fit(InMemorySource(X), None, RecordingCallbacks())
    model.save(tmp_path / "m")
    loaded = RCF.load(tmp_path / "m")
    loaded.set_prediction_threads(1)  # as an endpoint's worker does
    assert loaded._forest is not None
    np.testing.assert_array_equal(loaded.predict(X).values, model.predict(X).values)
    np.testing.assert_allclose(
        loaded.predict(X[:3]).values, loaded._forest.score(X[:3], compiled=False), rtol=RTOL
    )


def test_forest_files_of_other_number_types_score_alike_in_both_paths() -> None:
    """Arrays read back as big-endian or float32 (a model written elsewhere) are laid out
    as the kernel's native float64 before it runs."""
    X = load_wine().data
    forest = _forest(X)
    other = Forest(forest.nodes.astype(">f8"), forest.lower.astype(">f8"), forest.upper)
    other.check(forest.num_trees, forest.num_features)
    np.testing.assert_array_equal(other.score(X), forest.score(X))
    narrow = Forest(forest.nodes, forest.lower.astype(np.float32), forest.upper)
    np.testing.assert_allclose(
        narrow.score(X, compiled=True), narrow.score(X, compiled=False), rtol=RTOL, atol=0
    )


def test_scoring_refuses_rows_of_another_width() -> None:
    X = load_wine().data
    forest = _forest(X)
    for compiled in (True, False):
        with pytest.raises(InvalidInput, match=r"13 features; got an array of shape \(4, 12\)"):
            forest.score(X[:4, :12], compiled=compiled)


def _run(script: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


_WITHOUT_NUMBA = """
import json, sys
sys.modules["numba"] = None  # as if numba were not installed
import numpy as np
from sklearn.datasets import load_wine
from sagelab.algorithms._rcf_forest import Reservoirs, build_forest
X = load_wine().data
rng = np.random.default_rng(0)
reservoirs = Reservoirs(50, 128, X.shape[1], rng)
reservoirs.add(X)
forest = build_forest(reservoirs.samples(), rng)
np.save({out!r}, forest.score(X))
try:
    forest.score(X[:2], compiled=True)
    message = ""
except ImportError as exc:
    message = str(exc)
print(json.dumps({{"message": message}}))
"""


def test_without_numba_the_numpy_path_scores(tmp_path: Path) -> None:
    out = tmp_path / "scores.npy"
    got = _run(_WITHOUT_NUMBA.format(out=str(out)))
    assert "pip install 'sagelab[fast]'" in str(got["message"])
    assert "numba" in str(got["message"])
    X = load_wine().data
    np.testing.assert_allclose(np.load(out), _forest(X).score(X, compiled=True), rtol=RTOL, atol=0)


_CACHE_PROBE = """
import json, sys
from sagelab.algorithms import get_algorithm
get_algorithm("random-cut-forest")
lazy = "numba" not in sys.modules
from sagelab.algorithms import _rcf_kernel
stats = _rcf_kernel.add_scores.stats
print(json.dumps({"lazy": lazy, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


@pytest.mark.slow
def test_a_second_process_loads_the_kernel_from_numbas_cache(tmp_path: Path) -> None:
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    first = _run(_CACHE_PROBE, env)
    second = _run(_CACHE_PROBE, env)
    assert first["lazy"] and second["lazy"]  # importing the algorithm does not import numba
    assert first == {"lazy": True, "hits": 0, "misses": 1}  # compiled once...
    assert second == {"lazy": True, "hits": 1, "misses": 0}  # ...and loaded after
