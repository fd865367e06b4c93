"""random-cut-forest's scoring compiled with Numba: one loop per row and tree.

The NumPy path (:class:`sagelab.algorithms._rcf_forest._Tree`) moves every row of a
chunk one tree level per step, so each level gathers each row's node box into
temporary arrays: NumPy's gathers, not the arithmetic, set its pace. Compiled, a row
walks down a tree reading one node's box straight from the forest's arrays, with no
temporaries.

The arithmetic is the NumPy path's, in the same order (a box's sum of distances over
the features one after the other, the node's sum of ranges computed once by NumPy, a
row's total over the trees in tree order, no fused multiply-adds), so both paths give
the same scores: bit for bit on chunks of several rows (NumPy sums a one-row chunk's
distances pairwise, which can change a last bit); the tests hold them to 1e-12 on
real data. Letting Numba reorder the sum (``fastmath={"reassoc"}``) would vectorise it,
about 1.4 times faster on the benchmark's rows, at the price of those last bits: then
installing Numba would change a trained model's threshold, so it is not done.

Importing this module imports Numba (the ``fast`` extra) and loads the kernel,
compiling it only when Numba's on-disk cache (``__pycache__`` beside this file, or
``NUMBA_CACHE_DIR``) has no copy for this machine yet. The kernel releases the GIL
(``nogil``): :meth:`sagelab.algorithms._rcf_forest.Forest.score` runs chunks of rows on
its own threads, as many as the algorithm's prediction threads, rather than through
``parallel=True``: Numba's default threading layer (``workqueue``, the one its wheels
always ship) cannot run from several threads at once, not every layer survives a fork
(sagelab's job processes are forked), and an endpoint's worker asks for one thread.
"""

from __future__ import annotations

import numpy as np

from sagelab._imports import require

__all__ = ["add_scores"]

_numba = require("numba", "random-cut-forest's compiled scoring", "numba", "fast")

#: Rows, tree roots, per-node columns (left, dim, cut, joined, separated gain, span),
#: the boxes' lower and upper corners (nodes × features), and the rows' totals.
_SIGNATURE = (
    "void(float64[:, ::1], int64[::1], int64[::1], int64[::1], float64[::1], float64[::1], "
    "float64[::1], float64[::1], float64[:, ::1], float64[:, ::1], float64[::1])"
)


@_numba.njit(_SIGNATURE, cache=True, nogil=True)
def add_scores(
    X: np.ndarray,
    roots: np.ndarray,
    left: np.ndarray,
    dim: np.ndarray,
    cut: np.ndarray,
    joined: np.ndarray,
    separated_gain: np.ndarray,
    span: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    total: np.ndarray,
) -> None:
    """Add each row's expected CoDisp in every tree (in tree order) to ``total``.

    Args:
        X: the rows (rows × features); every feature index in ``dim`` must be below
            the number of features (the forest was checked to fit them).
        roots: the first node of each tree; its nodes end where the next tree begins.
        left: each node's left child (the right one is next), -1 at leaves.
        dim: each node's cut dimension (0 at leaves, where it is not read).
        cut: each node's cut value: a row goes left when its value is <= the cut.
        joined: the CoDisp of a row that joins a leaf's identical points (0 inside).
        separated_gain: how much more the CoDisp is when the row is separated at the node.
        span: the sum of the ranges of each node's box.
        lower: the lower corner of each node's box.
        upper: the upper corner.
        total: each row's running sum over the trees.
    """
    rows, features = X.shape
    for t in range(roots.shape[0]):
        # Tree after tree: one tree's nodes stay in the CPU's caches over all the rows.
        root = roots[t]
        for i in range(rows):
            node = root
            remain = 1.0  # the probability of not having been separated above
            acc = 0.0
            while True:
                outside = 0.0  # how far the row lies outside the node's box
                for k in range(features):
                    x = X[i, k]
                    d = max(max(lower[node, k] - x, x - upper[node, k]), 0.0)
                    outside += d
                s = span[node] + outside
                if s == 0.0:
                    s = 1.0  # a point box and a row on it: p = 0 / 1
                p = outside / s  # separated here; at a leaf, 1 or 0 (it joins)
                gain = separated_gain[node] * p
                gain += joined[node]
                gain *= remain
                acc += gain
                child = left[node]
                if child < 0:
                    break
                remain *= 1.0 - p
                node = child + (1 if X[i, dim[node]] > cut[node] else 0)
            total[i] += acc
