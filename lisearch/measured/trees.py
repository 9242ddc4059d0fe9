"""Tree ensembles as plain data: the node arrays of fitted scikit-learn trees, evaluated by numpy.

A fitted forest (``ExtraTreesRegressor``, ``ExtraTreesClassifier``, ``RandomForest*``) becomes one
:class:`TreeEnsemble`: the nodes of all its trees in flat arrays (``left``, ``right``, ``feature``,
``threshold``, ``value``) with the root of each tree in ``roots``. A row goes left at a node when
``x[feature] <= threshold`` (scikit-learn's rule); a leaf has ``left == right == -1``. The ensemble's output
(``aggregate="mean"``, scikit-learn's) is ``base + scale * sum over trees of value[leaf]``, so a forest is
``base = 0, scale = 1 / n_trees``; with ``aggregate="median"`` it is ``base + median over trees of value[leaf]``
(the median minimises the absolute error, where the mean minimises the squared one). The traversal is compiled
with numba (one core, no Python per row); :meth:`TreeEnsemble.predict_numpy` is the plain numpy oracle.

For a classifier ``value`` is the leaf's share of the positive class (weighted as in training), so the output is
scikit-learn's ``predict_proba(X)[:, 1]``. Nothing is pickled: :meth:`TreeEnsemble.to_payload` is JSON data.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from lisearch.errors import InputError

_ARRAYS = {"left": np.int32, "right": np.int32, "feature": np.int32, "threshold": np.float64, "value": np.float64}
AGGREGATES = ("mean", "median")


class TreeEnsemble:
    """Flat node arrays of a forest; :meth:`predict` is vectorised over rows and trees.

    Attributes:
        left, right: (nodes,) int32 global child indices, -1 at leaves.
        feature: (nodes,) int32 feature tested at a split (ignored at leaves).
        threshold: (nodes,) float64; a row goes left when ``x[feature] <= threshold``.
        value: (nodes,) float64 leaf output (regression value or positive-class share).
        roots: (n_trees,) int32 index of each tree's root.
        n_features: width of the feature matrix the ensemble was fitted on.
        base, scale: output = base + scale * sum of leaf values (``aggregate="mean"``); ``base + median`` of the
            leaf values with ``aggregate="median"`` (``scale`` unused).
        aggregate: ``"mean"`` or ``"median"`` over trees.
    """

    def __init__(
        self,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        value: np.ndarray,
        roots: np.ndarray,
        n_features: int,
        base: float = 0.0,
        scale: float = 1.0,
        aggregate: str = "mean",
    ) -> None:
        self.left = np.asarray(left, dtype=np.int32)
        self.right = np.asarray(right, dtype=np.int32)
        self.feature = np.asarray(feature, dtype=np.int32)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.value = np.asarray(value, dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.int32)
        self.n_features = int(n_features)
        self.base = float(base)
        self.scale = float(scale)
        self.aggregate = aggregate
        self._validate("tree ensemble")

    @classmethod
    def from_sklearn(cls, forest: Any, aggregate: str = "mean") -> TreeEnsemble:
        """From a fitted forest of ``estimators_`` with ``tree_`` (regressor, or binary classifier); ``aggregate``
        ``"mean"`` reproduces the forest's ``predict`` (``predict_proba[:, 1]``), ``"median"`` takes the median of
        its trees instead."""
        lefts, rights, features, thresholds, values, roots = [], [], [], [], [], []
        offset = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            is_leaf = tree.children_left < 0
            left = np.where(is_leaf, -1, tree.children_left + offset)
            right = np.where(is_leaf, -1, tree.children_right + offset)
            value = tree.value[:, 0, :]
            # regression: the value; classification: weighted share of the positive class (classes_ = [0, 1])
            regression = value.shape[1] == 1
            leaf_value = value[:, 0] if regression else value[:, 1] / np.maximum(value.sum(axis=1), 1e-300)
            roots.append(offset)
            lefts.append(left)
            rights.append(right)
            features.append(np.where(is_leaf, 0, tree.feature))
            thresholds.append(np.where(is_leaf, 0.0, tree.threshold))
            values.append(leaf_value)
            offset += tree.node_count
        n_trees = len(roots)
        return cls(
            np.concatenate(lefts),
            np.concatenate(rights),
            np.concatenate(features),
            np.concatenate(thresholds),
            np.concatenate(values),
            np.asarray(roots),
            forest.n_features_in_,
            0.0,
            1.0 / n_trees,
            aggregate,
        )

    def votes(self, cut: float) -> TreeEnsemble:
        """The same trees with every leaf's value replaced by 1.0 where it is at least ``cut`` and 0.0 elsewhere,
        averaged: for a regression forest, the share of its trees whose prediction is >= ``cut`` (a probability)."""
        is_leaf = self.left < 0
        value = np.where(is_leaf & (self.value >= cut), 1.0, 0.0)
        return TreeEnsemble(self.left, self.right, self.feature, self.threshold, value, self.roots, self.n_features,
                            0.0, 1.0 / self.n_trees, "mean")  # fmt: skip

    @property
    def n_trees(self) -> int:
        """Trees in the ensemble."""
        return len(self.roots)

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        # scikit-learn's trees compare float32 features with float64 thresholds: do the same, bit for bit
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InputError(f"the tree ensemble takes (n, {self.n_features}) features, got {X.shape}.")
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Output (n,) float64 for features X (n, n_features); compiled branch-free traversal (numba), one core."""
        X = self._check_X(X)
        if not hasattr(self, "_layout"):
            self._layout = _sibling_layout(self.left, self.right, self.feature, self.threshold, self.value, self.roots)
        out = np.zeros(len(X))
        if self.aggregate == "median":
            _forest_median(X, *self._layout, out)  # type: ignore[call-arg]
            return self.base + out
        _forest_sum(X, *self._layout, out)  # type: ignore[call-arg]
        return self.base + self.scale * out

    def spread(self, X: np.ndarray) -> np.ndarray:
        """(n,) float64 standard deviation over trees of the rows' leaf values (the forest's disagreement, in the
        output's units: log10 sigma for the regressor); compiled as :meth:`predict`."""
        X = self._check_X(X)
        if not hasattr(self, "_layout"):
            self._layout = _sibling_layout(self.left, self.right, self.feature, self.threshold, self.value, self.roots)
        total, squares = np.zeros(len(X)), np.zeros(len(X))
        _forest_moments(X, *self._layout, total, squares)  # type: ignore[call-arg]
        mean = total / self.n_trees
        return np.sqrt(np.maximum(squares / self.n_trees - mean * mean, 0.0))

    def leaves_numpy(self, X: np.ndarray) -> np.ndarray:
        """(n, n_trees) leaf value of every row in every tree, in plain numpy (the oracle of :meth:`spread`)."""
        X = self._check_X(X)
        n = len(X)
        rows = np.repeat(np.arange(n), self.n_trees)
        node = np.tile(self.roots, n)
        active = np.arange(len(node))
        while active.size:
            at = node[active]
            go_left = X[rows[active], self.feature[at]] <= self.threshold[at]
            nxt = np.where(go_left, self.left[at], self.right[at])
            inner = nxt >= 0
            node[active[inner]] = nxt[inner]
            active = active[inner]
        return self.value[node].reshape(n, self.n_trees)

    def predict_numpy(self, X: np.ndarray, chunk: int | None = None) -> np.ndarray:
        """The same output as :meth:`predict` in plain numpy (all row-tree pairs advance one level per step): the
        oracle for the compiled kernel, and usable where numba is not."""
        X = self._check_X(X)
        out = np.empty(len(X))
        chunk = chunk or max(1, 2**19 // self.n_trees)
        for start in range(0, len(X), chunk):
            out[start : start + chunk] = self._predict_chunk(X[start : start + chunk])
        return out

    def _predict_chunk(self, X: np.ndarray) -> np.ndarray:
        leaves = self.leaves_numpy(X)
        if self.aggregate == "median":
            return self.base + np.median(leaves, axis=1)
        return self.base + self.scale * leaves.sum(axis=1)

    # ------------------------------------------------------------------------------------------- plain data
    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the node arrays."""
        return {
            **{name: getattr(self, name).tolist() for name in _ARRAYS},
            "roots": self.roots.tolist(),
            "n_features": self.n_features,
            "base": self.base,
            "scale": self.scale,
            "aggregate": self.aggregate,
        }

    @classmethod
    def from_payload(cls, payload: Any, source: str = "artifact") -> TreeEnsemble:
        """Rebuild and validate (array lengths, child indices inside the arrays, features in range)."""
        try:
            arrays = {name: np.asarray(payload[name], dtype=dtype) for name, dtype in _ARRAYS.items()}
            roots = np.asarray(payload["roots"], dtype=np.int32)
            ensemble = cls.__new__(cls)
            for name, array in arrays.items():
                setattr(ensemble, name, array)
            ensemble.roots = roots
            ensemble.n_features = int(payload["n_features"])
            ensemble.base = float(payload["base"])
            ensemble.scale = float(payload["scale"])
            ensemble.aggregate = str(payload.get("aggregate", "mean"))  # files written before medians: means
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed tree ensemble ({exc}). Retrain the model.") from None
        ensemble._validate(source)
        return ensemble

    def _validate(self, source: str) -> None:
        if self.aggregate not in AGGREGATES:
            raise InputError(
                f"{source}: unknown tree aggregate {self.aggregate!r}; use one of {', '.join(AGGREGATES)}, or retrain."
            )
        n = len(self.left)
        bad = (
            any(len(getattr(self, name)) != n or getattr(self, name).ndim != 1 for name in _ARRAYS)
            or self.roots.ndim != 1
            or len(self.roots) == 0
            or ((self.roots < 0) | (self.roots >= n)).any()
            or ((self.left < -1) | (self.left >= n) | (self.right < -1) | (self.right >= n)).any()
            or ((self.left < 0) != (self.right < 0)).any()
            or ((self.left >= 0) & ((self.feature < 0) | (self.feature >= self.n_features))).any()
            or ((self.left >= 0) & (self.left <= np.arange(n))).any()  # children come after their parent
            or not np.isfinite(self.value).all()
        )
        if bad:
            raise InputError(f"{source}: inconsistent tree ensemble arrays. Retrain the model.")


@numba.njit(cache=True)
def _sibling_layout(left, right, feature, threshold, value, roots):
    """Renumber every tree breadth-first so that a node's right child is its left child + 1, for a branch-free walk.

    Returns child (nodes,) int32 (a leaf points at itself), feature, threshold (+inf at leaves, so a row never
    moves on), value, roots (n_trees,) and depth (n_trees,) the number of steps from each root to its deepest leaf.
    """
    n = left.shape[0]
    child = np.empty(n, np.int32)
    feat = np.zeros(n, np.int32)
    thr = np.full(n, np.inf)
    val = np.zeros(n)
    new_roots = np.empty(roots.shape[0], np.int32)
    depth = np.zeros(roots.shape[0], np.int32)
    queue = np.empty(n, np.int32)  # old ids in new order
    level = np.zeros(n, np.int32)  # depth of each new id
    nxt = 0
    for t in range(roots.shape[0]):
        new_roots[t] = nxt
        queue[nxt] = roots[t]
        level[nxt] = 0
        head, tail = nxt, nxt + 1
        while head < tail:
            old = queue[head]
            if left[old] < 0:
                child[head] = head
                val[head] = value[old]
            else:
                child[head] = tail
                feat[head] = feature[old]
                thr[head] = threshold[old]
                queue[tail], queue[tail + 1] = left[old], right[old]
                level[tail] = level[tail + 1] = level[head] + 1
                tail += 2
            depth[t] = max(depth[t], level[head])
            head += 1
        nxt = tail
    return child, feat, thr, val, new_roots, depth


@numba.njit(cache=True, nogil=True)
def _walk_block(X, start, stop, root, steps, child, feature, threshold, node):
    """node[: stop - start] = the leaf of rows start..stop-1 in the tree at ``root``: branch-free steps (a row at a
    leaf stays there), one level for every row of the block at a time so that independent loads overlap, until
    every row is at a leaf or ``steps`` levels are done."""
    node[:] = root
    for _ in range(steps):
        moved = False
        for i in range(start, stop):
            k = node[i - start]
            nxt = child[k] + (X[i, feature[k]] > threshold[k])
            moved |= nxt != k
            node[i - start] = nxt
        if not moved:  # every row of the block is at a leaf: deeper levels change nothing
            break


@numba.njit(cache=True, nogil=True)
def _forest_sum(X, child, feature, threshold, value, roots, depth, out):
    """out[i] += leaf value of row i in every tree; rows in blocks so that one tree stays in cache."""
    n = X.shape[0]
    block = 128
    node = np.empty(block, np.int32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        for t in range(roots.shape[0]):
            _walk_block(X, start, stop, roots[t], depth[t], child, feature, threshold, node)
            for i in range(start, stop):
                out[i] += value[node[i - start]]


@numba.njit(cache=True, nogil=True)
def _forest_median(X, child, feature, threshold, value, roots, depth, out):
    """out[i] = median over trees of row i's leaf values; blocks of rows as :func:`_forest_sum`."""
    n = X.shape[0]
    block = 128
    node = np.empty(block, np.int32)
    leaves = np.empty((block, roots.shape[0]))
    for start in range(0, n, block):
        stop = min(start + block, n)
        for t in range(roots.shape[0]):
            _walk_block(X, start, stop, roots[t], depth[t], child, feature, threshold, node)
            for i in range(start, stop):
                leaves[i - start, t] = value[node[i - start]]
        for i in range(start, stop):
            out[i] = np.median(leaves[i - start])


@numba.njit(cache=True, nogil=True)
def _forest_moments(X, child, feature, threshold, value, roots, depth, total, squares):
    """total[i] += leaf value, squares[i] += its square, of row i in every tree (blocks as :func:`_forest_sum`)."""
    n = X.shape[0]
    block = 128
    node = np.empty(block, np.int32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        for t in range(roots.shape[0]):
            _walk_block(X, start, stop, roots[t], depth[t], child, feature, threshold, node)
            for i in range(start, stop):
                v = value[node[i - start]]
                total[i] += v
                squares[i] += v * v
