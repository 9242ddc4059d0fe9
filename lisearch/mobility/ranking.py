"""What ``lisearch mobility`` simulates, and the combined ranking of a run's materials (plain pandas, no Spark).

:func:`best_structures`: per formula of the run's `materials` rows, the relaxed structure with the lowest energy
above the hull, in shortlist order; the first ``top`` are simulated at every ``mobility.temperatures``
(:func:`simulate_item`, one Spark task each).

:func:`combined_ranking`: one row per formula with every part visible (the measured models' predicted log10 sigma,
e_above_hull, sML p_superionic, the 3D BVSE barrier, the MD diffusivity at the first temperature and, with several
temperatures, the activation energy) and ``combined_score``: the mean, over the parts a formula has, of its
percentile among the run's formulas on that part (1 = best: highest sigma, p and D, lowest E_hull and barrier; a
failed simulation counts as the lowest D, a melted one as none).
The score is a convenience, not a model: the parts are there to re-rank by SQL.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from lisearch.materials.pipeline import best_per_formula
from lisearch.mobility.diffusion import arrhenius
from lisearch.schema import RANKING_COLUMNS

#: The parts of the combined score and their direction (+1: higher is better).
PARTS = {"measured_log10_sigma": 1, "e_above_hull": -1, "sml_p_superionic": 1, "bvse_e_3d": -1,
         "md_li_diffusivity": 1}  # fmt: skip


def best_structures(materials: pd.DataFrame, top: int) -> pd.DataFrame:
    """The lowest-e_above_hull relaxed structure (with a CIF) of each formula, by shortlist rank (formulas given
    directly, without a rank, last) then formula; the first ``top``."""
    have = materials[materials["cif"].notna() & materials["e_above_hull"].notna()]
    if have.empty:
        return have
    best = best_per_formula(have)
    order = best.assign(_rank=best["shortlist_rank"].astype("Float64").fillna(math.inf))
    return order.sort_values(["_rank", "formula"]).drop(columns="_rank").head(top).reset_index(drop=True)


def simulate_item(item: dict[str, Any], settings: Any, device: str) -> dict[str, Any]:
    """The `mobility` row of one work item (formula, candidate, shortlist_rank, cif, temperature_k): one Spark task."""
    from pymatgen.core import Structure  # noqa: PLC0415 (slow import, task side)

    from lisearch.mobility.md import simulate  # noqa: PLC0415 (torch: task side only)

    structure = Structure.from_str(item["cif"], fmt="cif")
    row = simulate(structure, item["temperature_k"], settings, device).row()
    return {"shortlist_rank": item["shortlist_rank"], "formula": item["formula"], "candidate": item["candidate"], **row}


def md_summary(md: pd.DataFrame, first_temperature: float) -> pd.DataFrame:
    """Per (formula, candidate): the run at ``first_temperature`` (status, D, its error, sigma) and the Arrhenius
    activation energy with its error over the temperatures whose run is ``ok`` (NaN with fewer than two)."""
    rows = []
    for (formula, candidate), runs in md.groupby(["formula", "candidate"], sort=False):
        first = runs[runs["temperature_k"] == first_temperature]
        ok = runs[runs["status"] == "ok"]
        ea, ea_err, _ = arrhenius(ok["temperature_k"].to_numpy(float), ok["li_diffusivity"].to_numpy(float),
                                  ok["li_diffusivity_err"].to_numpy(float))  # fmt: skip
        head: dict[str, Any] = first.iloc[0].to_dict() if len(first) else {}
        good = head.get("status") == "ok"
        rows.append({
            "formula": formula, "candidate": int(candidate), "md_temperature_k": first_temperature,
            "md_status": head.get("status"),
            "md_li_diffusivity": float(head["li_diffusivity"]) if good else math.nan,
            "md_li_diffusivity_err": float(head["li_diffusivity_err"]) if good else math.nan,
            "md_sigma_s_cm": float(head["sigma_s_cm"]) if good else math.nan,
            "activation_energy_ev": ea, "activation_energy_err": ea_err,
        })  # fmt: skip
    summary = [c for c in RANKING_COLUMNS if c.startswith(("md_", "activation"))]
    return pd.DataFrame(rows, columns=["formula", "candidate", *summary])


def combined_ranking(
    materials: pd.DataFrame, shortlist: pd.DataFrame, md: pd.DataFrame, first_t: float
) -> pd.DataFrame:
    """:data:`RANKING_COLUMNS` (without the run id) of the run: each formula's best structure (``materials``), its
    measured predictions (``shortlist``: formula, measured_log10_sigma, measured_p_fast) and MD (``md``: the
    `mobility` rows), ranked by ``combined_score``."""
    have = materials[materials["e_above_hull"].notna()]
    if have.empty:
        return pd.DataFrame(columns=[c for c in RANKING_COLUMNS if c != "run_id"])
    best = best_per_formula(have)
    out = best[["shortlist_rank", "formula", "candidate", "e_above_hull", "sml_p_superionic", "bvse_e_1d", "bvse_e_3d"]]
    measured = shortlist[["formula", "measured_log10_sigma", "measured_p_fast"]].drop_duplicates("formula")
    out = out.merge(measured, on="formula", how="left")
    out = out.merge(md_summary(md, first_t), on=["formula", "candidate"], how="left") if len(md) else out
    percentiles = []
    for part, sign in PARTS.items():
        values = pd.to_numeric(out.get(part, pd.Series(np.nan, index=out.index)), errors="coerce") * sign
        if part == "md_li_diffusivity" and "md_status" in out:  # a failed simulation ranks last on that part
            values = values.mask(out["md_status"] == "failed", -np.inf)
        percentiles.append(values.rank(pct=True, method="average"))
    table = pd.concat(percentiles, axis=1)
    out["parts"] = table.notna().sum(axis=1).astype(int)
    out["combined_score"] = table.mean(axis=1)
    out = out.sort_values(["combined_score", "formula"], ascending=[False, True], na_position="last")
    out["combined_rank"] = np.arange(1, len(out) + 1)
    return out.reindex(columns=[c for c in RANKING_COLUMNS if c != "run_id"]).reset_index(drop=True)


__all__ = ["PARTS", "best_structures", "combined_ranking", "md_summary", "simulate_item"]
