"""Planning a screen: validate every setting and the model before any Spark work, and turn them into the plain
inputs each task needs (:class:`lisearch.kernels.ScreenInputs`, broadcast as a dict).

Also :func:`screen_in_process`, the same computation in one Python process (tests and benchmarks compare Spark
with it).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.config import Settings
from lisearch.elements import OXIDATION_LISTS, atomic_masses, oxidation_states, prices_per_kg, symbols
from lisearch.errors import InputError
from lisearch.kernels import STAT_COLUMNS, NetworkScorer, ScreenInputs, screen_sets
from lisearch.models.artifact import load_artifact
from lisearch.models.atom2vec import KIND as ATOM2VEC_KIND
from lisearch.models.atom2vec import Atom2VecModel
from lisearch.models.linear import KIND as LINEAR_KIND
from lisearch.models.linear import ElementalLinearModel
from lisearch.space import Block, CompositionSpace, default_elements

FUNNEL_STAGES = (
    ("total", "all compositions"),
    ("conductive", "predicted conductive (score > 0)"),
    ("neutral", "charge-neutral"),
    ("neutral_conductive", "charge-neutral and predicted conductive"),
    ("cost_ok", "... and cost within the limit"),
    ("survivors", "... and mean atomic mass within the limit (rows of `candidates`)"),
)
#: The stage each stage is a fraction of ("neutral" is a fraction of all, not of the conductive ones).
_PARENT = {
    "conductive": "total",
    "neutral": "total",
    "neutral_conductive": "neutral",
    "cost_ok": "neutral_conductive",
    "survivors": "cost_ok",
}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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


def _symbols(text: str, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in items if s not in symbols()]
    if unknown:
        raise InputError(f"screen.{what} names unknown element(s) {', '.join(unknown)}; use symbols of Z = 1..94.")
    return items


def model_path(settings: Settings) -> Path:
    """Path of the screen's model artifact: ``screen.model`` as a path, or ``<artifacts>/<name>.json``."""
    name = settings.screen.model
    if name.endswith(".json") or "/" in name:
        return Path(name).expanduser()
    return settings.paths.artifacts_dir / f"{name}.json"


def screen_model(artifact: dict[str, Any], source: str, space: CompositionSpace) -> tuple[float, float, np.ndarray]:
    """(bias, Li weight, weights aligned with the space's elements) of a loaded linear-model artifact.

    Raises:
        InputError: an invalid payload, or features that are not linear in the fractions.
    """
    model = ElementalLinearModel.from_payload(artifact["payload"], source)
    if tuple(model.reductions) != ("mean",):
        raise InputError(
            f"{source}: its features ({', '.join(model.feature_names[:3])}, ...) are not all composition-weighted "
            "means, so its score is not linear in the fractions and the screen cannot use it. Train a mean-only "
            "model (`lisearch train` does) or pass another --model."
        )
    bias, weights = model.element_weights()
    index = {s: i for i, s in enumerate(symbols())}
    return bias, float(weights[index["Li"]]), weights[[index[e] for e in space.elements]]


def network_model(
    artifact: dict[str, Any], source: str, space: CompositionSpace, states: dict[str, tuple[int, ...]]
) -> NetworkScorer:
    """The atom2vec-esML scorer of a loaded artifact.

    Raises:
        InputError: an invalid payload (wrong embedding size, ...), or an element of the space that can be part of
            a charge-neutral composition but has no vector in the embedding.
    """
    model = Atom2VecModel.from_payload(artifact["payload"], source)
    needed = [e for e in space.elements if states[e]]  # elements without states are never in a neutral composition
    model.vectors(["Li", *needed], source=source)  # raises naming the missing elements
    vectors = np.full((len(space.elements), model.dim), np.nan)  # NaN rows: never used (no neutral composition)
    known = [i for i, e in enumerate(space.elements) if e in model.elements]
    vectors[known] = model.vectors([space.elements[i] for i in known])
    return NetworkScorer(model.vectors(["Li"])[0], vectors, tuple(model.layers), model.reductions)


def plan_screen(settings: Settings) -> ScreenPlan:
    """Validate the screen settings and the model; no Spark. Raises :class:`InputError` / ``ConfigError``."""
    cfg = settings.screen
    elements = list(default_elements()) if cfg.elements.strip().lower() == "all" else _symbols(cfg.elements, "elements")
    excluded = set(_symbols(cfg.exclude, "exclude"))
    elements = [e for e in elements if e not in excluded]
    try:
        sizes = tuple(int(s) for s in cfg.sizes.split(",") if s.strip())
    except ValueError:
        raise InputError(f"screen.sizes is {cfg.sizes!r}: use 2, 3 or 2,3.") from None
    space = CompositionSpace(tuple(elements), cfg.step, sizes)
    if cfg.oxidation_list not in OXIDATION_LISTS:
        raise InputError(f"screen.oxidation_list is {cfg.oxidation_list!r}; use one of {', '.join(OXIDATION_LISTS)}.")
    run_id = cfg.run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    if not _RUN_ID.match(run_id):
        raise InputError(f"run id {run_id!r}: use letters, digits, '.', '_' or '-' (at most 64).")
    path = model_path(settings)
    states = oxidation_states(cfg.oxidation_list)
    artifact = load_artifact(path, kinds=(LINEAR_KIND, ATOM2VEC_KIND))  # missing / corrupt files stop here
    network = None
    if artifact["kind"] == ATOM2VEC_KIND:
        network = network_model(artifact, str(path), space, states)
        bias, li_weight, weights = 0.0, 0.0, np.zeros(len(space.elements))
    else:
        bias, li_weight, weights = screen_model(artifact, str(path), space)
    sha = str(artifact["sha256"])
    masses, prices = atomic_masses(), prices_per_kg()
    els = list(space.elements)
    inputs = ScreenInputs(
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
        max_cost_per_kg=cfg.max_cost_per_kg,
        max_mean_atomic_mass=cfg.max_mean_atomic_mass,
        emit=cfg.emit,
        network=network,
    )
    blocks = tuple(space.blocks(cfg.sets_per_block))
    return ScreenPlan(space, inputs, blocks, str(path), sha, cfg.oxidation_list, run_id)


# ------------------------------------------------------------------------------ plain form for broadcasting
def plan_to_dict(plan: ScreenPlan) -> dict[str, Any]:
    """The plan as plain data (JSON-ready) for broadcasting to executors."""
    inp = plan.inputs
    return {
        "elements": list(plan.space.elements),
        "step": plan.space.step,
        "sizes": list(plan.space.sizes),
        "blocks": [(b.k, b.start, b.stop) for b in plan.blocks],
        "inputs": {
            **{k: getattr(inp, k) for k in ("units", "bias", "li_weight", "li_mass", "li_price")},
            **{k: getattr(inp, k).tolist() for k in ("atomic_numbers", "weights", "masses", "prices")},
            "states": [list(s) for s in inp.states],
            "max_cost_per_kg": inp.max_cost_per_kg,
            "max_mean_atomic_mass": inp.max_mean_atomic_mass,
            "emit": inp.emit,
            "network": None
            if inp.network is None
            else {
                "li": inp.network.li.tolist(),
                "vectors": inp.network.vectors.tolist(),
                "layers": [[W.tolist(), b.tolist()] for W, b in inp.network.layers],
                "reductions": list(inp.network.reductions),
            },
        },
    }


def inputs_from_dict(data: dict[str, Any]) -> ScreenInputs:
    """Kernel inputs from :func:`plan_to_dict` output."""
    d = data["inputs"]
    return ScreenInputs(
        units=int(d["units"]),
        atomic_numbers=np.asarray(d["atomic_numbers"], dtype=np.int16),
        bias=float(d["bias"]),
        li_weight=float(d["li_weight"]),
        weights=np.asarray(d["weights"], dtype=np.float64),
        li_mass=float(d["li_mass"]),
        masses=np.asarray(d["masses"], dtype=np.float64),
        li_price=float(d["li_price"]),
        prices=np.asarray(d["prices"], dtype=np.float64),
        states=tuple(tuple(int(x) for x in s) for s in d["states"]),
        max_cost_per_kg=float(d["max_cost_per_kg"]),
        max_mean_atomic_mass=float(d["max_mean_atomic_mass"]),
        emit=bool(d["emit"]),
        network=_network_from_dict(d.get("network")),
    )


def _network_from_dict(d: dict[str, Any] | None) -> NetworkScorer | None:
    if d is None:
        return None
    return NetworkScorer(
        np.asarray(d["li"], dtype=np.float64),
        np.asarray(d["vectors"], dtype=np.float64),
        tuple((np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in d["layers"]),
        tuple(d["reductions"]),
    )


def partition_blocks(blocks: tuple[Block, ...], partitions: int) -> list[list[int]]:
    """Block ids for each of ``partitions`` Spark partitions (at most one per block), balanced by estimated work.

    A block's work is estimated as its number of element sets x (k - 1) (measured at 1 % steps: a quaternary set
    costs 2-3 ternary ones). Blocks are dealt largest first to the least-loaded partition, so equal blocks go round
    the partitions in rank order: each partition samples every region of the space, which evens out the charge-
    neutral work (it varies 4x between regions: elements with many oxidation states). Each list is in order.
    """
    n = max(1, min(partitions, len(blocks)))
    cost = [(b.stop - b.start) * (b.k - 1) for b in blocks]
    loads = [0] * n
    parts: list[list[int]] = [[] for _ in range(n)]
    for bid in sorted(range(len(cost)), key=lambda i: (-cost[i], i)):
        target = min(range(n), key=lambda j: (loads[j], j))
        parts[target].append(bid)
        loads[target] += cost[bid]
    return [sorted(p) for p in parts]


def space_from_dict(data: dict[str, Any]) -> CompositionSpace:
    """The composition space from :func:`plan_to_dict` output."""
    return CompositionSpace(tuple(data["elements"]), int(data["step"]), tuple(data["sizes"]))


def run_blocks(
    data: dict[str, Any], block_ids: list[int], inputs: ScreenInputs | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stats and survivors of some blocks of a plan in plain form (what one Spark task does)."""
    inputs = inputs or inputs_from_dict(data)
    space = space_from_dict(data)
    stats, survivors = [], []
    for bid in block_ids:
        k, start, stop = data["blocks"][bid]
        s, v = screen_sets(inputs, space.element_sets(Block(k, start, stop)))
        stats.append(s)
        survivors.append(v)
    return pd.concat(stats, ignore_index=True), pd.concat(survivors, ignore_index=True)


def funnel_frame(totals: dict[str, int | None]) -> pd.DataFrame:
    """One row per stage: stage, description, count, share of all, share of the previous stage."""
    rows = []
    for i, (stage, text) in enumerate(FUNNEL_STAGES):
        n = totals[stage]
        base = totals[_PARENT[stage]] if stage in _PARENT else None
        rows.append(
            {
                "stage_order": i,
                "stage": stage,
                "description": text if n is not None else text + " - not computed for this model",
                "count": n,
                "fraction_of_total": None if n is None else (n / totals["total"] if totals["total"] else 0.0),
                "fraction_of_previous": (n / base) if base and n is not None else None,
            }
        )
    return pd.DataFrame(rows).astype(
        {"count": "Int64", "fraction_of_total": "Float64", "fraction_of_previous": "Float64"}
    )


def stage_totals(stats: pd.DataFrame) -> dict[str, int | None]:
    """Whole-space counts per stage from per-set counts; a stage reported as -1 (not computed) becomes None."""
    return {c: None if (stats[c] < 0).any() else int(stats[c].sum()) for c in STAT_COLUMNS}


def screen_in_process(plan: ScreenPlan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(funnel, per-set stats, survivors) of the whole plan in this process."""
    stats, survivors = run_blocks(plan_to_dict(plan), list(range(len(plan.blocks))), plan.inputs)
    return funnel_frame(stage_totals(stats)), stats, survivors
