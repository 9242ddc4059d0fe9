"""Calibrated probabilities and conformal intervals for the measured models (numpy only; no model imports).

Both are fitted on *out-of-group* predictions: the measured models refitted on the training rows of each fold of a
leave-chemical-system-out split of the training data predict the fold's held-out systems
(:func:`lisearch.measured.models.fit_pair` with ``groups``), so that what they learn is how the models behave on
chemistry they have not seen, the situation of a screen.

* :class:`ProbabilityCalibration`: none (``"none"``, the default: none of the others made the probabilities better
  calibrated on chemical systems held out of the training part, see docs/science.md), an affine map
  P = clip(a p + b, 0, 1) of the forest's probability p fitted by least squares, i.e. the affine recalibration with
  the lowest Brier score (``"linear"``), Platt's sigmoid P = 1 / (1 + exp(-(a p + b))) fitted by maximum likelihood
  with Platt's smoothed targets (``"sigmoid"``) or scikit-learn's isotonic regression (``"isotonic"``); the label's
  cut-off then follows :data:`CUT_RULES`.
* :class:`ConformalIntervals`: normalised split-conformal intervals of log10 sigma (Lei et al. 2018), Mondrian by
  applicability domain: the ``coverage`` quantile (finite-sample corrected, the ceil((m + 1) coverage)-th of m) of
  the out-of-group residuals divided by the forest's spread, for rows inside the domain and separately for rows
  outside it (a held-out row is outside when it is outside the domain of the model that predicted it). The outside
  quantile is never below the inside one (widened outside the domain); with fewer than :data:`MIN_OUTSIDE` outside
  rows it is the largest of the inside quantile and every outside score.

Metrics: :func:`expected_calibration_error` (equal-width bins, the common definition of Guo et al. 2017),
:func:`reliability_table`, :func:`brier_score`, :func:`chance_ece` (the ECE a calibrated model shows by chance),
:func:`system_calibration` (how much of the ECE a single chemical system carries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lisearch.errors import InputError

CALIBRATIONS = ("none", "linear", "sigmoid", "isotonic")
#: Where the classifier's P(fast) comes from, before any recalibration: ``"balanced"``, a class-balanced
#: classification forest's probability, or ``"votes"``, the share of the trees of a regression forest of log10 sigma
#: that predict at least the threshold (see docs/science.md: better inside the official training part, not confirmed
#: on the rest of OBELiX, so not the default).
P_FAST_SOURCES = ("balanced", "votes")
#: How the classifier's label cut-off is set: ``"balanced"``, where balanced accuracy is best in theory (0.5 for the
#: class-balanced forest's own probability, the training share of positives for a calibrated one), or ``"search"``,
#: the cut that maximises balanced accuracy on the out-of-group predictions (:func:`balanced_cut`).
CUT_RULES = ("balanced", "search")
#: Out-of-domain calibration rows below which the outside half-width is not a quantile (see the module doc).
MIN_OUTSIDE = 10


# ------------------------------------------------------------------------------------------------- metrics
def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-width bin of p in [0, 1]: lower and upper edge, n, mean predicted p, observed share of positives
    (None for an empty bin)."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        out.append({
            "low": b / bins, "high": (b + 1) / bins, "n": n,
            "mean_p": float(p[inside].mean()) if n else None, "observed": float(y[inside].mean()) if n else None,
        })  # fmt: skip
    return out


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, bins: int = 10, weights: np.ndarray | None = None
) -> float:
    """Sum over equal-width bins of (bin share) x |observed share of positives - mean p| (0 = calibrated), i.e.
    sum_b |sum_{i in b} w_i (y_i - p_i)| / sum_i w_i; ``weights`` (n,) default 1 (see :func:`system_calibration`)."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    if not len(y) or w.sum() <= 0:
        return float("nan")
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    return float(np.abs(np.bincount(which, w * (y - p), minlength=bins)).sum() / w.sum())


def chance_ece(
    p: np.ndarray, bins: int = 10, draws: int = 1000, seed: int = 0, weights: np.ndarray | None = None
) -> list[float]:
    """[mean, 95th percentile] of the ECE that perfectly calibrated probabilities p (n,) show by chance alone: the
    labels drawn as Bernoulli(p), ``draws`` times (``weights`` as in :func:`expected_calibration_error`). An ECE near
    it cannot be told from a calibrated model's."""
    p = np.asarray(p, np.float64)
    rng = np.random.default_rng(seed)
    values = [expected_calibration_error(rng.random(len(p)) < p, p, bins, weights) for _ in range(draws)]
    return [round(float(np.mean(values)), 4), round(float(np.percentile(values, 95)), 4)]


def system_calibration(y: np.ndarray, p: np.ndarray, groups: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """How the ECE of probabilities p (n,) for labels y (n,) depends on single chemical systems (``groups`` (n,)).

    A leave-system-out test holds whole systems out, so a system the models miss as a whole moves every one of its
    materials together; the ECE then measures that system more than calibration. Returns
    ``ece_system_weighted`` (every row weighted by 1 / the size of its system, so each system counts once),
    ``ece_system_weighted_if_calibrated`` (its :func:`chance_ece`), and ``most_influential``: the system whose
    removal lowers the ECE most, with its ``n``, ``mean_p``, ``observed`` share of positives and ``ece_without`` it
    (None with a single system)."""
    y, p, groups = np.asarray(y, np.float64), np.asarray(p, np.float64), np.asarray(groups)
    names, of_row, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    weights = 1.0 / sizes[of_row]
    out: dict[str, Any] = {
        "ece_system_weighted": expected_calibration_error(y, p, bins, weights),
        "ece_system_weighted_if_calibrated": chance_ece(p, bins, weights=weights),
        "most_influential": None,
    }
    if len(names) > 1:
        without = [expected_calibration_error(y[of_row != k], p[of_row != k], bins) for k in range(len(names))]
        k = int(np.argmin(without))
        rows = of_row == k
        out["most_influential"] = {
            "system": str(names[k]), "n": int(sizes[k]), "mean_p": float(p[rows].mean()),
            "observed": float(y[rows].mean()), "ece_without": without[k],
        }  # fmt: skip
    return out


def brier_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean of (p - y)^2."""
    return float(np.mean((np.asarray(p, np.float64) - np.asarray(y, np.float64)) ** 2))


# --------------------------------------------------------------------------------------------- calibration
@dataclass
class ProbabilityCalibration:
    """A monotone map from the forest's probability to a calibrated one.

    ``method``: ``"linear"`` or ``"sigmoid"`` (``a``, ``b``), ``"isotonic"`` (``x``, ``y``: the step function's
    knots, linear in between as scikit-learn's ``IsotonicRegression``), or ``"none"``.
    """

    method: str = "none"
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray, method: str = "sigmoid") -> ProbabilityCalibration:
        """Fit on probabilities p (n,) and labels y (n,) in {0, 1}."""
        if method not in CALIBRATIONS:
            raise InputError(f"Unknown calibration {method!r}; use one of {', '.join(CALIBRATIONS)}.")
        p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
        if method == "none":
            return cls()
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression  # noqa: PLC0415 (slow import, needed here only)

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
            return cls("isotonic", x=tuple(iso.X_thresholds_.tolist()), y=tuple(iso.y_thresholds_.tolist()))
        if method == "linear":
            if np.ptp(p) == 0:  # one distinct probability: the best affine map is the observed share
                return cls("linear", a=0.0, b=float(y.mean()))
            a, b = np.linalg.lstsq(np.column_stack([p, np.ones_like(p)]), y, rcond=None)[0]
            return cls("linear", a=float(a), b=float(b))
        a, b = _platt(p, y)
        return cls("sigmoid", a=a, b=b)

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n,) of forest probabilities p (n,)."""
        p = np.asarray(p, np.float64)
        if self.method == "linear":
            return np.clip(self.a * p + self.b, 0.0, 1.0)
        if self.method == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.a * p + self.b)))
        if self.method == "isotonic":
            return np.interp(p, self.x, self.y)
        return p

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {"method": self.method, "a": self.a, "b": self.b, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_payload(cls, payload: Any, source: str) -> ProbabilityCalibration:
        """Rebuild from :meth:`to_payload` (None: an uncalibrated model written before calibration existed)."""
        if payload is None:
            return cls()
        try:
            out = cls(str(payload["method"]), float(payload["a"]), float(payload["b"]),
                      tuple(float(v) for v in payload["x"]), tuple(float(v) for v in payload["y"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed probability calibration ({exc}). Retrain the model.") from None
        if out.method not in CALIBRATIONS or len(out.x) != len(out.y) or (out.method == "isotonic" and not out.x):
            raise InputError(f"{source}: malformed probability calibration. Retrain the model.")
        return out


def _platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt (1999): a, b minimising the log loss of sigmoid(a p + b) against the smoothed targets
    (N+ + 1) / (N+ + 2) and 1 / (N- + 2); Newton's method with a backtracking line search."""
    pos = float(y.sum())
    neg = len(y) - pos
    t = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (neg + 2))
    X = np.column_stack([p, np.ones_like(p)])
    w = np.array([0.0, math.log((neg + 1) / (pos + 1))])

    def loss(v: np.ndarray) -> float:
        z = X @ v
        return float(np.sum(np.logaddexp(0, z) - t * z))

    for _ in range(100):
        q = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (q - t)
        hess = X.T @ (X * (q * (1 - q))[:, None]) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale, before = 1.0, loss(w)
        while loss(w - scale * step) > before and scale > 1e-8:
            scale /= 2
        w = w - scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def balanced_cut(y: np.ndarray, p: np.ndarray) -> float:
    """The cut-off c maximising the balanced accuracy of the label p >= c on (y, p); among equal ones the middle of
    the best run of candidate cuts (the midpoints between consecutive distinct p)."""
    y, p = np.asarray(y, bool), np.asarray(p, np.float64)
    if y.all() or not y.any():
        raise InputError("A probability cut-off needs both classes among the calibration rows.")
    values = np.unique(p)
    cuts = np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [np.nextafter(values[-1], np.inf)]])
    order = np.argsort(p)
    ys, ps = y[order], p[order]
    below = np.searchsorted(ps, cuts, side="left")  # rows with p < cut: labelled negative
    pos_below = np.concatenate([[0], np.cumsum(ys)])[below]
    neg_below = below - pos_below
    balanced = 0.5 * ((ys.sum() - pos_below) / ys.sum() + neg_below / (~ys).sum())
    best = np.flatnonzero(balanced >= balanced.max() - 1e-12)
    return float(cuts[best[len(best) // 2]])


# ----------------------------------------------------------------------------------------------- intervals
def conformal_quantile(residuals: np.ndarray, coverage: float) -> float:
    """The ceil((m + 1) coverage)-th smallest of m residuals (inf when m is too small for that coverage)."""
    r = np.sort(np.asarray(residuals, np.float64))
    k = math.ceil((len(r) + 1) * coverage)
    return float(r[k - 1]) if 0 < k <= len(r) else float("inf")


@dataclass
class ConformalIntervals:
    """Normalised split-conformal intervals of log10 sigma, Mondrian by applicability domain.

    The score of a calibration row is |y - y_hat| / (s + ``offset``), s the forest's spread over its trees (the
    standard deviation of the trees' predictions, :meth:`lisearch.measured.trees.TreeEnsemble.spread`) and
    ``offset`` the median spread of the calibration rows (so that rows where the trees happen to agree do not get
    zero-width intervals). ``inside`` and ``outside`` are the ``coverage`` conformal quantiles of the scores of the
    rows inside and outside the applicability domain; a row's half-width is q (s + offset) with the q of its side.
    """

    coverage: float = 0.8
    inside: float = float("nan")
    outside: float = float("nan")
    offset: float = 0.0
    n_inside: int = 0
    n_outside: int = 0

    @classmethod
    def fit(
        cls, residuals: np.ndarray, outside: np.ndarray, spread: np.ndarray, coverage: float = 0.8
    ) -> ConformalIntervals:
        """From out-of-group absolute residuals (n,), the rows' outside-the-domain flags (n,) and the forests'
        spreads (n,) (log10 units)."""
        if not 0 < coverage < 1:
            raise InputError(f"Interval coverage {coverage} must lie in (0, 1), e.g. 0.8.")
        out, spread = np.asarray(outside, bool), np.asarray(spread, np.float64)
        offset = float(np.median(spread)) if len(spread) else 0.0
        offset = offset if offset > 0 else 1.0  # a forest that never disagrees: plain absolute residuals
        score = np.abs(np.asarray(residuals, np.float64)) / (spread + offset)
        inside = conformal_quantile(score[~out], coverage)
        if out.sum() >= MIN_OUTSIDE:
            far = max(inside, conformal_quantile(score[out], coverage))
        else:
            far = max([inside, *score[out].tolist()])
        return cls(coverage, inside, far, offset, int((~out).sum()), int(out.sum()))

    def half_width(self, outside: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """(n,) half-width (log10 units) for rows with the given outside-the-domain flags (n,) and spreads (n,)."""
        q = np.where(np.asarray(outside, bool), self.outside, self.inside)
        return q * (np.asarray(spread, np.float64) + self.offset)

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {"coverage": self.coverage, "inside": self.inside, "outside": self.outside, "offset": self.offset,
                "n_inside": self.n_inside, "n_outside": self.n_outside}  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Any, source: str) -> ConformalIntervals | None:
        """Rebuild from :meth:`to_payload` (None stays None: a model written before intervals existed)."""
        if payload is None:
            return None
        try:
            out = cls(float(payload["coverage"]), float(payload["inside"]), float(payload["outside"]),
                      float(payload["offset"]), int(payload["n_inside"]), int(payload["n_outside"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed conformal intervals ({exc}). Retrain the model.") from None
        if not 0 < out.coverage < 1 or not 0 <= out.inside <= out.outside or not out.offset > 0:
            raise InputError(f"{source}: malformed conformal intervals. Retrain the model.")
        return out
