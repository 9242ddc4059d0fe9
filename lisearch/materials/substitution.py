"""Candidate crystal structures of a composition by ionic substitution on known Li-containing prototypes.

For a target formula with its most likely neutral ionic assignment (:func:`lisearch.materials.templates.ionic_formulas`)
the prototypes are the shipped structures with the same *pattern* (Li amount and the sorted amounts of the other
elements of the reduced formula, :func:`lisearch.materials.templates.pattern_of`). Li stays on Li's sites; every
other element of the prototype is replaced by a target element with the same amount and the same sign of charge
(cation for cation, anion for anion); among those bijections the one with the highest probability is kept. The
probability is Hautier et al.'s ionic substitution model as pymatgen ships it
(``SubstitutionProbability.cond_prob_list(target species, prototype species)``, the product of the conditional
probabilities of each substitution, Li for Li included), a relative score for ranking, not a probability that the
structure exists (an ion the model has no statistics for counts with its floor exp(-5)). The substituted
structure is scaled to the volume of pymatgen's ``DLSVolumePredictor`` (bond lengths of known structures) when it
can predict one; the relaxation does the rest.

A composition without an ionic assignment, without Li, or without a prototype of its pattern gets no candidate and a
reason (:func:`candidate_structures`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lisearch.materials.templates import ionic_formulas, read_structures, template_index


@dataclass
class Candidate:
    """A substituted structure: the prototype's id and formula, the substitution (prototype symbol -> target
    symbol), its probability score and the structure (pymatgen, no oxidation states)."""

    template_id: str
    template_formula: str
    probability: float
    substitution: dict[str, str]
    structure: Any = field(repr=False, default=None)


@dataclass
class Prediction:
    """The candidates of one formula, best first, or none and why (``reason``)."""

    formula: str
    candidates: list[Candidate]
    reason: str | None = None


@functools.cache
def _probability_model() -> Any:
    from pymatgen.core.structure_prediction.substitution_probability import (  # noqa: PLC0415 (slow import)
        SubstitutionProbability,
    )

    return SubstitutionProbability()


@functools.cache
def _cond_prob_cached(new: tuple[str, int], old: tuple[str, int]) -> float:
    model = _probability_model()
    a, b = _species(*new), _species(*old)
    if model.get_px(b) == 0:  # an ion the model never saw: its floor, exp(alpha) (pymatgen's alpha = -5)
        return float(math.exp(model.alpha))
    return float(model.cond_prob(a, b))


def _cond_prob(model: Any, new: tuple[str, int], old: tuple[str, int]) -> float:
    """P(new ion | old ion) of the substitution model (a table look-up, cached)."""
    return _cond_prob_cached(new, old)


def _species(symbol: str, state: int) -> Any:
    from pymatgen.core import Species  # noqa: PLC0415 (slow import, needed here only)

    return Species(symbol, state)


def best_substitution(
    target: tuple[tuple[str, int, int], ...], template: tuple[tuple[str, int, int], ...]
) -> tuple[float, dict[str, str]] | None:
    """The most probable bijection from a prototype's ions to a target's, each ion (symbol, amount, state) of the
    same reduced formula pattern: Li to Li, equal amounts, equal sign of charge. (probability, prototype symbol ->
    target symbol) or None when no bijection fits."""
    model = _probability_model()
    rest_t = [ion for ion in target if ion[0] != "Li"]
    rest_p = [ion for ion in template if ion[0] != "Li"]
    li_t = [ion for ion in target if ion[0] == "Li"]
    li_p = [ion for ion in template if ion[0] == "Li"]
    if len(rest_t) != len(rest_p) or len(li_t) != 1 or len(li_p) != 1:
        return None
    best: tuple[float, dict[str, str]] | None = None
    for order in itertools.permutations(rest_t):
        if any(a[1] != b[1] or (a[2] > 0) != (b[2] > 0) for a, b in zip(order, rest_p, strict=True)):
            continue
        p = 1.0
        for (s_new, _, q_new), (s_old, _, q_old) in zip((*li_t, *order), (*li_p, *rest_p), strict=True):
            p *= _cond_prob(model, (s_new, q_new), (s_old, q_old))
        if best is None or p > best[0]:
            best = (p, {b[0]: a[0] for a, b in zip(order, rest_p, strict=True)})
    return best


def _ions(row: pd.Series) -> tuple[tuple[str, int, int], ...]:
    return tuple(zip(row["elements"], row["amounts"], row["states"], strict=True))


def substitute(structure: Any, substitution: dict[str, str]) -> Any:
    """The prototype structure with its elements replaced (prototype symbol -> target symbol, all at once), scaled to
    the DLS volume predictor's volume when it gives one."""
    out = structure.copy()
    out.remove_oxidation_states()
    out.replace_species({a: b for a, b in substitution.items() if a != b})
    try:
        from pymatgen.core.structure_prediction.volume_predictor import (  # noqa: PLC0415 (slow import)
            DLSVolumePredictor,
        )

        volume = DLSVolumePredictor().predict(out)
        if volume and volume > 0:
            out.scale_lattice(volume)
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        pass  # no bond-length data for these elements: the relaxation starts from the prototype's volume
    return out


def candidate_structures(
    formulas: list[str],
    k: int = 5,
    exclude: Iterable[str] = (),
    templates: pd.DataFrame | None = None,
) -> list[Prediction]:
    """Up to ``k`` candidate structures per formula, most probable first (one per prototype; prototypes whose
    reduced formula is in ``exclude`` are not used, e.g. the formula itself for a leave-one-out test).

    ``templates``: a prototype table shaped like :func:`lisearch.materials.templates.template_index` (default:
    the shipped one) with a ``structure`` column, or without one to read the structures from the shipped archive.
    """
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    table = template_index() if templates is None else templates
    skip = {Composition(f).reduced_formula for f in exclude}
    targets = ionic_formulas(formulas)
    chosen: list[list[tuple[float, dict[str, str], pd.Series]]] = []
    out: list[Prediction] = []
    for i, formula in enumerate(formulas):
        row = targets.loc[i]
        if row["reason"] is not None or row["pattern"] is None:
            why = "no Li" if row["pattern"] is None else f"no neutral ionic assignment ({row['reason']})"
            out.append(Prediction(formula, [], why))
            chosen.append([])
            continue
        same = table[table["pattern"] == row["pattern"]]
        same = same[[Composition(f).reduced_formula not in skip for f in same["formula"]]] if skip else same
        scored = []
        for _, proto in same.iterrows():
            found = best_substitution(_ions(row), _ions(proto))
            if found is not None:
                scored.append((found[0], found[1], proto))
        scored.sort(key=lambda item: (-item[0], str(item[2]["id"])))
        chosen.append(scored[:k])
        reason = None if scored else f"no prototype with the pattern Li{row['pattern'][0]} + {row['pattern'][1]}"
        out.append(Prediction(formula, [], reason))
    needed: dict[str, set[str]] = {}
    for _, _, p in (pick for picks in chosen for pick in picks):
        if "structure" not in p or p["structure"] is None:
            needed.setdefault(str(p.get("source", "mp2025_li")), set()).add(str(p["id"]))
    loaded = read_structures(needed) if needed else {}
    for prediction, picks in zip(out, chosen, strict=True):
        for probability, substitution, proto in picks:
            source = proto["structure"] if "structure" in proto and proto["structure"] is not None else None
            structure = source if source is not None else loaded.get(str(proto["id"]))
            if structure is None:
                continue
            built = substitute(structure, substitution)
            prediction.candidates.append(
                Candidate(str(proto["id"]), str(proto["formula"]), probability, substitution, built)
            )
    return out


__all__ = ["Candidate", "Prediction", "best_substitution", "candidate_structures", "substitute"]
