"""The result tables' columns in one place: names and types of `candidates`, `funnel_by_set`, `funnel`, `runs`,
`stable_oxides`, `shortlist` and `measured_candidates`, and the one decoder from rows of `candidates` to arrays.

Types are written as Spark SQL type names (the Delta tables' types); :func:`numpy_type` and :func:`arrow_type` give the
same type for numpy frames (the kernel's survivors) and Arrow tables (the files the screen's tasks write). A table's
columns are declared here once; the code that computes a column imports its name and type from here. Partner j of Li
(j = 1..4, in order of atomic number) has the columns ``element_j`` (symbol), ``z{j}`` (atomic number), ``pct_j``
(atomic percent) and ``ox_j`` (the oxidation state that makes the composition neutral); they are null when the
composition has fewer partners. No pyspark here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from lisearch.chemistry.elements import LI_Z, n_elements
from lisearch.run_ids import RUN_COLUMN

#: Partners of Li a table can hold: z1..z4, pct_1..pct_4, ox_1..ox_4 (the fourth only after a run with quinaries).
MAX_PARTNERS = 4
#: The partner columns' numbers 1..MAX_PARTNERS.
PARTNERS = tuple(range(1, MAX_PARTNERS + 1))

_NUMPY = {"tinyint": np.int8, "smallint": np.int16, "int": np.int32, "bigint": np.int64, "float": np.float32,
          "double": np.float64, "boolean": np.bool_, "string": np.object_}  # fmt: skip


def numpy_type(spark_type: str) -> Any:
    """The numpy dtype of a Spark SQL type name (``smallint`` -> int16, ``float`` -> float32, ...)."""
    return _NUMPY[spark_type]


def arrow_type(spark_type: str) -> Any:
    """The Arrow type of a Spark SQL type name (pyarrow is imported when asked)."""
    return pa.string() if spark_type == "string" else pa.from_numpy_dtype(np.dtype(_NUMPY[spark_type]))


def ddl(columns: dict[str, str]) -> str:
    """Spark's schema string of ``{name: type}``, e.g. ``"run_id string, score float"``."""
    return ", ".join(f"{name} {kind}" for name, kind in columns.items())


def partner_columns(sizes: tuple[int, ...]) -> int:
    """Partner columns of a run's frames and tables: 3 (the paper's space), 4 with quinaries. (Writing three more
    always-empty columns cost ~13 % of the paper's-space job, so a run without quinaries has three.)"""
    return max(3, *sizes)


# ---------------------------------------------------------------------------------------------- candidates
#: Spark SQL type of the columns of partner j (symbol, atomic number, percent, oxidation state), by name pattern.
PARTNER_TYPES = {"element_{}": "string", "z{}": "smallint", "pct_{}": "smallint", "ox_{}": "tinyint"}
#: The values of a candidate: its score (decision value of the run's model), cost (USD/kg), mean atomic mass (g/mol).
VALUE_TYPES = {"score": "float", "cost_per_kg": "float", "mean_atomic_mass": "float"}


def _partners(name: str, columns: int) -> dict[str, str]:
    return {name.format(j): PARTNER_TYPES[name] for j in range(1, columns + 1)}


def candidate_columns(columns: int) -> dict[str, str]:
    """Column -> Spark SQL type of `candidates` (without the ``run_id`` partition column) for a run with ``columns``
    partner columns (3, or 4 with quinaries)."""
    return {
        "n_elements": "tinyint", **_partners("element_{}", columns), **_partners("z{}", columns), "max_z": "smallint",
        "pct_li": "smallint", **_partners("pct_{}", columns), **_partners("ox_{}", columns), **VALUE_TYPES,
    }  # fmt: skip


def candidates_ddl(columns: int) -> str:
    """Spark schema of `candidates` rows: ``run_id`` then :func:`candidate_columns`."""
    return ddl({RUN_COLUMN: "string", **candidate_columns(columns)})


def all_partner_columns() -> dict[str, str]:
    """Every partner column of this lisearch (j = 1..MAX_PARTNERS) with its type: what a table written before
    quinaries lacks and gets as nulls when read."""
    return {name.format(j): kind for j in PARTNERS for name, kind in PARTNER_TYPES.items()}


def partner_of(column: str) -> int | None:
    """The partner number j of a partner column (``element_2`` -> 2, ``z3`` -> 3), None for other columns."""
    for pattern in PARTNER_TYPES:
        head = pattern.split("{}")[0]
        if column.startswith(head) and column[len(head) :].isdigit():
            return int(column[len(head) :])
    return None


def derived_columns(survivors: Any, columns: int) -> dict[str, np.ndarray]:
    """The `candidates` columns computed from the screen kernel's survivors (a frame with the columns of
    :func:`survivor_dtypes`) rather than by it: ``n_elements`` (Li included) and ``max_z``. A new column of
    `candidates` that follows from the composition is declared in :func:`candidate_columns` and derived here."""
    z = np.stack([survivors[f"z{j}"].to_numpy() for j in range(1, columns + 1)])
    return {"n_elements": 1 + (z > 0).sum(axis=0), "max_z": z.max(axis=0)}


def survivor_dtypes(columns: int = 3) -> dict[str, Any]:
    """Column -> numpy dtype of the screen kernel's survivors (one row per surviving composition): the partners'
    z, Li's and the partners' percents, the oxidation states and the values; 0 for an absent partner."""
    kinds = candidate_columns(columns)
    names = [*_partners("z{}", columns), "pct_li", *_partners("pct_{}", columns), *_partners("ox_{}", columns)]
    return {name: numpy_type(kinds[name]) for name in [*names, *VALUE_TYPES]}


#: Columns of `candidates` with Delta min/max statistics (``delta.dataSkippingStatsColumns``, set when the table is
#: created): the numbers users filter and sort on. Not the element symbols: string min/max cost ~15 % of the full
#: screen's time to collect, and a task's file holds blocks from all over the space, so every file's symbol range
#: spans nearly the whole table and would skip nothing (the atomic numbers z1..z4 and max_z are there instead).
CANDIDATE_STATS_COLUMNS = ("n_elements", "z1", "z2", "z3", "z4", "max_z", "score", "cost_per_kg", "mean_atomic_mass")


def stats_columns(columns: int) -> str:
    """The table property ``delta.dataSkippingStatsColumns`` of a `candidates` table first written by a run with
    ``columns`` partner columns (z4 only when it exists)."""
    return ",".join(c for c in CANDIDATE_STATS_COLUMNS if c != "z4" or columns >= 4)


def decode_candidates(batch: Any) -> tuple[np.ndarray, np.ndarray]:
    """(z (n, 5) int64, amounts (n, 5) int64 atomic percent) of rows of `candidates` (pandas): Li first, then the
    partners 1..4, 0 for an absent partner (null in the table, or a column a table written before quinaries lacks)."""
    n = len(batch)
    z = np.zeros((n, 1 + MAX_PARTNERS), dtype=np.int64)
    amounts = np.zeros((n, 1 + MAX_PARTNERS), dtype=np.int64)
    z[:, 0], amounts[:, 0] = LI_Z, batch["pct_li"].to_numpy(dtype=np.int64)
    for j in PARTNERS:
        if f"z{j}" in batch:
            z[:, j] = batch[f"z{j}"].fillna(0).to_numpy(dtype=np.int64)
            amounts[:, j] = batch[f"pct_{j}"].fillna(0).to_numpy(dtype=np.int64)
    return z, amounts


def candidate_fractions(batch: Any) -> np.ndarray:
    """Atomic fractions (n, 94) (column Z - 1) of rows of `candidates`, from :func:`decode_candidates`."""
    z, amounts = decode_candidates(batch)
    fractions = np.zeros((len(z), n_elements()))
    rows, cols = np.nonzero(z)
    np.add.at(fractions, (rows, z[rows, cols] - 1), amounts[rows, cols] / 100)
    return fractions


# ------------------------------------------------------------------------------------------- the funnel
#: Counts per element set of `funnel_by_set` (int64; -1 where a stage was not computed).
STAT_COLUMNS = ("total", "conductive", "neutral", "neutral_conductive", "cost_ok", "survivors", "plausible")
FUNNEL_DDL = ddl({"stage_order": "bigint", "stage": "string", "description": "string", "count": "bigint",
                  "fraction_of_total": "double", "fraction_of_previous": "double", RUN_COLUMN: "string"})  # fmt: skip
RUNS_DDL = ddl({RUN_COLUMN: "string", "status": "string", "started_at": "timestamp", "ended_at": "timestamp",
                "model_path": "string", "model_sha256": "string", "oxidation_list": "string", "compositions": "bigint",
                "settings_json": "string", "summary_json": "string"})  # fmt: skip


# --------------------------------------------------------------------------------------- measured columns
#: Columns the measured models add (`measured_candidates`, the shortlist, ``lisearch predict``): the calibrated
#: P(sigma >= the threshold), its label (1 / 0, P >= the model's cut-off), log10 sigma (S/cm) with the low and high
#: ends of its conformal interval (``measured.coverage``), the distance to the nearest measured training composition
#: and whether that is inside the applicability domain.
MEASURED_COLUMNS = {"measured_p_fast": "float", "measured_label": "tinyint", "measured_log10_sigma": "float",
                    "measured_log10_sigma_low": "float", "measured_log10_sigma_high": "float",
                    "measured_ad_distance": "float", "measured_in_domain": "boolean"}  # fmt: skip
MEASURED_DDL = ddl(MEASURED_COLUMNS)


# ---------------------------------------------------------------------------------------- stable_oxides
#: The narrowing's stages (flags of `stable_oxides`): all elements Z <= max_z, the anion present, then the three
#: stability proxies.
NARROW_STAGES = ("first_four_rows", "anion_present", "common_states", "single_anion", "electronegativity_order")
#: The `candidates` columns `stable_oxides` keeps (with their types).
STABLE_OXIDE_CANDIDATE_COLUMNS = ("element_1", "element_2", "element_3", "element_4", "pct_li", "pct_1", "pct_2",
                                  "pct_3", "pct_4", "score", "cost_per_kg", "mean_atomic_mass", "max_z")  # fmt: skip


def stable_oxides_columns() -> dict[str, str]:
    """Column -> type of `stable_oxides` (without ``run_id``): the kept `candidates` columns, the reduced formula, the
    narrowing's flags and whether the formula is a known Materials Project compound."""
    kinds = candidate_columns(MAX_PARTNERS)
    return {
        **{c: kinds[c] for c in STABLE_OXIDE_CANDIDATE_COLUMNS}, "formula": "string",
        **dict.fromkeys(NARROW_STAGES, "boolean"), "known_in_mp": "boolean",
    }  # fmt: skip


# -------------------------------------------------------------------------------------------- shortlist
#: Columns the shortlist adds to a `candidates` row: the chemical family, the most likely neutral assignment and
#: its probability, the formula's size, the measured columns, the nearest known compound, the rank score and what
#: ranked it.
SHORTLIST_COLUMNS = {
    "family": "string", "cations": "string", "anions": "string", "formula": "string", "state_li": "tinyint",
    "state_1": "tinyint", "state_2": "tinyint", "state_3": "tinyint", "state_4": "tinyint",
    "state_probability": "double", "formula_atoms": "int",
    **{name: kind for name, kind in MEASURED_COLUMNS.items() if name != "measured_label"},
    "nearest_known": "string", "known_source": "string", "known_distance": "double", "novel": "boolean",
    "rank_score": "double", "ranked_by": "string",
}  # fmt: skip
SHORTLIST_DDL = ddl(SHORTLIST_COLUMNS)


# --------------------------------------------------------------------------------------------- materials
#: The `phases` table: the potential's energy of each competing phase (shipped MP structures), computed once per
#: (material_id, potential, relaxed) and reused by every hull (:mod:`lisearch.materials.phases`).
PHASES_COLUMNS = {"material_id": "string", "source": "string", "formula": "string", "n_atoms": "int",
                  "energy_per_atom": "double", "potential": "string", "relaxed": "boolean", "status": "string",
                  "reason": "string"}  # fmt: skip
#: The materials stage's rows (``lisearch predict-structure``; the `materials` table with the run id and shortlist
#: rank): one per (composition, candidate structure), or one per composition without a candidate (status
#: ``no_template`` and the reason).
#: Does Li move, from the structure alone (:func:`lisearch.mobility.structure.structure_descriptors`): the five Sendek
#: features and p_superionic of the published sML model, the 1D/2D/3D BVSE percolation barriers (eV; Infinity: no
#: path below ``mobility.bvse_encut``) and the grid spacing used (A); NaN/null where not computed, with the reason.
STRUCTURE_MOBILITY_COLUMNS = {
    "sml_llb": "double", "sml_sbi": "double", "sml_afc": "double", "sml_lasd": "double", "sml_llsd": "double",
    "sml_p_superionic": "double", "bvse_e_1d": "double", "bvse_e_2d": "double", "bvse_e_3d": "double",
    "bvse_resolution": "double", "mobility_reason": "string",
}  # fmt: skip
MATERIALS_COLUMNS = {
    "formula": "string", "candidate": "int", "template_id": "string", "template_formula": "string",
    "substitution_probability": "double", "status": "string", "reason": "string", "converged": "boolean",
    "steps": "int", "energy_per_atom": "double", "volume_per_atom": "double", "space_group": "string",
    "e_above_hull": "double", "decomposition": "string", "potential": "string", "cif": "string",
    **STRUCTURE_MOBILITY_COLUMNS,
}  # fmt: skip
#: The `materials` table (``lisearch materials``): the rows above with the shortlist rank (null for formulas given
#: directly) and the run id (the partition).
MATERIALS_TABLE_COLUMNS = {"shortlist_rank": "int", **MATERIALS_COLUMNS, RUN_COLUMN: "string"}
#: One molecular-dynamics run (:class:`lisearch.mobility.md.Simulation`): status (ok | melted | failed), reason, the
#: supercell, the Li diffusivity (cm^2/s) with its standard error, the Nernst-Einstein conductivity at that
#: temperature (S/cm), the Li and framework mean squared displacements (A^2), the wall-clock seconds.
MD_COLUMNS = {
    "status": "string", "reason": "string", "temperature_k": "double", "atoms": "int", "li_atoms": "int",
    "volume_a3": "double", "simulated_ps": "double", "mean_temperature_k": "double", "li_diffusivity": "double",
    "li_diffusivity_err": "double", "li_msd_final": "double", "framework_msd": "double", "sigma_s_cm": "double",
    "seconds": "double", "potential": "string",
}  # fmt: skip
#: The `mobility` table (``lisearch mobility``): one row per (material structure, temperature), the run id the
#: partition.
MOBILITY_TABLE_COLUMNS = {"shortlist_rank": "int", "formula": "string", "candidate": "int", **MD_COLUMNS,
                          RUN_COLUMN: "string"}  # fmt: skip

#: The `ranking` table (``lisearch mobility``; :func:`lisearch.mobility.ranking.combined_ranking`): per formula of the
#: run, its best structure's parts and the combined score; the run id the partition.
RANKING_COLUMNS = {
    "combined_rank": "int", "combined_score": "double", "parts": "int", "shortlist_rank": "int", "formula": "string",
    "candidate": "int", "measured_log10_sigma": "double", "measured_p_fast": "double", "e_above_hull": "double",
    "sml_p_superionic": "double", "bvse_e_1d": "double", "bvse_e_3d": "double", "md_temperature_k": "double",
    "md_status": "string", "md_li_diffusivity": "double", "md_li_diffusivity_err": "double",
    "md_sigma_s_cm": "double", "activation_energy_ev": "double", "activation_energy_err": "double",
    RUN_COLUMN: "string",
}  # fmt: skip

__all__ = [
    "CANDIDATE_STATS_COLUMNS",
    "FUNNEL_DDL",
    "MATERIALS_COLUMNS",
    "MATERIALS_TABLE_COLUMNS",
    "MAX_PARTNERS",
    "MD_COLUMNS",
    "MEASURED_COLUMNS",
    "MEASURED_DDL",
    "MOBILITY_TABLE_COLUMNS",
    "NARROW_STAGES",
    "PARTNERS",
    "PARTNER_TYPES",
    "PHASES_COLUMNS",
    "RANKING_COLUMNS",
    "RUNS_DDL",
    "SHORTLIST_COLUMNS",
    "SHORTLIST_DDL",
    "STABLE_OXIDE_CANDIDATE_COLUMNS",
    "STAT_COLUMNS",
    "STRUCTURE_MOBILITY_COLUMNS",
    "VALUE_TYPES",
    "all_partner_columns",
    "arrow_type",
    "candidate_columns",
    "candidate_fractions",
    "candidates_ddl",
    "ddl",
    "decode_candidates",
    "derived_columns",
    "numpy_type",
    "partner_columns",
    "partner_of",
    "stable_oxides_columns",
    "stats_columns",
    "survivor_dtypes",
]  # fmt: skip
