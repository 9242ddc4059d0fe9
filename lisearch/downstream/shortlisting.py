"""The shortlist: candidates a solid-state chemist would take to the lab, with the reasons each one survived.

Kernel (pandas, no Spark; the Spark glue is :mod:`lisearch.spark.shortlist`): :func:`shortlist_batch` takes rows of
`candidates` and keeps those that pass the plausibility rules (:mod:`lisearch.chemistry.plausibility`); each kept row
gets its chemical family (cations | anions of its most likely assignment, e.g. ``Li,P|S,Cl``), the assignment and its
probability, the measured models' predicted conductivity and applicability domain when they are trained, and the
nearest known compound. The ranking score is the measured regressor's predicted log10 sigma (S/cm) when it exists,
the screen model's score otherwise.

Report (:func:`finish_shortlist`, :func:`write_shortlist`): the best ``top_per_family`` rows of every family, at
most ``max_rows`` in all, each with a plain-language ``reasons`` column, as CSV, Markdown and a self-contained
HTML page with its figures embedded.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.chemistry.elements import symbols
from lisearch.chemistry.plausibility import PlausibilityRules, formula_arrays, nearest_known, plausibility
from lisearch.config import ShortlistSettings
from lisearch.downstream.narrowing import TABLE_III
from lisearch.figures import pyplot
from lisearch.measured.scoring import score_candidates
from lisearch.schema import MEASURED_COLUMNS, PARTNERS, SHORTLIST_COLUMNS, decode_candidates, numpy_type


def rules_of(settings: ShortlistSettings) -> PlausibilityRules:
    """The plausibility rules of the shortlist settings."""
    return PlausibilityRules(settings.min_state_frequency, settings.max_formula_atoms)


def _quick_formulas(z: np.ndarray, amounts: np.ndarray, states: np.ndarray) -> list[str]:
    """Reduced formulas, cations first then anions (each by atomic number), amounts of 1 omitted."""
    syms = ("", *symbols())
    out = []
    for zz, aa, ss in zip(z, amounts, states, strict=True):
        g = math.gcd(*[int(a) for a in aa[zz > 0]])
        parts = sorted((int(s < 0), int(e), int(a) // g) for e, a, s in zip(zz, aa, ss, strict=True) if e > 0)
        out.append("".join(f"{syms[e]}{'' if a == 1 else a}" for _, e, a in parts))
    return out


def shortlist_batch(
    batch: pd.DataFrame, settings: ShortlistSettings, measured: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """(the plausible rows of a `candidates` batch with the :data:`lisearch.schema.SHORTLIST_COLUMNS` added, the
    number of rows removed by each rule: the plausibility reasons and ``outside_domain``)."""
    z, amounts = decode_candidates(batch)
    checks = plausibility(z, amounts, rules_of(settings))
    removed = {str(k): int(v) for k, v in checks["reason"].value_counts().items()}
    keep = checks["plausible"].to_numpy()
    out = batch[keep].copy()
    z, amounts, checks = z[keep], amounts[keep], checks[keep].reset_index(drop=True)
    states = checks[[f"state_{j}" for j in range(1, z.shape[1] + 1)]].to_numpy()
    syms = np.array(("", *symbols()))
    cations = [",".join(syms[zz[ss > 0]]) for zz, ss in zip(z, states, strict=True)]  # Li first (column 0)
    anions = [",".join(syms[zz[ss < 0]]) for zz, ss in zip(z, states, strict=True)]
    out["family"] = [f"{c}|{a}" for c, a in zip(cations, anions, strict=True)]
    out["cations"], out["anions"] = cations, anions
    out["formula"] = _quick_formulas(z, amounts, states)
    kinds = SHORTLIST_COLUMNS
    out["state_li"] = states[:, 0].astype(numpy_type(kinds["state_li"]))
    for k in PARTNERS:
        out[f"state_{k}"] = np.where(z[:, k] > 0, states[:, k], 0).astype(numpy_type(kinds[f"state_{k}"]))
    out["state_probability"] = checks["probability"].to_numpy()
    out["formula_atoms"] = checks["formula_atoms"].to_numpy().astype(numpy_type(kinds["formula_atoms"]))
    n = len(out)
    values = [c for c, kind in MEASURED_COLUMNS.items() if c in kinds and kind == "float"]
    for column in values:
        out[column] = np.full(n, np.nan, numpy_type(MEASURED_COLUMNS[column]))
    out["measured_in_domain"] = pd.array([None] * n, dtype="boolean")
    if measured and n:
        scored = score_candidates(out, measured["classifier"], measured["regressor"])
        for column in values:
            out[column] = scored[column].to_numpy()
        out["measured_in_domain"] = scored["measured_in_domain"].to_numpy()
        if settings.in_domain_only:
            inside = out["measured_in_domain"].to_numpy(dtype=bool)
            removed["outside_domain"] = int((~inside).sum())
            out, z, amounts = out[inside], z[inside], amounts[inside]
    near = nearest_known(z, amounts)
    for column in ("nearest_known", "known_source", "known_distance", "novel"):
        out[column] = near[column].to_numpy()
    use_measured = bool(measured)
    lower = settings.rank_by == "lower_bound"
    column = ("measured_log10_sigma_low" if lower else "measured_log10_sigma") if use_measured else "score"
    out["rank_score"] = out[column].astype(numpy_type(kinds["rank_score"]))
    out["ranked_by"] = (
        ("low end of the predicted log10 sigma's interval (measured regressor)" if lower
         else "predicted log10 sigma (measured regressor)") if use_measured else "screen model score"
    )  # fmt: skip
    return out, removed


# ------------------------------------------------------------------------------------------------- report
def _interval_text(row: Any) -> str:
    """The text " [low, high]" of the row's conformal interval of log10 sigma; empty without one (an older model)."""
    low, high = getattr(row, "measured_log10_sigma_low", np.nan), getattr(row, "measured_log10_sigma_high", np.nan)
    return f" [{low:.1f}, {high:.1f}]" if np.isfinite(low) and np.isfinite(high) else ""


def _reasons(row: Any) -> str:
    ions = [f"Li{row.state_li:+d}"] + [
        f"{e}{s:+d}"
        for e, s in ((getattr(row, f"element_{j}", None), getattr(row, f"state_{j}", 0)) for j in PARTNERS)
        if isinstance(e, str) and e
    ]
    parts = [
        f"charge-balanced as {' '.join(ions)} (probability {row.state_probability:.2f} from ICSD state frequencies)",
        "anions more electronegative than cations",
        f"{row.formula_atoms} atoms per formula",
    ]
    if row.measured_log10_sigma == row.measured_log10_sigma:  # not NaN
        where = "inside" if row.measured_in_domain else "outside"
        parts.append(
            f"predicted log10 sigma {row.measured_log10_sigma:.1f} S/cm{_interval_text(row)}, "
            f"P(fast) {row.measured_p_fast:.2f} (calibrated) "
            f"({where} the measured data's domain, distance {row.measured_ad_distance:.1f})"
        )
    else:
        parts.append(f"screen score {row.score:.2f}")
    known = (
        f"nearest known {row.nearest_known} ({row.known_source}, {100 * row.known_distance:.0f} % of atoms differ)"
        if isinstance(row.nearest_known, str)
        else "no known compound of these elements (novel)"
    )
    parts += [known, f"{row.cost_per_kg:.1f} USD/kg", f"{row.mean_atomic_mass:.1f} g/mol per atom"]
    return "; ".join(parts)


def finish_shortlist(top: pd.DataFrame, settings: ShortlistSettings) -> pd.DataFrame:
    """The best ``top_per_family`` rows per family (already cut by Spark or not), at most ``max_rows`` in all,
    ranked by ``rank_score``, with pymatgen's reduced formula and the ``reasons`` column."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    ranked = top.sort_values(["rank_score", "state_probability"], ascending=False, kind="stable")
    ranked = ranked.groupby("family", sort=False).head(settings.top_per_family).head(settings.max_rows)
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    ranked["formula"] = [Composition(f).reduced_formula for f in ranked["formula"]]
    ranked["reasons"] = [_reasons(r) for r in ranked.itertuples(index=False)]
    return ranked


SHOWN = ["rank", "formula", "family", "rank_score", "measured_p_fast", "measured_in_domain", "nearest_known",
         "known_distance", "cost_per_kg", "mean_atomic_mass"]  # fmt: skip


#: Columns the materials stage adds to a shortlist (:func:`with_materials`).
MATERIALS_SHOWN = ["best_structure", "e_above_hull", "sml_p_superionic", "bvse_e_1d", "bvse_e_3d"]
#: The mobility evidence of the best structure shown beside it (NaN where not computed).
STRUCTURE_SHOWN = ("sml_p_superionic", "bvse_e_1d", "bvse_e_3d")


def with_materials(shortlist: pd.DataFrame, materials: pd.DataFrame) -> pd.DataFrame:
    """The shortlist with each formula's best predicted structure (lowest energy above the hull, from the run's
    `materials` rows): ``best_structure`` ("<prototype formula> <id>, <space group>"), ``e_above_hull``
    (eV/atom; NaN for a formula without materials or without a hull) and that structure's sML p_superionic and
    1D / 3D BVSE barriers (eV; NaN where not computed)."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    out = shortlist.drop(columns=[c for c in MATERIALS_SHOWN if c in shortlist], errors="ignore")
    have = materials[materials["e_above_hull"].notna()]
    if have.empty:
        return out.assign(best_structure=None, e_above_hull=np.nan, **dict.fromkeys(STRUCTURE_SHOWN, np.nan))
    best = have.sort_values(["formula", "e_above_hull", "candidate"]).groupby("formula", sort=False).head(1)
    key = {
        Composition(f).reduced_formula: r for f, r in zip(best["formula"], best.itertuples(index=False), strict=True)
    }
    rows = [key.get(Composition(f).reduced_formula) for f in out["formula"]]
    out["best_structure"] = [
        None if r is None else f"{r.template_formula} {r.template_id}, {r.space_group}" for r in rows
    ]
    out["e_above_hull"] = [np.nan if r is None else float(r.e_above_hull) for r in rows]
    for column in STRUCTURE_SHOWN:  # a `materials` table of an older lisearch has no such columns
        out[column] = [np.nan if r is None else float(getattr(r, column, np.nan)) for r in rows]
    return out


def to_markdown(shortlist: pd.DataFrame, rows: int | None = None) -> str:
    """The first ``rows`` rows of a shortlist as a Markdown table with their reasons (and, once the materials stage
    ran, each row's best structure and its energy above the hull)."""
    head = shortlist.head(rows) if rows else shortlist
    materials = "e_above_hull" in head
    extra = " best structure | E_hull (eV/atom) | sML P | BVSE 1D / 3D (eV) |" if materials else ""
    header = "| rank | formula | family | score | P(fast) | in domain | nearest known | USD/kg |"
    lines = [
        header + extra + " reasons |",
        "|---|---|---|---|---|---|---|---|" + ("---|---|---|---|" if materials else "") + "---|",
    ]
    for r in head.itertuples(index=False):
        known = f"{r.nearest_known} ({100 * r.known_distance:.0f} %)" if isinstance(r.nearest_known, str) else "novel"
        p = "n/a" if pd.isna(r.measured_p_fast) else f"{r.measured_p_fast:.2f}"
        inside = "n/a" if pd.isna(r.measured_in_domain) else ("yes" if r.measured_in_domain else "no")
        hull = ""
        if materials:
            energy = "n/a" if pd.isna(r.e_above_hull) else f"{r.e_above_hull:.3f}"
            values = [getattr(r, c, np.nan) for c in STRUCTURE_SHOWN]
            sml, e1, e3 = ("n/a" if pd.isna(v) else f"{v:.2f}" for v in values)
            bvse = f"{e1} / {e3}"
            hull = f" {r.best_structure if isinstance(r.best_structure, str) else 'n/a'} | {energy} | {sml} | {bvse} |"
        lines.append(
            f"| {r.rank} | {r.formula} | {r.family} | {r.rank_score:.2f} | {p} | {inside} | {known} | "
            f"{r.cost_per_kg:.1f} |{hull} {r.reasons} |"
        )
    return "\n".join(lines)


def shortlist_figure(shortlist: pd.DataFrame) -> Any:
    """Rank score against cost (colour: distance to the nearest known compound), and rows per anion set."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    known = shortlist["known_distance"].fillna(1.0)
    points = axes[0].scatter(shortlist["cost_per_kg"], shortlist["rank_score"], c=known, cmap="viridis", s=18)
    fig.colorbar(points, ax=axes[0], label="share of atoms differing from the nearest known (1 = novel)")
    axes[0].set(
        xlabel="raw-material cost (USD/kg)", ylabel=str(shortlist["ranked_by"].iloc[0]) if len(shortlist) else ""
    )
    counts = shortlist["anions"].value_counts().head(15)
    axes[1].barh(counts.index[::-1], counts.to_numpy()[::-1])
    axes[1].set(xlabel="rows in the shortlist", ylabel="anions", title="families by anion set")
    fig.tight_layout()
    return fig


def write_shortlist(shortlist: pd.DataFrame, folder: Path, run_id: str, funnel: pd.DataFrame) -> dict[str, Path]:
    """shortlist_<run>.csv, .md and a self-contained .html (figure embedded as PNG) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"shortlist_{run_id}"
    paths = {"csv": stem.with_suffix(".csv"), "markdown": stem.with_suffix(".md"), "html": stem.with_suffix(".html")}
    shortlist.to_csv(paths["csv"], index=False)
    funnel.to_csv(stem.with_name(f"{stem.name}_funnel.csv"), index=False)  # read back when materials are added
    paths["markdown"].write_text(to_markdown(shortlist) + "\n")
    buffer = io.BytesIO()
    if len(shortlist):
        fig = shortlist_figure(shortlist)
        fig.savefig(buffer, format="png", dpi=100)
        pyplot().close(fig)
    image = base64.b64encode(buffer.getvalue()).decode()
    shown = [*SHOWN, *(c for c in MATERIALS_SHOWN if c in shortlist), "reasons"]
    table = shortlist[shown].to_html(index=False, escape=True, float_format=lambda v: f"{v:.2f}")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>lisearch shortlist "
        f"{html.escape(run_id)}</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:"
        "collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:3px 6px;vertical-align:top}}</style></head>"
        f"<body><h1>Shortlist of screen run {html.escape(run_id)}</h1>"
        f"<h2>How the candidates were narrowed</h2>{funnel.to_html(index=False)}"
        + (f"<img alt='shortlist figure' src='data:image/png;base64,{image}'>" if image else "")
        + f"<h2>{len(shortlist)} candidates</h2>{table}</body></html>"
    )
    paths["html"].write_text(page)
    return paths


def table_iii_plausibility(settings: ShortlistSettings) -> pd.DataFrame:
    """The paper's Table III compositions under the plausibility rules: table_iii, plausible, reason (the first rule
    that removes it), probability of the most likely assignment."""
    z, amounts, _ = formula_arrays(list(TABLE_III))
    checks = plausibility(z, amounts, rules_of(settings))
    return pd.DataFrame(
        {"table_iii": TABLE_III, "plausible": checks["plausible"], "removed_by": checks["reason"],
         "probability": checks["probability"]}
    )  # fmt: skip
