"""The paper study: which of the choices the paper leaves open reproduce its funnel and its Table III? (no Spark)

The paper reports a funnel (about 60 % of the space predicted conductive, about 10 % charge-neutral, about 7 % of
the neutral ones conductive) and 11 surviving oxides (Table III), but not the class weights, descriptor reductions
or regularisation of esML, the oxidation-state list, the cost and weight limits, nor any rule on formula size.
:func:`run_study` sweeps those choices on one fixed, seeded, uniform random sample of the paper's composition
space and, for every combination, reports the three funnel shares and the first stage that removes each Table III
composition. The Table III compositions go through exactly the same code as the sample rows: nothing in the study
knows which answers are expected.

Objective of the ``paper`` profile (:func:`choose`), in order:

* required: esML must still reproduce sML (hold-out accuracy on the sML labels >= 0.90; the paper's esML: 92 %), and
  the screen must be able to run the model (mean descriptors only, linear in the fractions);

then, in order:

1. the most Table III compositions kept;
2. the funnel closest to the paper's: the smallest sum over the three shares of |ln(share / paper's share)|;
3. the tightest filters (fewest survivors of the sample): the paper did apply cost and weight limits.

Shapes: a sample is atomic numbers ``z`` (n, 4) (column 0 is Li; 0 = no element) and integer percents
``amounts`` (n, 4) summing to 100.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score

from lisearch import paper
from lisearch.chemistry.elements import (
    LI_Z,
    OXIDATION_LISTS,
    atomic_number,
    default_elements,
    oxidation_states,
    symbols,
)
from lisearch.chemistry.neutrality import charge_neutral, cost_per_kg, mean_atomic_mass, state_table
from lisearch.chemistry.plausibility import formula_arrays, plausibility
from lisearch.config import limit_text
from lisearch.downstream.narrowing import TABLE_III, TRACE_STAGES, composition_flags
from lisearch.errors import InputError
from lisearch.figures import pyplot
from lisearch.models.linear import ElementalLinearModel
from lisearch.models.training import LabelledSet, holdout_split
from lisearch.schema import NARROW_STAGES
from lisearch.screening.space import CompositionSpace

#: The paper's funnel (Cubuk et al. 2019): shares of the space conductive and neutral, and of the neutral conductive.
PAPER_FUNNEL = paper.FUNNEL
#: Stages of the Table III trace, in order (the first that fails "removes" a composition).
#: A study model must agree with sML on the MP hold-out part at least this often (the paper's esML: 92 %).
MIN_HOLDOUT_ACCURACY = round(paper.ESML_HOLDOUT_ACCURACY - 0.02, 2)
STABILITY_STAGES = NARROW_STAGES[2:]


@dataclass(frozen=True)
class StudyChoices:
    """The values swept (every combination is scored). ``class_weight``: ``balanced``, ``none`` or ``1:w`` (weight w
    on the superionic class, 1 on the others); ``descriptors``: ``all`` nine, or ``eml`` (the subset eML chose on
    exp40, read from the eML artifact); ``limits``: (max cost USD/kg, max mean atomic mass g/mol),
    ``inf`` = no limit; ``max_formula_atoms``: 0 = no simplicity rule; ``stability``: apply the narrowing's three
    stability proxies (common states, single anion, electronegativity order) after the paper's two (Z <= 36,
    oxides)."""

    class_weight: tuple[str, ...] = ("balanced", "none", "1:10", "1:20")
    C: tuple[float, ...] = (0.01, 1.0)
    descriptors: tuple[str, ...] = ("all", "eml")
    reductions: tuple[tuple[str, ...], ...] = (("mean",), ("mean", "std"), ("mean", "min", "max"))
    oxidation_list: tuple[str, ...] = OXIDATION_LISTS
    limits: tuple[tuple[float, float], ...] = tuple(
        itertools.product((15.0, 30.0, 60.0, 120.0, math.inf), (25.0, 30.0, math.inf))
    )
    max_formula_atoms: tuple[int, ...] = (0, 30, 10)
    stability: tuple[bool, ...] = (True, False)


#: lisearch's default pipeline in the terms of the study (``conf/base.toml``: esML balanced, C = 1, mean
#: descriptors; pymatgen's ICSD list; 30 USD/kg, 30 g/mol; the narrowing's stability proxies).
DEFAULT_CHOICE = {
    "class_weight": "balanced", "C": 1.0, "descriptors": "all", "reductions": "mean", "oxidation_list": "pymatgen_icsd",
    "max_cost_per_kg": 30.0, "max_mean_atomic_mass": 30.0, "max_formula_atoms": 0, "stability": True,
}  # fmt: skip


@dataclass(frozen=True)
class StudySample:
    """A uniform random sample of the composition space plus the probe compositions (Table III), scored alike."""

    z: np.ndarray
    amounts: np.ndarray
    probe: np.ndarray  # (n,) bool: a probe row (not part of the sample's shares)
    probe_names: tuple[str, ...] = field(default=())

    @property
    def fractions(self) -> np.ndarray:
        """Atomic fractions (n, 94)."""
        out = np.zeros((len(self.z), len(symbols())))
        rows = np.repeat(np.arange(len(self.z)), self.z.shape[1])
        cols = self.z.ravel() - 1
        keep = cols >= 0
        np.add.at(out, (rows[keep], cols[keep]), self.amounts.ravel()[keep].astype(np.float64))
        return out / out.sum(axis=1, keepdims=True)


def sample_space(space: CompositionSpace, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` compositions drawn uniformly (with replacement) from ``space``: a size with probability proportional to
    its count, a uniform element set of that size, and uniform fractions (k distinct cut points of 1..units-1).
    Returns z (n, 4) (Li first, 0-padded) and percents (n, 4)."""
    rng = np.random.default_rng(seed)
    sizes = np.array(space.sizes)
    weights = np.array([space.count(k) for k in space.sizes], dtype=np.float64)
    k_of = rng.choice(sizes, size=n, p=weights / weights.sum())
    atomic = space.atomic_numbers
    z = np.zeros((n, 4), dtype=np.int64)
    amounts = np.zeros((n, 4), dtype=np.int64)
    z[:, 0] = LI_Z
    for k in space.sizes:
        rows = np.flatnonzero(k_of == k)
        picks = np.argsort(rng.random((len(rows), len(atomic))), axis=1)[:, :k]
        z[rows, 1 : k + 1] = atomic[np.sort(picks, axis=1)]
        cuts = np.sort(np.argsort(rng.random((len(rows), space.units - 1)), axis=1)[:, :k] + 1, axis=1)
        bounds = np.column_stack([np.zeros(len(rows), np.int64), cuts, np.full(len(rows), space.units)])
        amounts[rows, : k + 1] = np.diff(bounds, axis=1) * space.step
    return z, amounts


def probe_arrays(formulas: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """z (n, 4) with Li first and integer amounts (n, 4) of formulas of Li and up to three other elements."""
    zf, af, errors = formula_arrays(list(formulas))
    bad = [f"{f}: {e}" for f, e in zip(formulas, errors, strict=True) if e]
    if bad or zf.shape[1] > 4:
        raise ValueError(f"probe formulas must be Li + up to 3 elements: {bad or formulas}")
    li = LI_Z
    order = np.argsort(np.where(zf == li, -1, np.where(zf == 0, 999, zf)), axis=1, kind="stable")
    z = np.zeros((len(formulas), 4), dtype=np.int64)
    amounts = np.zeros((len(formulas), 4), dtype=np.int64)
    z[:, : zf.shape[1]] = np.take_along_axis(zf, order, axis=1)
    amounts[:, : zf.shape[1]] = np.take_along_axis(af, order, axis=1)
    return z, amounts


def build_sample(n: int, seed: int = 0, probes: tuple[str, ...] = TABLE_III) -> StudySample:
    """The paper's space (93 elements, 1 % steps, ternaries and quaternaries) sampled, with ``probes`` appended."""
    zs, am = sample_space(CompositionSpace(default_elements()), n, seed)
    zp, ap = probe_arrays(probes)
    probe = np.concatenate([np.zeros(n, bool), np.ones(len(probes), bool)])
    return StudySample(np.vstack([zs, zp]), np.vstack([am, ap]), probe, tuple(probes))


# ----------------------------------------------------------------------------------------------- per-choice masks
@dataclass(frozen=True)
class Scored:
    """Every per-composition test of the study on one sample: dicts of (n,) bool masks keyed by choice."""

    conductive: dict[tuple[Any, ...], np.ndarray]
    model_metrics: dict[tuple[Any, ...], dict[str, float]]
    neutral: dict[str, np.ndarray]
    cost: np.ndarray
    mass: np.ndarray
    atoms: np.ndarray
    grid: np.ndarray
    paper_narrowing: np.ndarray
    stability_failure: np.ndarray  # (n,) object: the first stability proxy a probe fails (None: passes all)


def model_key(class_weight: str, C: float, descriptors: str, reductions: tuple[str, ...]) -> tuple[Any, ...]:
    """Key of one esML variant: (class_weight, C, descriptors, reductions joined by '+')."""
    return (class_weight, float(C), descriptors, "+".join(reductions))


def fit_models(
    mp: LabelledSet, fractions: np.ndarray, choices: StudyChoices, descriptor_sets: dict[str, tuple[str, ...]],
    seed: int = 0,
) -> tuple[dict, dict]:  # fmt: skip
    """esML for every (class_weight, C, descriptors, reductions), fitted on the 80 % hold-out training part of the
    sML-labelled MP set (the shipped esML's split). Returns {key: conductive mask (n,)}, {key: hold-out metrics}."""
    train, test = holdout_split(mp, seed)
    masks, metrics = {}, {}
    for cw, C, desc, red in itertools.product(choices.class_weight, choices.C, choices.descriptors, choices.reductions):
        model = ElementalLinearModel(descriptors=descriptor_sets[desc], reductions=red, C=C, class_weight=cw)
        model.fit(mp.fractions[train], mp.y[train])
        held = model.predict(mp.fractions[test])
        key = model_key(cw, C, desc, red)
        metrics[key] = {
            "holdout_accuracy": float(np.mean(held == mp.y[test])),
            "holdout_balanced_accuracy": float(balanced_accuracy_score(mp.y[test], held)),
        }
        masks[key] = np.concatenate(
            [model.decision_function(fractions[lo : lo + 65536]) > 0 for lo in range(0, len(fractions), 65536)]
        )
    return masks, metrics


def score_sample(
    sample: StudySample, mp: LabelledSet, choices: StudyChoices, descriptor_sets: dict[str, tuple[str, ...]],
    seed: int = 0,
) -> Scored:  # fmt: skip
    """Every test of the study on every row of ``sample`` (the probes included)."""
    fractions = sample.fractions
    conductive, metrics = fit_models(mp, fractions, choices, descriptor_sets, seed)
    neutral = {name: charge_neutral(sample.z, sample.amounts, state_table(oxidation_states(name)))
               for name in choices.oxidation_list}  # fmt: skip
    g = np.gcd.reduce(sample.amounts, axis=1)
    total = sample.amounts.sum(axis=1)
    grid = np.all((100 * sample.amounts) % total[:, None] == 0, axis=1)
    oxygen = atomic_number("O")
    paper_narrowing = (sample.z.max(axis=1) <= 36) & (sample.z == oxygen).any(axis=1)
    failure = np.full(len(sample.z), None, dtype=object)
    for row in np.flatnonzero(sample.probe):  # the proxies need pymatgen per row: probes only
        amounts = {symbols()[z - 1]: int(a) for z, a in zip(sample.z[row], sample.amounts[row], strict=True) if z}
        flags = composition_flags(amounts)
        failure[row] = next((stage for stage in STABILITY_STAGES if not flags[stage]), None)
    return Scored(conductive, metrics, neutral, cost_per_kg(fractions), mean_atomic_mass(fractions),
                  total // np.maximum(g, 1), grid, paper_narrowing, failure)  # fmt: skip


# ------------------------------------------------------------------------------------------------- combinations
def _first_failure(sample: StudySample, scored: Scored, passed: np.ndarray) -> list[str | None]:
    """For each probe: the first of :data:`lisearch.downstream.narrowing.TRACE_STAGES` it fails (None = kept);
    ``passed`` (probes, stages) bool.
    The paper's narrowing is one mask, named by the first of its two tests that fails; the stability proxies by the
    first of the three that fails."""
    out: list[str | None] = []
    for row, ok in zip(np.flatnonzero(sample.probe), passed, strict=True):
        failed = next((stage for stage, good in zip(TRACE_STAGES, ok, strict=True) if not good), None)
        if failed in ("first_four_rows", "anion_present"):
            failed = "first_four_rows" if sample.z[row].max() > 36 else "anion_present"
        elif failed in STABILITY_STAGES:
            failed = scored.stability_failure[row]  # the first of the three proxies that fails
        out.append(failed)
    return out


def evaluate(sample: StudySample, scored: Scored, choices: StudyChoices) -> pd.DataFrame:
    """One row per combination: the choices, esML's hold-out metrics, the funnel shares of the sample (conductive,
    neutral, neutral_conductive, survivors = share passing every screen filter and the simplicity rule), the distance
    to the paper's funnel, the Table III compositions kept and the stage that removes each of them."""
    rows = []
    s, pr = scored, sample.probe
    n = int((~pr).sum())
    for (model, conductive), (ox, neutral) in itertools.product(s.conductive.items(), s.neutral.items()):
        cond, neu = conductive[~pr], neutral[~pr]
        shares = {"conductive": cond.mean(), "neutral": neu.mean(),
                  "neutral_conductive": (cond & neu).sum() / max(neu.sum(), 1)}  # fmt: skip
        distance = sum(abs(math.log(max(shares[k], 1e-9) / v)) for k, v in PAPER_FUNNEL.items())
        both = np.flatnonzero(~pr & conductive & neutral)
        rest = itertools.product(choices.limits, choices.max_formula_atoms, choices.stability)
        for (cost, mass), atoms, stab in rest:
            ok = (s.cost[both] <= cost) & (s.mass[both] <= mass) & ((s.atoms[both] <= atoms) if atoms else True)
            p = np.flatnonzero(pr)
            stable = pd.isna(s.stability_failure[p]) if stab else np.ones(len(p), bool)
            passed = np.column_stack([
                s.grid[p], conductive[p], neutral[p], s.cost[p] <= cost, s.mass[p] <= mass, s.paper_narrowing[p],
                s.paper_narrowing[p], stable, stable, stable, s.atoms[p] <= atoms if atoms else np.ones(len(p), bool),
            ])  # fmt: skip
            removed = _first_failure(sample, s, passed)
            row = {"class_weight": model[0], "C": model[1], "descriptors": model[2], "reductions": model[3],
                   "oxidation_list": ox, "max_cost_per_kg": cost, "max_mean_atomic_mass": mass,
                   "max_formula_atoms": atoms, "stability": stab, **s.model_metrics[model], **shares,
                   "survivors": ok.sum() / n, "funnel_distance": distance,
                   "table_iii_kept": sum(r is None for r in removed)}  # fmt: skip
            row.update({f"removed:{name}": r for name, r in zip(sample.probe_names, removed, strict=True)})
            rows.append(row)
    return pd.DataFrame(rows)


def choose(grid: pd.DataFrame, screenable_only: bool = True, min_holdout: float = MIN_HOLDOUT_ACCURACY) -> pd.Series:
    """The combination closest to the paper by the objective of the module docstring, among models that reproduce
    the sML labels about as well as the paper's esML (hold-out accuracy >= :data:`MIN_HOLDOUT_ACCURACY`)."""
    pool = grid[grid["holdout_accuracy"] >= min_holdout]
    pool = pool[pool["reductions"] == "mean"] if screenable_only else pool
    if pool.empty:
        raise InputError(
            f"No combination of the study has an esML with hold-out accuracy >= {min_holdout} and mean "
            "descriptors: check the sML labels (`lisearch label-structures`) or widen the study's choices."
        )
    ranked = pool.assign(_stab=~pool["stability"]).sort_values(
        ["table_iii_kept", "funnel_distance", "survivors", "_stab"], ascending=[False, True, True, True], kind="stable"
    )
    return ranked.drop(columns="_stab").iloc[0]


# ---------------------------------------------------------------------------------------------------- the study
def _matches(grid: pd.DataFrame, choice: dict[str, Any]) -> pd.Series:
    mask = pd.Series(True, index=grid.index)
    for key, value in choice.items():
        mask &= grid[key] == value
    return mask


CHOICE_COLUMNS = ("class_weight", "C", "descriptors", "reductions", "oxidation_list", "max_cost_per_kg",
                  "max_mean_atomic_mass", "max_formula_atoms", "stability")  # fmt: skip


def one_at_a_time(
    grid: pd.DataFrame, base: dict[str, Any], choices: StudyChoices, name: str = "default"
) -> pd.DataFrame:
    """The ``base`` combination (``changed`` = "(name)") and every combination that changes one of its choices
    (cost and weight limits change together)."""
    rows = [grid[_matches(grid, base)].assign(changed=f"({name})")]
    axes: dict[str, list[dict[str, Any]]] = {
        "class_weight": [{"class_weight": v} for v in choices.class_weight],
        "C": [{"C": v} for v in choices.C],
        "descriptors": [{"descriptors": v} for v in choices.descriptors],
        "reductions": [{"reductions": "+".join(v)} for v in choices.reductions],
        "oxidation_list": [{"oxidation_list": v} for v in choices.oxidation_list],
        "limits": [{"max_cost_per_kg": c, "max_mean_atomic_mass": m} for c, m in choices.limits],
        "max_formula_atoms": [{"max_formula_atoms": v} for v in choices.max_formula_atoms],
        "stability": [{"stability": v} for v in choices.stability],
    }
    for axis, options in axes.items():
        for option in options:
            if all(base[k] == v for k, v in option.items()):
                continue
            values = list(option.values())
            label = f"{values[0]:g} USD/kg, {values[1]:g} g/mol" if axis == "limits" else str(values[0])
            rows.append(grid[_matches(grid, {**base, **option})].assign(changed=f"{axis}: {label}"))
    return pd.concat(rows, ignore_index=True)


def needed_choices(grid: pd.DataFrame, chosen: pd.Series, names: tuple[str, ...]) -> dict[str, str | None]:
    """For each probe lost under ``chosen``: the combination that keeps it with the fewest changed choices (ties: the
    one nearest the paper's funnel), written as those changes; None for probes ``chosen`` keeps; "no combination"
    when none keeps it."""
    out: dict[str, str | None] = {}
    changes = sum((grid[c] != chosen[c]).astype(int) for c in CHOICE_COLUMNS)
    for name in names:
        if chosen[f"removed:{name}"] is None:
            out[name] = None
            continue
        keeps = grid[pd.isna(grid[f"removed:{name}"])]
        if keeps.empty:
            out[name] = "no combination of the study keeps it"
            continue
        best = keeps.assign(_n=changes[keeps.index]).sort_values(["_n", "funnel_distance"], kind="stable").iloc[0]
        diff = [f"{c}={best[c]}" for c in CHOICE_COLUMNS if best[c] != chosen[c]]
        out[name] = ", ".join(diff)
    return out


def default_pipeline_trace(sample: StudySample, default_row: pd.Series) -> list[str | None]:
    """The default pipeline's trace: the study's stages, then the shortlist's plausibility rules (default settings)
    for probes the study's stages keep."""
    probes = np.flatnonzero(sample.probe)
    rules = plausibility(sample.z[probes], sample.amounts[probes])
    out = []
    for name, reason in zip(sample.probe_names, rules["reason"], strict=True):
        first = default_row[f"removed:{name}"]
        out.append(first if first is not None else (None if pd.isna(reason) else f"plausibility: {reason}"))
    return out


@dataclass(frozen=True)
class StudyResult:
    """The study: every combination (grid), the default and chosen rows, one-at-a-time tables, the trace."""

    grid: pd.DataFrame
    default: pd.Series
    paper: pd.Series
    best_any_model: pd.Series
    changes: pd.DataFrame
    paper_changes: pd.DataFrame
    trace: pd.DataFrame
    settings: dict[str, Any]
    paths: dict[str, Any] = field(default_factory=dict)  # the files of :func:`write_study`, when written


def run_study(
    mp: LabelledSet, descriptor_sets: dict[str, tuple[str, ...]], n: int = 400_000, seed: int = 0,
    choices: StudyChoices | None = None, min_holdout: float = MIN_HOLDOUT_ACCURACY,
) -> StudyResult:  # fmt: skip
    """The whole study: sample (``n`` compositions, ``seed``), score, evaluate, choose (esML variants with hold-out
    accuracy >= ``min_holdout``), trace."""
    choices = choices or StudyChoices()
    sample = build_sample(n, seed)
    scored = score_sample(sample, mp, choices, descriptor_sets, seed)
    grid = evaluate(sample, scored, choices)
    base = {k: v for k, v in DEFAULT_CHOICE.items()}
    default = grid[_matches(grid, base)].iloc[0]
    paper = choose(grid, min_holdout=min_holdout)
    trace = pd.DataFrame(
        {
            "table_iii": sample.probe_names,
            "default": default_pipeline_trace(sample, default),
            "paper": [paper[f"removed:{name}"] for name in sample.probe_names],
            "paper_would_need": list(needed_choices(grid, paper, sample.probe_names).values()),
        }
    )
    settings = {"n": n, "seed": seed, "choices": asdict(choices), "descriptor_sets": descriptor_sets,
                "combinations": len(grid), "min_holdout_accuracy": min_holdout}  # fmt: skip
    paper_base = {c: paper[c] for c in CHOICE_COLUMNS}
    best = choose(grid, screenable_only=False, min_holdout=min_holdout)
    return StudyResult(grid, default, paper, best, one_at_a_time(grid, base, choices),
                       one_at_a_time(grid, paper_base, choices, "paper profile"), trace, settings)  # fmt: skip


# ------------------------------------------------------------------------------------------------------ outputs
SHARES = ("conductive", "neutral", "neutral_conductive")


def _fmt_choice(row: pd.Series) -> str:
    limits = f"{row['max_cost_per_kg']:g} USD/kg, {row['max_mean_atomic_mass']:g} g/mol"
    atoms = f"<= {row['max_formula_atoms']} atoms" if row["max_formula_atoms"] else "no size limit"
    return (f"class weight {row['class_weight']}, C {row['C']:g}, descriptors {row['descriptors']}, "
            f"{row['reductions']}; {row['oxidation_list']}; {limits}; {atoms}; "
            f"stability proxies {'on' if row['stability'] else 'off'}")  # fmt: skip


def profile_settings(row: pd.Series) -> list[str]:
    """The ``--set`` overrides (``section.key=value``) that reproduce a study combination in the pipeline."""
    return [
        f"train.class_weight={row['class_weight']}", f"train.C={row['C']:g}", f"train.descriptors={row['descriptors']}",
        f"screen.oxidation_list={row['oxidation_list']}",
        f"screen.max_cost_per_kg={limit_text(row['max_cost_per_kg'])}",
        f"screen.max_mean_atomic_mass={limit_text(row['max_mean_atomic_mass'])}",
        f"narrow.max_formula_atoms={row['max_formula_atoms']}", f"narrow.stability={str(row['stability']).lower()}",
    ]  # fmt: skip


def profile_mismatches(row: pd.Series, settings: Any) -> list[str]:
    """The settings of ``settings`` (a :class:`lisearch.config.Settings`) that differ from a study combination."""
    have = {
        "train.class_weight": settings.train.class_weight, "train.C": f"{settings.train.C:g}",
        "train.descriptors": settings.train.descriptors, "screen.oxidation_list": settings.screen.oxidation_list,
        "screen.max_cost_per_kg": limit_text(settings.screen.cost_limit),
        "screen.max_mean_atomic_mass": limit_text(settings.screen.mass_limit),
        "narrow.max_formula_atoms": str(settings.narrow.max_formula_atoms),
        "narrow.stability": str(settings.narrow.stability).lower(),
    }  # fmt: skip
    want = dict(s.split("=", 1) for s in profile_settings(row))
    return [f"{k}: profile {have[k]}, study {v}" for k, v in want.items() if have[k] != v]


def _funnel_line(row: pd.Series) -> str:
    return " / ".join(f"{100 * row[k]:.2f} %" for k in SHARES)


def to_markdown(result: StudyResult) -> str:
    """The study as Markdown: settings, the two chosen rows, the one-at-a-time table and the Table III trace."""
    s = result.settings
    lines = [
        f"Sample: {s['n']:,} compositions drawn uniformly from the paper's space (seed {s['seed']}); "
        f"{s['combinations']:,} combinations of choices. Funnel = conductive / neutral / conductive among neutral "
        "(paper: 60 % / ~10 % / ~7 %).",
        "",
        f"- default: {_fmt_choice(result.default)}: {_funnel_line(result.default)}, "
        f"Table III kept {result.default['table_iii_kept']} of {len(result.trace)}",
        f"- `paper` profile: {_fmt_choice(result.paper)}: {_funnel_line(result.paper)}, "
        f"Table III kept {result.paper['table_iii_kept']} of {len(result.trace)}",
        f"- best with any reductions (not screenable when not mean-only): {_fmt_choice(result.best_any_model)}: "
        f"{_funnel_line(result.best_any_model)}, Table III kept {result.best_any_model['table_iii_kept']}",
        "",
    ]
    for title, table in (("the default", result.changes), ("the `paper` profile", result.paper_changes)):
        lines += [
            f"| change from {title} | esML hold-out acc. | conductive | neutral | conductive of neutral | "
            "survivors | Table III kept |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in table.itertuples(index=False):
            lines.append(
                f"| {r.changed} | {r.holdout_accuracy:.3f} | {100 * r.conductive:.1f} % | {100 * r.neutral:.2f} % | "
                f"{100 * r.neutral_conductive:.1f} % | {100 * r.survivors:.4f} % | {r.table_iii_kept} |"
            )
        lines.append("")
    lines += ["| Table III | removed under the default by | under `paper` by | `paper` would need |",
              "|---|---|---|---|"]  # fmt: skip
    for r in result.trace.itertuples(index=False):
        lines.append(f"| {r.table_iii} | {r.default or 'kept'} | {r.paper or 'kept'} | {r.paper_would_need or ''} |")
    return "\n".join(lines)


def study_figure(result: StudyResult) -> Any:
    """Left: every combination's conductive vs neutral share (colour: Table III kept), the paper's funnel, the
    default and the profile. Right: Table III kept for each one-at-a-time change."""
    plt = pyplot()
    keys = ["class_weight", "C", "descriptors", "reductions", "oxidation_list"]
    grid = result.grid.groupby(keys, as_index=False).agg(
        conductive=("conductive", "first"), neutral=("neutral", "first"), table_iii_kept=("table_iii_kept", "max")
    )
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1, 1.3]})
    dots = a.scatter(100 * grid["neutral"], 100 * grid["conductive"], c=grid["table_iii_kept"], cmap="viridis", s=18,
                     vmin=0, vmax=len(result.trace))  # fmt: skip
    fig.colorbar(dots, ax=a, label="Table III kept (best limits, size rule, narrowing)")
    a.scatter([10], [60], marker="*", s=250, color="crimson", label="paper")
    for row, mark, name in ((result.default, "s", "default"), (result.paper, "D", "paper profile")):
        a.scatter([100 * row["neutral"]], [100 * row["conductive"]], marker=mark, s=80, facecolor="none",
                  edgecolor="black", label=name)  # fmt: skip
    a.set(xscale="log", xlabel="charge-neutral share of the space (%)", ylabel="predicted conductive (%)",
          title="Every esML variant x oxidation list", xlim=(0.2, 15), ylim=(55, 100))  # fmt: skip
    a.legend(loc="lower left", fontsize=8)
    changes = result.paper_changes
    b.barh(range(len(changes)), changes["table_iii_kept"], color="steelblue")
    b.set_yticks(range(len(changes)), changes["changed"], fontsize=7)
    b.invert_yaxis()
    b.set(
        xlabel=f"Table III compositions kept (of {len(result.trace)})",
        title="One choice changed from the paper profile",
    )
    fig.tight_layout()
    return fig


def write_study(result: StudyResult, folder: Any) -> dict[str, Any]:
    """paper_study.md, .json (settings, chosen rows, trace), .csv (every combination), .png into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "paper_study.md", "json": folder / "paper_study.json",
             "csv": folder / "paper_study.csv", "figure": folder / "paper_study.png"}  # fmt: skip
    paths["markdown"].write_text(to_markdown(result) + "\n")
    payload = {
        "settings": result.settings, "objective": __doc__.split("Objective")[1].split("Shapes")[0].strip(),
        "default": json.loads(result.default.to_json()), "paper": json.loads(result.paper.to_json()),
        "paper_settings": profile_settings(result.paper), "trace": result.trace.to_dict(orient="records"),
    }  # fmt: skip
    paths["json"].write_text(json.dumps(payload, indent=1, default=str) + "\n")
    result.grid.to_csv(paths["csv"], index=False)
    fig = study_figure(result)
    fig.savefig(paths["figure"], dpi=120)
    pyplot().close(fig)
    return paths
