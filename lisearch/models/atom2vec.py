"""atom2vec-esML inference: learned element vectors -> composition-weighted reductions -> two hidden layers.

numpy only (no training library): the model is plain data (an artifact of kind :data:`KIND`), so it is scored
by the same code in ``lisearch predict``, a notebook and a Spark task. Training lives in
:mod:`lisearch.models.atom2vec_train` (JAX), which calls :func:`forward` with ``jax.numpy`` so that training and
inference share one definition of the network.

The network, for a composition with atomic fractions c (one row of an (n, k) matrix over the k elements whose
vectors are the rows of V, shape (k, D)):

* ``mean = c @ V`` (D numbers), ``std = sqrt(max(c @ V**2 - mean**2, 0) + eps)`` (D numbers; composition-
  weighted standard deviation, ``eps`` keeps its gradient finite);
* ``h1 = tanh(x @ W1 + b1)``, ``h2 = tanh(h1 @ W2 + b2)``, ``z = h2 @ w3 + b3`` with x the reductions side by side;
* ``z > 0`` means predicted superionic (the sML label).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lisearch.chemistry.elements import symbols
from lisearch.errors import InputError

KIND = "atom2vec-mlp"
REDUCTIONS = ("mean", "std")
STD_EPS = 1e-6


def reduce_vectors(xp: Any, fractions: Any, vectors: Any, reductions: Sequence[str]) -> Any:
    """The composition's features (n, D * len(reductions)): the reductions of vectors (k, D) weighted by fractions
    (n, k), side by side in ``reductions`` order; ``xp`` is numpy or jax.numpy."""
    mean = fractions @ vectors
    parts = []
    for name in reductions:
        if name == "mean":
            parts.append(mean)
        elif name == "std":
            var = fractions @ (vectors * vectors) - mean * mean
            parts.append(xp.sqrt(xp.maximum(var, 0.0) + STD_EPS))
        else:
            raise ValueError(f"unknown reduction {name!r}")
    return xp.concatenate(parts, axis=1)


def network_head(xp: Any, features: Any, layers: Sequence[tuple[Any, Any]]) -> Any:
    """Decision values (n,) of the tanh hidden layers and the linear output on features (n, F)."""
    h = features
    for W, b in layers[:-1]:
        h = xp.tanh(h @ W + b)
    W, b = layers[-1]
    return (h @ W + b)[:, 0]


def forward(xp: Any, fractions: Any, vectors: Any, layers: Sequence[tuple[Any, Any]], reductions: Sequence[str]) -> Any:
    """Decision values (n,) for fractions (n, k) over elements with vectors (k, D); ``xp`` is numpy or jax.numpy."""
    return network_head(xp, reduce_vectors(xp, fractions, vectors, reductions), layers)


class Atom2VecModel:
    """A trained atom2vec-esML model (numpy arrays).

    Attributes:
        elements: symbols with a learned vector (the elements seen in training), in the embedding's row order.
        embedding: (len(elements), D) float64.
        layers: [(W (D*R, H1), b (H1,)), (W (H1, H2), b (H2,)), (W (H2, 1), b (1,))].
        reductions: names of the reductions (default mean, std).
    """

    def __init__(
        self,
        elements: Sequence[str],
        embedding: np.ndarray,
        layers: Sequence[tuple[np.ndarray, np.ndarray]],
        reductions: Sequence[str] = REDUCTIONS,
        training: dict[str, Any] | None = None,
    ) -> None:
        self.elements = tuple(elements)
        self.embedding = np.asarray(embedding, dtype=np.float64)
        self.layers = [(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in layers]
        self.reductions = tuple(reductions)
        self.training = training or {}
        self._row = {e: i for i, e in enumerate(self.elements)}

    @property
    def dim(self) -> int:
        """D_atom: numbers per element vector."""
        return int(self.embedding.shape[1])

    def vectors(self, symbols: Sequence[str], source: str = "the atom2vec model") -> np.ndarray:
        """Vectors (len(symbols), D) of some elements; raises :class:`InputError` naming the missing ones."""
        missing = [s for s in symbols if s not in self._row]
        if missing:
            raise InputError(
                f"{source} has no vector for {', '.join(missing)}: these elements were not in its training set, "
                "so it cannot score compositions that contain them. Leave them out of the input (for a screen: "
                f"--set screen.exclude={','.join(missing)})."
            )
        return self.embedding[[self._row[s] for s in symbols]]

    def known_rows(self, fractions: np.ndarray) -> np.ndarray:
        """Mask (n,): rows of a fraction matrix (n, 94) whose elements all have a vector."""
        known = np.array([s in self._row for s in symbols()])
        return ~((np.asarray(fractions) != 0) & ~known).any(axis=1)

    def decision_function(self, fractions: np.ndarray) -> np.ndarray:
        """Decision values (n,) for a fraction matrix (n, 94) (columns in Z order); > 0 means superionic.

        Raises:
            InputError: a composition contains an element without a vector.
        """
        used = np.flatnonzero((np.asarray(fractions) != 0).any(axis=0))
        names = [symbols()[i] for i in used]
        V = self.vectors(names)
        return forward(np, np.asarray(fractions, dtype=np.float64)[:, used], V, self.layers, self.reductions)

    def predict(self, fractions: np.ndarray) -> np.ndarray:
        """Labels (n,) int8: 1 where the decision value is > 0."""
        return (self.decision_function(fractions) > 0).astype(np.int8)

    # ------------------------------------------------------------------------------------------ artifacts
    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the network (embedding, layers, reductions, training metadata)."""
        return {
            "elements": list(self.elements),
            "embedding_dim": self.dim,
            "embedding": {e: self.embedding[i].tolist() for i, e in enumerate(self.elements)},
            "reductions": list(self.reductions),
            "std_eps": STD_EPS,
            "layers": [{"W": W.tolist(), "b": b.tolist()} for W, b in self.layers],
            "activation": "tanh",
            "training": self.training,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str = "artifact") -> Atom2VecModel:
        """Rebuild from :meth:`to_payload` output; every shape is checked against the declared embedding size."""
        retrain = "Retrain with `lisearch train-atom2vec`."
        try:
            elements = list(payload["elements"])
            dim = int(payload["embedding_dim"])
            reductions = tuple(payload["reductions"])
            vectors = [payload["embedding"][e] for e in elements]
            layers = [
                (np.asarray(x["W"], dtype=np.float64), np.asarray(x["b"], dtype=np.float64)) for x in payload["layers"]
            ]
            eps = float(payload.get("std_eps", STD_EPS))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed atom2vec payload ({exc}). {retrain}") from None

        unknown = [e for e in elements if e not in symbols()]
        if unknown or len(set(elements)) != len(elements) or "Li" not in elements:
            raise InputError(f"{source}: its element list is invalid (unknown, repeated or no Li). {retrain}")
        bad = [e for e, v in zip(elements, vectors, strict=True) if np.shape(v) != (dim,)]
        if bad:
            raise InputError(
                f"{source}: the embedding size is {dim} but the vectors of {', '.join(bad[:5])} have another length. "
                f"{retrain}"
            )
        if set(reductions) - set(REDUCTIONS) or not reductions:
            raise InputError(f"{source}: unknown reductions {reductions}; this lisearch knows {REDUCTIONS}. {retrain}")
        width = dim * len(reductions)
        for i, (W, b) in enumerate(layers):
            if W.ndim != 2 or W.shape[0] != width or b.shape != (W.shape[1],):
                raise InputError(
                    f"{source}: layer {i + 1} expects {W.shape[0] if W.ndim == 2 else '?'} inputs but the embedding "
                    f"size {dim} x {len(reductions)} reductions gives {width} (or its bias has the wrong length). "
                    f"{retrain}"
                )
            width = W.shape[1]
        if not layers or width != 1 or payload.get("activation", "tanh") != "tanh" or eps != STD_EPS:
            raise InputError(
                f"{source}: the network does not end in one output (or uses another activation). {retrain}"
            )
        return cls(elements, np.asarray(vectors, dtype=np.float64), layers, reductions, payload.get("training"))
