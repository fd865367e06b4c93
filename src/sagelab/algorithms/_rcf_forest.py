"""The robust random cut forest of Guha et al. (2016), as flat NumPy arrays.

Written here because no maintained Python library implements it: ``rrcf`` builds and
scores one point at a time through Python recursion (far too slow for batches of
100,000 rows), scikit-learn's ``IsolationForest`` picks cut dimensions uniformly and
scores by path length, which is another algorithm, and AWS's own implementation is
in Java.

The forest follows the paper:

* each tree is built on a sample of the data (reservoir samples, :class:`Reservoirs`);
* a node's cut dimension is drawn with probability proportional to its range in the
  node's bounding box, and the cut value uniformly within that range (one uniform
  draw over the sum of the ranges gives both, as in the paper);
* a point's anomaly score is its collusive displacement (CoDisp): the change in the
  model's complexity (the sum of the depths of the other points) when the point is
  inserted, per point of the set that colludes with it, maximised over those sets.

A query point is scored as if it were inserted into each tree and then removed. The
paper's insertion separates the point from a node's subtree with probability
``e / (s + e)``, where ``s`` is the sum of the node's box ranges and ``e`` the sum of
the distances by which the point lies outside the box; otherwise it follows the cut.
Separated at node ``v`` of mass ``m_v``, the point's CoDisp is
``max(m_v, max_u (m_parent(u) - m_u) / (m_u + 1))`` over ``v`` and its ancestors
``u`` below the root; reaching a leaf of identical points it joins them, with the
same maximum over the leaf and its ancestors. The score is the expectation of CoDisp
over those choices, computed exactly (no sampling), averaged over the trees. Higher
is more anomalous.

Building runs level by level: one set of NumPy operations handles every node of a
level of every tree, so Python loops over depth, never over points. Scoring is
compiled when Numba is installed (the ``fast`` extra; :mod:`sagelab.algorithms._rcf_kernel`,
one loop per row and tree) and otherwise runs level by level in NumPy: every row of a
chunk still descending a tree moves one level per step (tree after tree, so the tree's
arrays stay in the CPU's caches). Both give the same scores to float rounding.
"""

from __future__ import annotations

import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import pairwise
from types import ModuleType
from typing import NamedTuple

import numpy as np

from sagelab.errors import InvalidInput

__all__ = ["Forest", "Reservoirs", "build_forest"]

#: Columns of :attr:`Forest.nodes`.
_COLUMNS = ("left", "right", "dim", "cut", "mass", "collusive", "tree")
LEFT, RIGHT, DIM, CUT, MASS, COLLUSIVE, TREE = range(len(_COLUMNS))
#: Rows scored together, tree by tree: a level's arrays stay in the CPU's caches.
_SCORE_ROWS = 8192
#: The same for the compiled kernel: a chunk's rows stay in the CPU's caches too.
_COMPILED_ROWS = 2048
_KERNEL = "sagelab.algorithms._rcf_kernel"

_log = logging.getLogger(__name__)


@cache
def _installed_kernel() -> ModuleType | None:
    """The compiled kernel, or None when Numba is missing or unusable (tried once)."""
    try:
        return importlib.import_module(_KERNEL)
    except ImportError as exc:
        _log.debug("random-cut-forest scores with NumPy: %s", exc)
        return None


def _kernel(compiled: bool | None) -> ModuleType | None:
    """The kernel to score with: None for the NumPy path.

    Raises:
        ImportError: ``compiled`` is True and Numba is not installed (says how to install it).
    """
    if compiled is False:
        return None
    kernel = _installed_kernel()
    if kernel is None and compiled:
        return importlib.import_module(_KERNEL)  # raises the install hint again
    return kernel


class Reservoirs:
    """One uniform sample of ``size`` rows per tree, kept while rows stream past.

    Algorithm R (Vitter, 1985) for every tree at once: row ``t`` (counted from 0 over
    the whole stream) draws ``j`` uniformly in ``[0, t]`` for each tree and replaces
    slot ``j`` when ``j < size``. One uniform draw per (row, tree), in row order, so
    the samples do not depend on how the stream is cut into batches.

    Args:
        trees: how many samples to keep.
        size: rows per sample.
        num_features: features per row.
        rng: the random generator (its draws decide the samples).
    """

    def __init__(self, trees: int, size: int, num_features: int, rng: np.random.Generator) -> None:
        self.trees, self.size = int(trees), int(size)
        self.points = np.zeros((self.trees, self.size, int(num_features)))
        self.seen = 0
        self._rng = rng

    def add(self, X: np.ndarray) -> None:
        """Offer the rows of ``X`` (in order) to every sample."""
        b = X.shape[0]
        t = self.seen + np.arange(b)
        slot = np.floor(self._rng.random((b, self.trees)) * (t + 1)[:, None]).astype(np.int64)
        filling = t < self.size
        slot[filling] = t[filling, None]
        rows, trees = np.nonzero(slot < self.size)
        slots = slot[rows, trees]
        # Within a batch, the last row to land in a slot is the one the sequential
        # algorithm would keep.
        key = (trees * self.size + slots)[::-1]
        _, first = np.unique(key, return_index=True)
        last = key.size - 1 - first
        self.points[trees[last], slots[last]] = X[rows[last]]
        self.seen += b

    def samples(self) -> np.ndarray:
        """The samples, ``trees × min(size, rows seen) × features``."""
        return self.points[:, : min(self.size, self.seen)]


@dataclass(frozen=True)
class Forest:
    """Trees as flat arrays, one tree after the other, each in breadth-first order.

    Attributes:
        nodes: one row per node: left child (-1 at leaves; the right child is the next
            node), right child (-1 at leaves), cut dimension (-1 at leaves), cut value
            (a row goes left when its value is <= the cut), mass (sample points under
            the node), the largest collusive ratio ``(m_parent(u) - m_u) / (m_u + 1)``
            over the node and its ancestors below the root, and the tree it belongs to.
        lower: the lower corner of each node's bounding box (nodes × features).
        upper: the upper corner.
    """

    nodes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def num_trees(self) -> int:
        return int(self.nodes[-1, TREE]) + 1

    @property
    def num_features(self) -> int:
        return int(self.lower.shape[1])

    def check(self, num_trees: int, num_features: int) -> None:
        """Refuse arrays that are not a forest :func:`build_forest` made (an edited file).

        Raises:
            InvalidInput: shapes, indices, dimensions or boxes that do not fit together.
        """
        nodes, n = self.nodes, self.nodes.shape[0] if self.nodes.ndim == 2 else 0
        ok = (
            n > 0
            and nodes.shape[1] == len(_COLUMNS)
            and self.lower.shape == self.upper.shape == (n, num_features)
            and bool(np.isfinite(nodes).all())
            and bool(np.isfinite(self.lower).all() and np.isfinite(self.upper).all())
            and bool((self.lower <= self.upper).all())
            and bool(
                (
                    nodes[:, [LEFT, RIGHT, DIM, TREE]]
                    == np.round(nodes[:, [LEFT, RIGHT, DIM, TREE]])
                ).all()
            )
        )
        if ok:
            ids = np.arange(n)
            left, right, dim, tree = (
                nodes[:, c].astype(np.int64) for c in (LEFT, RIGHT, DIM, TREE)
            )
            inner = left >= 0
            first = np.r_[True, tree[1:] != tree[:-1]]
            ok = (
                int(first.sum()) == num_trees
                and bool((tree[first] == np.arange(num_trees)).all())
                and bool((np.diff(tree) >= 0).all())
                and bool(((right < 0) != inner).all() and ((dim < 0) != inner).all())
                and bool((right[inner] == left[inner] + 1).all())
                # Children come after their parent, in its tree: every descent ends.
                and bool((left[inner] > ids[inner]).all() and (right[inner] < n).all())
                and bool((tree[np.minimum(right[inner], n - 1)] == tree[inner]).all())
                and bool((dim[inner] < num_features).all())
                and bool((nodes[:, MASS] >= 1).all())
            )
        if not ok:
            raise InvalidInput(
                "The random-cut-forest model files do not hold a valid forest of "
                f"{num_trees} trees over {num_features} features; save the model again."
            )

    @cached_property
    def _layout(self) -> _Layout:
        """The nodes laid out for scoring, made once per forest (a request may score one row).

        Native float64 and int64 throughout, whatever the loaded files held: the
        compiled kernel takes those types only.
        """
        nodes = np.asarray(self.nodes, dtype=np.float64)
        inner = nodes[:, LEFT] >= 0
        collusive = nodes[:, COLLUSIVE]
        # CoDisp when the row is separated at the node, and when it joins a leaf's
        # identical points (0 at inner nodes, where that cannot happen).
        joined = np.where(inner, 0.0, collusive)
        lower = np.ascontiguousarray(self.lower, dtype=np.float64)
        upper = np.ascontiguousarray(self.upper, dtype=np.float64)
        tree = nodes[:, TREE].astype(np.int64)
        return _Layout(
            roots=np.searchsorted(tree, np.arange(self.num_trees + 1)).astype(np.int64),
            left=np.where(inner, nodes[:, LEFT], -1).astype(np.int64),
            dim=np.maximum(nodes[:, DIM], 0).astype(np.int64),
            cut=np.ascontiguousarray(nodes[:, CUT], dtype=np.float64),
            joined=joined,
            separated_gain=np.maximum(nodes[:, MASS], collusive) - joined,
            span=(upper - lower).sum(axis=1),
            lower=lower,
            upper=upper,
        )

    @cached_property
    def _trees(self) -> list[_Tree]:
        """The trees laid out for the NumPy path, made once per forest."""
        layout = self._layout
        return [_Tree(layout, int(a), int(b)) for a, b in pairwise(layout.roots.tolist())]

    def prepare(self) -> None:
        """Lay the forest out for scoring and load the compiled kernel (when Numba is
        installed) now, so that the first rows scored do not wait for either."""
        _ = self._layout if _kernel(None) is not None else self._trees

    def score(
        self,
        X: np.ndarray,
        threads: int = 1,
        chunk_rows: int | None = None,
        *,
        compiled: bool | None = None,
    ) -> np.ndarray:
        """The expected collusive displacement of each row, averaged over the trees.

        A row's score depends on that row alone: every step is element-wise per row,
        and a row's sum runs over the trees in order. Chunks of ``chunk_rows`` rows are
        scored on ``threads`` threads (the compiled kernel and NumPy's loops release
        the GIL).

        Args:
            X: the rows, ``rows × num_features``.
            threads: threads to score on (at most one per chunk).
            chunk_rows: rows per chunk (default: 2,048 compiled, 8,192 in NumPy).
            compiled: True for the compiled kernel (Numba needed), False for the NumPy
                path, None (the default) for the kernel when Numba is installed.

        Raises:
            InvalidInput: ``X`` is not a 2-D array of ``num_features`` columns.
            ImportError: ``compiled`` is True and Numba is not installed.
        """
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise InvalidInput(
                f"A random-cut-forest over {self.num_features} features scores rows of "
                f"{self.num_features} features; got an array of shape {X.shape}. Give rows "
                "with the features the model was trained on."
            )
        kernel = _kernel(compiled)
        rows = chunk_rows or (_COMPILED_ROWS if kernel is not None else _SCORE_ROWS)
        starts = range(0, X.shape[0], rows)
        out = np.empty(X.shape[0])
        layout = self._layout
        trees = self._trees if kernel is None else []
        if kernel is not None:
            X = np.ascontiguousarray(X, dtype=np.float64)

        def run(start: int) -> None:
            if kernel is not None:
                chunk = X[start : start + rows]
                total = np.zeros(chunk.shape[0])
                kernel.add_scores(chunk, layout.roots[:-1], *layout[1:], total)
            else:
                chunk = np.ascontiguousarray(X[start : start + rows].T)
                total = np.zeros(chunk.shape[1])
                for t in trees:
                    t.add_scores(chunk, total)
            out[start : start + total.size] = total / self.num_trees

        if threads <= 1 or len(starts) <= 1:
            for start in starts:
                run(start)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run, starts))
        return out


class _Layout(NamedTuple):
    """Per-node columns both scoring paths read, over the whole forest (node numbers
    are the forest's), in the compiled kernel's argument order after the rows.

    Attributes:
        roots: the first node of each tree, and the number of nodes last.
        left: left child, -1 at leaves (the right child is the next node).
        dim: cut dimension, 0 at leaves (not read there).
        cut: cut value.
        joined: CoDisp of a row that joins a leaf's identical points (0 inside).
        separated_gain: how much more the CoDisp is when the row is separated there.
        span: the sum of the ranges of the node's box.
        lower: the lower corners of the boxes (nodes × features).
        upper: the upper corners.
    """

    roots: np.ndarray
    left: np.ndarray
    dim: np.ndarray
    cut: np.ndarray
    joined: np.ndarray
    separated_gain: np.ndarray
    span: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


class _Tree:
    """One tree's arrays laid out for the NumPy path, with node numbers local to the tree."""

    def __init__(self, layout: _Layout, first: int, stop: int) -> None:
        left = layout.left[first:stop]
        self.left = np.where(left >= 0, left - first, -1)
        self.dim = layout.dim[first:stop]
        self.cut = layout.cut[first:stop]
        self.joined = layout.joined[first:stop]
        self.separated_gain = layout.separated_gain[first:stop]
        self.span = layout.span[first:stop]
        # Dimension-major: a level's gathers and sums run over contiguous rows.
        self.lower = np.ascontiguousarray(layout.lower[first:stop].T)
        self.upper = np.ascontiguousarray(layout.upper[first:stop].T)

    def add_scores(self, XT: np.ndarray, total: np.ndarray) -> None:
        """Add this tree's expected CoDisp of each row (columns of ``XT``) to ``total``.

        Every row still descending moves one level per step; rows that reached a
        leaf drop out, and their sums are added to ``total``.
        """
        C = XT.shape[1]
        flat = XT.ravel()
        rows = np.arange(C)
        node = np.zeros(C, dtype=np.int64)
        x = XT
        remain = np.ones(C)  # the probability of not having been separated above
        acc = np.zeros(C)
        while True:
            # How far the row lies outside the node's box, summed over dimensions.
            outside = np.take(self.lower, node, axis=1)
            outside -= x
            above = np.take(self.upper, node, axis=1)
            np.subtract(x, above, out=above)
            np.maximum(outside, above, out=outside)
            np.maximum(outside, 0.0, out=outside)
            p = outside.sum(axis=0)
            span = np.take(self.span, node)
            span += p
            span += span == 0  # a point box and a row on it: p = 0 / 1
            p /= span  # separated here: p = e / (s + e); at a leaf, 1 or 0 (it joins)
            gain = np.take(self.separated_gain, node)
            gain *= p
            gain += np.take(self.joined, node)
            gain *= remain
            acc += gain
            left = np.take(self.left, node)
            going = np.flatnonzero(left >= 0)
            if going.size < rows.size:
                done = np.flatnonzero(left < 0)
                total[np.take(rows, done)] += np.take(acc, done)
                if going.size == 0:
                    return
                rows, node, left = np.take(rows, going), np.take(node, going), np.take(left, going)
                x = np.take(XT, rows, axis=1)
                acc, p, remain = np.take(acc, going), np.take(p, going), np.take(remain, going)
            np.subtract(1.0, p, out=p)
            remain *= p
            value = np.take(flat, np.take(self.dim, node) * C + rows)
            node = left + (value > np.take(self.cut, node))


def build_forest(samples: np.ndarray, rng: np.random.Generator) -> Forest:
    """Random cut trees on ``samples`` (trees × points × features), all built level by level.

    A node whose points are all identical (or single) is a leaf; its mass counts them.
    """
    T, m, d = samples.shape
    points = samples.reshape(T * m, d)
    members = np.arange(T * m)  # point indices, grouped by active node in node order
    sizes = np.full(T, m, dtype=np.int64)
    tree = np.arange(T)
    parent_mass = np.zeros(T)
    parent_ratio = np.zeros(T)
    is_root = True
    next_id = T
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while sizes.size:
        K = sizes.size
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        P = points[members]
        lo = np.minimum.reduceat(P, starts, axis=0)
        hi = np.maximum.reduceat(P, starts, axis=0)
        ranges = hi - lo
        cumulative = np.cumsum(ranges, axis=1)
        split = cumulative[:, -1] > 0
        mass = sizes.astype(np.float64)
        ratio = (
            np.zeros(K)
            if is_root
            else np.maximum(parent_ratio, (parent_mass - mass) / (mass + 1.0))
        )
        # One draw over the summed ranges picks the dimension (in proportion to its
        # range) and the cut value within it.
        cs = cumulative[split]
        r = rng.random(cs.shape[0]) * cs[:, -1]
        chosen = (cs <= r[:, None]).sum(axis=1)
        last_positive = d - 1 - np.argmax(ranges[split][:, ::-1] > 0, axis=1)
        chosen = np.minimum(chosen, last_positive)
        rows = np.arange(chosen.size)
        before = np.where(chosen > 0, cs[rows, np.maximum(chosen - 1, 0)], 0.0)
        lo_s, hi_s = lo[split][rows, chosen], hi[split][rows, chosen]
        value = np.clip(lo_s + (r - before), lo_s, np.nextafter(hi_s, lo_s))

        node = np.full((K, len(_COLUMNS)), -1.0)
        node[:, CUT] = 0.0
        node[:, MASS] = mass
        node[:, COLLUSIVE] = ratio
        node[:, TREE] = tree
        left_ids = next_id + 2 * rows
        node[split, LEFT] = left_ids
        node[split, RIGHT] = left_ids + 1
        node[split, DIM] = chosen
        node[split, CUT] = value
        parts.append((node, lo, hi))
        next_id += 2 * chosen.size
        is_root = False

        # Partition each split node's points: left (<= cut) before right, stably.
        segment = np.repeat(np.arange(K), sizes)
        dims = np.zeros(K, dtype=np.int64)
        cuts = np.zeros(K)
        dims[split], cuts[split] = chosen, value
        keep = split[segment]
        members, segment = members[keep], segment[keep]
        goes_right = points[members, dims[segment]] > cuts[segment]
        members = members[np.lexsort((goes_right, segment))]
        n_right = np.bincount(segment, weights=goes_right, minlength=K).astype(np.int64)[split]
        sizes = np.column_stack((sizes[split] - n_right, n_right)).reshape(-1)
        tree = np.repeat(tree[split], 2)
        parent_mass = np.repeat(mass[split], 2)
        parent_ratio = np.repeat(ratio[split], 2)
    nodes = np.concatenate([p[0] for p in parts])
    lower = np.concatenate([p[1] for p in parts])
    upper = np.concatenate([p[2] for p in parts])
    # One tree after the other (a stable sort keeps each tree breadth-first and
    # siblings next to each other), so scoring a tree touches a small block of memory.
    order = np.argsort(nodes[:, TREE], kind="stable")
    renumber = np.empty(order.size)
    renumber[order] = np.arange(order.size)
    nodes = nodes[order]
    inner = nodes[:, LEFT] >= 0
    for column in (LEFT, RIGHT):
        nodes[inner, column] = renumber[nodes[inner, column].astype(np.int64)]
    return Forest(nodes, lower[order], upper[order])
