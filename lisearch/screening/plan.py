"""Planning a screen: the model and the space turned into the plain inputs each task needs
(:func:`plan_screen` -> :class:`lisearch.screening.kernels.ScreenInputs`, pure), a whole screen of validated settings
(:func:`plan_from_settings`, before any Spark work), and its plain form broadcast to executors.

Also :func:`screen_in_process`, the same computation in one Python process (tests and benchmarks compare Spark
with it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.chemistry.elements import LI_Z, atomic_masses, atomic_numbers, oxidation_states, prices_per_kg
from lisearch.chemistry.plausibility import PlausibilityRules
from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.models.artifact import load_artifact
from lisearch.models.atom2vec import KIND as ATOM2VEC_KIND
from lisearch.models.atom2vec import Atom2VecModel
from lisearch.models.linear import KIND as LINEAR_KIND
from lisearch.models.linear import ElementalLinearModel
from lisearch.plain import to_plain
from lisearch.run_ids import new_run_id
from lisearch.schema import partner_columns
from lisearch.screening.funnel import funnel_frame, stage_totals
from lisearch.screening.kernels import NetworkScorer, ScreenInputs, screen_sets, state_ranks
from lisearch.screening.space import Block, CompositionSpace, unrank_subset
from lisearch.screening.task import run_blocks


@dataclass(frozen=True)
class ScreenPlan:
    """A validated screen: the space, the kernel inputs, the blocks, the model (path, sha256), the list and run id."""

    space: CompositionSpace
    inputs: ScreenInputs
    blocks: tuple[Block, ...]
    model_path: str
    model_sha256: str
    oxidation_list: str
    run_id: str


def model_path(settings: Settings) -> Path:
    """Path of the screen's model artifact: ``screen.model`` as a path, or ``<artifacts>/<name>.json``."""
    name = settings.screen.model
    if name.endswith(".json") or "/" in name:
        return Path(name).expanduser()
    return settings.paths.artifacts_dir / f"{name}.json"


def screen_model(model: ElementalLinearModel, source: str, space: CompositionSpace) -> tuple[float, float, np.ndarray]:
    """(bias, Li weight, weights aligned with the space's elements) of a linear model.

    Raises:
        InputError: an invalid payload, or features that are not linear in the fractions.
    """
    if tuple(model.reductions) != ("mean",):
        raise InputError(
            f"{source}: its features ({', '.join(model.feature_names[:3])}, ...) are not all composition-weighted "
            "means, so its score is not linear in the fractions and the screen cannot use it. Train a mean-only "
            "model (`lisearch train` does) or pass another --model."
        )
    bias, weights = model.element_weights()
    column = {s: z - 1 for s, z in atomic_numbers().items()}  # a fraction matrix's column of element Z is Z - 1
    return bias, float(weights[LI_Z - 1]), weights[[column[e] for e in space.elements]]


def network_model(
    model: Atom2VecModel, source: str, space: CompositionSpace, states: dict[str, tuple[int, ...]]
) -> NetworkScorer:
    """The kernel's scorer of an atom2vec-esML model.

    Raises:
        InputError: an invalid payload (wrong embedding size, ...), or an element of the space that can be part of
            a charge-neutral composition but has no vector in the embedding.
    """
    needed = [e for e in space.elements if states[e]]  # elements without states are never in a neutral composition
    model.vectors(["Li", *needed], source=source)  # raises naming the missing elements
    vectors = np.full((len(space.elements), model.dim), np.nan)  # NaN rows: never used (no neutral composition)
    known = [i for i, e in enumerate(space.elements) if e in model.elements]
    vectors[known] = model.vectors([space.elements[i] for i in known])
    return NetworkScorer(model.vectors(["Li"])[0], vectors, tuple(model.layers), model.reductions)


def load_screen_model(path: Path) -> tuple[ElementalLinearModel | Atom2VecModel, str]:
    """(model, sha256) of the artifact at ``path``: an esML-like linear model or atom2vec-esML.

    Raises:
        InputError: a missing, corrupted or edited file, or another kind of model.
    """
    artifact = load_artifact(path, kinds=(LINEAR_KIND, ATOM2VEC_KIND))  # missing / corrupt files stop here
    model_class = Atom2VecModel if artifact["kind"] == ATOM2VEC_KIND else ElementalLinearModel
    return model_class.from_payload(artifact["payload"], str(path)), str(artifact["sha256"])


def plan_screen(
    space: CompositionSpace,
    model: ElementalLinearModel | Atom2VecModel,
    *,
    oxidation_list: str = "pymatgen_icsd",
    max_cost_per_kg: float = 30.0,
    max_mean_atomic_mass: float = 30.0,
    emit: bool = True,
    source: str = "the model",
    plausibility: PlausibilityRules | None = None,
) -> ScreenInputs:
    """The kernel inputs of screening ``space`` with ``model``: weights, masses (g/mol), prices (USD/kg) and
    oxidation states aligned with the space's elements, and the limits. Pure: reads no file. ``plausibility``:
    candidates must also pass these rules (:mod:`lisearch.chemistry.plausibility`); None: every survivor is a candidate.

    Raises:
        InputError: a linear model whose score is not linear in the fractions, an atom2vec-esML embedding without a
            vector for an element that can be in a neutral composition, or an unknown ``oxidation_list``
            (``source`` names the model in the message).
    """
    states = oxidation_states(oxidation_list)
    network = None
    if isinstance(model, Atom2VecModel):
        network = network_model(model, source, space, states)
        bias, li_weight, weights = 0.0, 0.0, np.zeros(len(space.elements))
    else:
        bias, li_weight, weights = screen_model(model, source, space)
    masses, prices = atomic_masses(), prices_per_kg()
    els = list(space.elements)
    return ScreenInputs(
        units=space.units,
        atomic_numbers=space.atomic_numbers,
        bias=bias,
        li_weight=li_weight,
        weights=weights,
        li_mass=float(masses["Li"]),
        masses=masses[els].to_numpy(dtype=np.float64),
        li_price=float(prices["Li"]),
        prices=prices[els].to_numpy(dtype=np.float64),
        states=tuple(states[e] for e in els),
        max_cost_per_kg=max_cost_per_kg,
        max_mean_atomic_mass=max_mean_atomic_mass,
        emit=emit,
        network=network,
        columns=partner_columns(space.sizes),
        plausibility=plausibility,
    )


def plan_from_settings(settings: Settings) -> ScreenPlan:
    """The screen of ``settings`` validated with its model, before any Spark work; a new run id when none is set.

    Raises:
        InputError: a space that cannot be built (step, too few elements), or a missing, corrupted or unusable
            model (see :func:`plan_screen`).
    """
    cfg = settings.screen
    space = CompositionSpace(cfg.partners, cfg.step, cfg.size_tuple)
    run_id = settings.run.id or new_run_id()
    path = model_path(settings)
    model, sha = load_screen_model(path)
    rules = PlausibilityRules(settings.shortlist.min_state_frequency, settings.shortlist.max_formula_atoms)
    inputs = plan_screen(
        space,
        model,
        oxidation_list=cfg.oxidation_list,
        max_cost_per_kg=cfg.cost_limit,
        max_mean_atomic_mass=cfg.mass_limit,
        emit=cfg.emit,
        source=str(path),
        plausibility=rules if cfg.plausibility_applies else None,
    )
    # blocks grouped by the elements' oxidation-state lists: a block's sets then share their neutral compositions
    # (the 93 default elements have 33 lists: a quinary group has 59 sets on average)
    space = replace(space, classes=tuple(int(r) for r in state_ranks(inputs.states)[1]))
    blocks = tuple(space.blocks(cfg.sets_per_block))
    return ScreenPlan(space, inputs, blocks, str(path), sha, cfg.oxidation_list, run_id)


# ------------------------------------------------------------------------------ plain form for broadcasting
def plan_to_dict(plan: ScreenPlan) -> dict[str, Any]:
    """The plan as plain data (JSON-ready; generated from the dataclasses) for broadcasting to executors:
    ``space``, ``blocks`` and ``inputs``."""
    return {"space": to_plain(plan.space), "blocks": to_plain(plan.blocks), "inputs": to_plain(plan.inputs)}


def screen_in_process(plan: ScreenPlan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(funnel, per-set stats, survivors) of the whole plan in this process."""
    stats, survivors = run_blocks(plan_to_dict(plan), list(range(len(plan.blocks))), plan.inputs, plan.space)
    return funnel_frame(stage_totals(stats)), stats, survivors


@dataclass(frozen=True)
class RowEstimate:
    """Rows a plan would write to `candidates`, estimated from a sample of element sets per size: ``expected`` and
    a 95 % interval ``low``..``high`` (exact, ``low == high``, when every set was screened), ``sampled_sets``."""

    expected: int
    low: int
    high: int
    sampled_sets: int

    def __str__(self) -> str:
        if self.low == self.high:
            return f"{self.expected:,} (every element set screened)"
        return (
            f"about {self.expected:,} (95 % interval {self.low:,}-{self.high:,}, from {self.sampled_sets} element sets)"
        )


#: Element sets sampled per size by :func:`estimate_rows`: quinary sets take ~1-30 ms each at 1 % steps, the
#: others ~0.1 ms. 256 quinary sets: 0.7-2.2 s, and for the 93-element run an estimate of 10.5 M rows (95 %
#: interval 0.3-20.7 M; 6.9 M written) instead of 15.6 M (0-46 M) from 64.
SAMPLE_SETS = {2: 1000, 3: 1000, 4: 256}


def estimate_rows(plan: ScreenPlan, sets_per_size: dict[int, int] | None = None, seed: int = 0) -> RowEstimate:
    """Screen a random sample of element sets of every size (``sets_per_size``, default :data:`SAMPLE_SETS`) in
    this process and extrapolate the rows of `candidates` (the plausible survivors when the plan applies the
    rules); a size with no more sets than its sample is screened whole. Seconds for the 93-element quinary space
    at 1 % steps (a quinary set has up to ~700,000 neutral compositions)."""
    rng = np.random.default_rng(seed)
    space, expected, variance, sampled = plan.space, 0.0, 0.0, 0
    n_elements = len(space.elements)
    for k in space.sizes:
        n, m = space.n_sets(k), (sets_per_size or SAMPLE_SETS)[k]
        if n <= m:
            ranks: list[int] = list(range(n))
        else:
            ranks = sorted(int(r) for r in rng.choice(n, m, replace=False))
        sets = np.array([unrank_subset(r, n_elements, k) for r in ranks], dtype=np.int64).reshape(-1, k)
        stats, _ = screen_sets(plan.inputs, sets)
        rows = (stats["plausible"] if plan.inputs.plausible_only else stats["survivors"]).to_numpy(dtype=np.float64)
        sampled += len(rows)
        expected += n * rows.mean()
        if len(rows) < n:
            variance += (n * rows.std(ddof=1)) ** 2 / len(rows) * (1 - len(rows) / n)
    half = 1.96 * variance**0.5
    return RowEstimate(round(expected), max(0, round(expected - half)), round(expected + half), sampled)


def check_candidate_rows(
    plan: ScreenPlan, limit: int, sets_per_size: dict[int, int] | None = None
) -> RowEstimate | None:
    """The plan's :func:`estimate_rows` (None when it writes no candidates); InputError, before any Spark work,
    when more rows than ``limit`` (0: no limit) are expected."""
    if not plan.inputs.emit:
        return None
    estimate = estimate_rows(plan, sets_per_size)
    if limit and estimate.expected > limit:
        raise InputError(
            f"This screen would write {estimate} rows to `candidates`, more than screen.max_candidate_rows = "
            f"{limit:,}. Narrow it (screen.elements, screen.sizes, screen.max_cost_per_kg, "
            "screen.max_mean_atomic_mass, screen.plausible_only=true) or raise the limit "
            "(--set screen.max_candidate_rows=0 for none)."
        )
    return estimate
