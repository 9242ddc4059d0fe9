"""``lisearch validate-mobility``: the structural descriptors and MD checked against measured conductivities.

* **OBELiX's structures** (its 321 CIFs, not predicted ones): each one's sML p_superionic and BVSE barriers
  (:func:`lisearch.mobility.structure.structure_descriptors`; a partially occupied CIF: sML as ``label-structures``
  does, BVSE on the majority ordering), against the measured conductivity of the OBELiX entries that use that CIF:
  ROC-AUC for sigma >= ``measured.threshold`` (1e-4 S/cm) with a 95 % bootstrap interval over materials, and the
  Spearman correlation with log10 sigma. Beside them, the measured models' out-of-group predictions on the same
  entries (leave-chemical-system-out CV of ``lisearch validate``, read from its saved report). Nothing is fitted:
  these descriptors are used as they are, so no split is needed. A barrier with no path below the cut-off is
  infinite and ranks last.
* **Known fast and poor conductors** (:data:`KNOWN_FAST`, :data:`KNOWN_SLOW`) from their shipped Materials Project
  structures (per formula, the entry with the lowest MP E_hull in ``mp_known``): the share of the 25 fast-slow pairs
  each descriptor orders correctly (ties count one half), and with ``md`` the same for the MD Li diffusivity at
  ``mobility.temperatures``' first temperature. A label is a claim about a phase, and the lowest-energy MP
  structure need not be the phase the claim is about: each structure's label is checked against OBELiX's measured
  conductivity of the same formula *and* space group (median over its entries; ``label_agrees`` is false when it
  lies on the other side of ``measured.threshold``), and the pairs are reported twice: over all ten as listed
  (``known_pairs``) and over those whose label OBELiX does not contradict (``known_pairs_label_checked``).

Per-structure results are appended to partial CSVs as they finish, so a stopped validation continues.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.datasets import MP2025_ARCHIVE, OBELIX_CIFS, iter_cifs, mp_known, obelix
from lisearch.materials.templates import read_cifs
from lisearch.materials.validation import resumable_map

#: Known fast Li conductors and known poor ones (room temperature: 1e-3..1e-2 S/cm against < 1e-8 S/cm).
KNOWN_FAST = ("Li10GeP2S12", "Li7La3Zr2O12", "Li6PS5Cl", "Li3PS4", "Li3InCl6")
KNOWN_SLOW = ("Li3PO4", "Li2SO4", "LiF", "Li2O", "Li4SiO4")
#: Descriptors and the direction in which they say "faster": (column, +1 higher is faster | -1 lower is faster).
DESCRIPTORS = {"sml_p_superionic": 1, "bvse_e_1d": -1, "bvse_e_2d": -1, "bvse_e_3d": -1}


def describe_item(args: tuple[str, str, Any]) -> dict[str, Any]:
    """:func:`lisearch.mobility.structure.describe_cif` of (key, CIF text, settings): one worker item."""
    from lisearch.mobility.structure import describe_cif  # noqa: PLC0415 (worker side)

    return describe_cif(*args)


def _simulate(args: tuple[str, str, Any, float]) -> dict[str, Any]:
    from pymatgen.core import Structure  # noqa: PLC0415 (worker side)

    from lisearch.mobility.md import simulate  # noqa: PLC0415

    key, text, settings, temperature = args
    return {"material_id": key, **simulate(Structure.from_str(text, fmt="cif"), temperature, settings).row()}


def _reduced(formula: str) -> str | None:
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    try:
        return str(Composition(formula).reduced_formula)
    except Exception:  # OBELiX writes a few formulas pymatgen cannot read; they match nothing
        return None


def label_check(known: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``known`` (formula, fast, cif) with ``space_group_number`` (spglib at 0.1 of the structure used),
    ``obelix_sigma`` (median measured S/cm of OBELiX's entries with the same reduced formula and space-group
    number; NaN when OBELiX has none), ``obelix_ids`` and ``label_agrees`` (False only when that median lies on the
    other side of ``threshold`` from the label)."""
    from pymatgen.core import Structure  # noqa: PLC0415 (slow import, needed here only)

    from lisearch.materials.potential import space_group_number  # noqa: PLC0415

    data = obelix()
    data["reduced"] = [_reduced(f) for f in data["formula"]]
    numbers, sigmas, ids = [], [], []
    for row in known.itertuples():
        number = space_group_number(Structure.from_str(row.cif, fmt="cif"))
        same = data[(data["reduced"] == _reduced(row.formula)) & (data["space_group_number"] == number)]
        numbers.append(number)
        sigmas.append(float(same["sigma_s_per_cm"].median()) if len(same) else math.nan)
        ids.append(",".join(same["id"]))
    out = known.assign(space_group_number=numbers, obelix_sigma=sigmas, obelix_ids=ids)
    measured_fast = out["obelix_sigma"] >= threshold
    return out.assign(label_agrees=out["obelix_sigma"].isna() | (measured_fast == out["fast"]))


def known_structures() -> pd.DataFrame:
    """formula, material_id, e_above_hull_ev, fast (bool), cif of :data:`KNOWN_FAST` and :data:`KNOWN_SLOW`."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    known = mp_known()
    known["reduced"] = [Composition(f).reduced_formula for f in known["formula"]]
    rows = []
    for formula in (*KNOWN_FAST, *KNOWN_SLOW):
        match = known[known["reduced"] == Composition(formula).reduced_formula].sort_values("e_above_hull_ev")
        if len(match):
            rows.append(
                {
                    "formula": formula,
                    "material_id": match["material_id"].iloc[0],
                    "e_above_hull_ev": float(match["e_above_hull_ev"].iloc[0]),
                    "fast": formula in KNOWN_FAST,
                }
            )
    frame = pd.DataFrame(rows)
    cifs = read_cifs(MP2025_ARCHIVE, frame["material_id"])
    return frame.assign(cif=[cifs.get(i) for i in frame["material_id"]])


def pair_share(scores: pd.Series, fast: pd.Series) -> float | None:
    """Share of (fast, slow) pairs whose fast member scores higher (ties: one half; NaN scores drop the pair)."""
    f, s = scores[fast.astype(bool)].to_numpy(float), scores[~fast.astype(bool)].to_numpy(float)
    pairs = [(a, b) for a in f for b in s if not (math.isnan(a) or math.isnan(b))]
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])) if pairs else None


def ranking_metrics(score: np.ndarray, y: np.ndarray, log10_sigma: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """ROC-AUC (label ``y``) with its 95 % bootstrap interval over materials, Spearman rho with ``log10_sigma``, n
    and positives, on the rows where ``score`` is not NaN (``+-inf`` kept: they rank first or last)."""
    from scipy.stats import spearmanr  # noqa: PLC0415 (slow import, needed here only)
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    have = ~np.isnan(score)
    s, yy, ls = np.clip(score[have], -1e9, 1e9), y[have].astype(int), log10_sigma[have]
    out: dict[str, Any] = {"n": int(have.sum()), "positives": int(yy.sum()), "roc_auc": None, "roc_auc_ci": None,
                           "spearman": None}  # fmt: skip
    if len(set(yy)) < 2:
        return out
    out["roc_auc"] = float(roc_auc_score(yy, s))
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(1000):
        pick = rng.integers(0, len(s), len(s))
        if len(set(yy[pick])) == 2:
            aucs.append(roc_auc_score(yy[pick], s[pick]))
    out["roc_auc_ci"] = np.percentile(aucs, [2.5, 97.5]).round(4).tolist()
    out["spearman"] = float(spearmanr(s, ls).statistic)
    return out


def _bvse_tag(mob: Any) -> str:
    """The BVSE settings in a partial CSV's name, so a changed grid never resumes from another grid's rows."""
    return f"r{mob.bvse_resolution:g}-e{mob.bvse_encut:g}-p{mob.bvse_max_points}"


def _obelix_table(described: pd.DataFrame, settings: Any) -> pd.DataFrame:
    """One row per OBELiX entry with a CIF: its measured values, label and the CIF's descriptors (and the measured
    models' out-of-group predictions when a saved ``lisearch validate`` report is there)."""
    from lisearch.measured.validation import saved_validation  # noqa: PLC0415 (sklearn-heavy, needed here only)

    data = obelix()
    data = data[data["cif_id"].notna()].copy()
    data["y"] = (data["sigma_s_per_cm"] >= settings.measured.threshold).astype(int)
    described = described.drop(columns=["formula"], errors="ignore")
    table = data.merge(described, left_on="cif_id", right_on="material_id", how="left")
    saved = saved_validation(settings)
    if saved is not None:
        pred = saved["predictions"][["id", "transfer_cv_p_fast", "transfer_cv_log10_sigma"]]
        table = table.merge(pred, on="id", how="left")
    return table


def obelix_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """:func:`ranking_metrics` of every descriptor, each with the measured classifier's out-of-group P(fast) on the
    same rows (``measured_same_rows``) when present, and of the measured predictions on every row."""
    y, ls = table["y"].to_numpy(int), table["log10_sigma"].to_numpy(float)
    measured = [c for c in ("transfer_cv_p_fast", "transfer_cv_log10_sigma") if c in table]
    out = {}
    for column, sign in DESCRIPTORS.items():
        score = sign * table[column].to_numpy(float)
        out[column] = ranking_metrics(score, y, ls)
        if measured:
            same = np.where(np.isnan(score), np.nan, table[measured[0]].to_numpy(float))
            out[column]["measured_same_rows"] = ranking_metrics(same, y, ls)
    out.update({c: ranking_metrics(table[c].to_numpy(float), y, ls) for c in measured})
    return out


def _obelix_part(settings: Any, processes: int, folder: Path, say: Callable[[str], None]) -> dict[str, Any]:
    mob = settings.mobility
    tag = _bvse_tag(mob)
    work = [(key, text, mob) for key, text in iter_cifs(OBELIX_CIFS)]
    say(f"OBELiX: {len(work)} CIFs, sML and BVSE in {processes} process(es)")
    described = resumable_map(processes, describe_item, work, folder / f"mobility_obelix.partial-{tag}.csv")
    table = _obelix_table(described, settings)
    table.to_csv(folder / "mobility_obelix.csv", index=False)
    return {"obelix": obelix_metrics(table), "obelix_seconds_per_structure": float(described["seconds"].median())}


def obelix_md_subset(n: int, max_sites: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """A fixed random sample (``seed``) of ``n`` OBELiX CIFs that are ordered (MD needs every site whole) with at
    most ``max_sites`` sites: (cif id, CIF text)."""
    from lisearch.structure.labelling import parse_cif  # noqa: PLC0415 (pymatgen's CIF reader, needed here only)

    usable = []
    for key, text in iter_cifs(OBELIX_CIFS):
        try:
            structure = parse_cif(text)
        except ValueError:
            continue
        if structure.is_ordered and len(structure) <= max_sites and "Li" in structure.composition:
            usable.append((key, text))
    rng = np.random.default_rng(seed)
    return [usable[i] for i in sorted(rng.choice(len(usable), size=min(n, len(usable)), replace=False))]


def _obelix_md_part(settings: Any, processes: int, folder: Path, n: int, say: Callable[[str], None]) -> dict[str, Any]:
    mob = settings.mobility
    temperature = mob.temperature_list[0]
    subset = obelix_md_subset(n)
    say(f"MD of {len(subset)} ordered OBELiX structures at {temperature:g} K, {mob.md_ps:g} ps")
    partial = folder / f"mobility_obelix_md.partial-T{temperature:g}-{mob.md_ps:g}ps-s{mob.seed}-n{n}.csv"
    simulated = resumable_map(processes, _simulate, [(k, t, mob, temperature) for k, t in subset], partial)
    table = _obelix_table(simulated.rename(columns={"status": "md_status", "reason": "md_reason"}), settings)
    table = table[table["material_id"].notna()]
    table.to_csv(folder / "mobility_obelix_md.csv", index=False)
    y, ls = table["y"].to_numpy(int), table["log10_sigma"].to_numpy(float)
    d = table["li_diffusivity"].astype(float)
    scores = {"md_li_diffusivity": d.where(table["md_status"] == "ok").to_numpy(float),
              "md_li_diffusivity_with_melted": d.where(table["md_status"] != "failed").to_numpy(float)}  # fmt: skip
    out: dict[str, Any] = {"structures": len(subset), "ok": int((table["md_status"] == "ok").sum())}
    for name, score in scores.items():
        out[name] = ranking_metrics(score, y, ls)
        if "transfer_cv_p_fast" in table:  # the measured classifier's out-of-group P(fast) on the same materials
            same = np.where(np.isnan(score), np.nan, table["transfer_cv_p_fast"].to_numpy(float))
            out[name]["measured_same_rows"] = ranking_metrics(same, y, ls)
    return {"obelix_md": out}


def _known_part(settings: Any, processes: int, folder: Path, md: bool, say: Callable[[str], None]) -> dict[str, Any]:
    mob = settings.mobility
    tag = _bvse_tag(mob)
    known = label_check(known_structures(), settings.measured.threshold)
    known_work = [(r.material_id, r.cif, mob) for r in known.itertuples()]
    described = resumable_map(processes, describe_item, known_work, folder / f"mobility_known.partial-{tag}.csv")
    known = known.merge(described.drop(columns=["formula"]), on="material_id")
    out: dict[str, Any] = {}
    if md:
        temperature = mob.temperature_list[0]
        out["md_settings"] = {k: getattr(mob, k) for k in ("md_ps", "equilibration_ps", "timestep_fs",
                              "min_cell_length", "seed")} | {"temperature_k": temperature}  # fmt: skip
        say(f"MD of {len(known)} known conductors at {temperature:g} K, {mob.md_ps:g} ps, {processes} process(es)")
        md_work = [(r.material_id, r.cif, mob, temperature) for r in known.itertuples()]
        partial = folder / f"mobility_known_md.partial-T{temperature:g}-{mob.md_ps:g}ps-s{mob.seed}.csv"
        simulated = resumable_map(processes, _simulate, md_work, partial)
        known = known.merge(simulated.rename(columns={"status": "md_status", "reason": "md_reason"}), on="material_id")
    known.drop(columns=["cif"]).to_csv(folder / "mobility_known.csv", index=False)
    scores = {c: sign * known[c].astype(float) for c, sign in DESCRIPTORS.items()}
    if md:  # runs whose framework flowed are left out; how the pairs read with them kept is reported beside
        scores["md_li_diffusivity"] = known["li_diffusivity"].astype(float).where(known["md_status"] == "ok")
        scores["md_li_diffusivity_with_melted"] = (
            known["li_diffusivity"].astype(float).where(known["md_status"] != "failed")
        )
    out["known_pairs"] = {c: pair_share(s, known["fast"]) for c, s in scores.items()}
    agree = known["label_agrees"].astype(bool)
    out["known_pairs_label_checked"] = {c: pair_share(s[agree], known["fast"][agree]) for c, s in scores.items()}
    contradicted = ["formula", "material_id", "space_group_number", "obelix_ids", "obelix_sigma"]
    out["known_labels_contradicted"] = known.loc[~agree, contradicted].to_dict(orient="records")
    out["known"] = known.drop(columns=["cif"]).to_dict(orient="records")
    return out


def run_mobility_validation(
    settings: Any,
    processes: int,
    md: bool = False,
    output: Path | None = None,
    say: Callable[[str], None] = print,
    obelix: bool = True,
    obelix_md: int = 0,
) -> dict[str, Any]:
    """`lisearch validate-mobility`: the OBELiX check (unless ``obelix`` is false), the known conductors (with
    ``md``: their MD too) and, with ``obelix_md`` > 0, the MD of that many ordered OBELiX structures; writes
    ``mobility_validation.json`` and the per-structure CSVs into ``output`` (default ``<home>/reports``) and returns
    the report."""
    started = time.perf_counter()
    mob = settings.mobility
    folder = output or settings.paths.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    used = {"bvse_resolution": mob.bvse_resolution, "bvse_encut": mob.bvse_encut,
            "bvse_max_points": mob.bvse_max_points, "threshold": settings.measured.threshold}  # fmt: skip
    report: dict[str, Any] = {"settings": used}
    if obelix:
        report.update(_obelix_part(settings, processes, folder, say))
    report.update(_known_part(settings, processes, folder, md, say))
    if obelix_md:
        report.update(_obelix_md_part(settings, processes, folder, obelix_md, say))
    report["seconds"] = round(time.perf_counter() - started, 1)
    (folder / "mobility_validation.json").write_text(json.dumps(report, indent=1, default=str))
    return report


__all__ = [
    "DESCRIPTORS", "KNOWN_FAST", "KNOWN_SLOW", "describe_item", "known_structures", "label_check", "obelix_md_subset",
    "obelix_metrics", "pair_share", "ranking_metrics", "run_mobility_validation",
]  # fmt: skip
