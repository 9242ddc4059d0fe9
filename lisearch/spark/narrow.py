"""Narrowing a screen run to stable oxides on Spark: ``candidates`` of one run -> first four rows, oxides,
stability proxies (:mod:`lisearch.downstream.narrowing`, inside ``mapInPandas``) -> the Delta table ``stable_oxides``
(replaced for the run id in one commit), plus the comparison with the paper's Table III.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lisearch.chemistry.elements import symbols
from lisearch.config import NarrowSettings, Settings, limit_value
from lisearch.downstream.narrowing import passes_all, stability_flags, trace_table_iii
from lisearch.errors import InputError
from lisearch.logs import get_logger
from lisearch.models.loading import load_model
from lisearch.records import record_job
from lisearch.schema import PARTNERS, STABLE_OXIDE_CANDIDATE_COLUMNS, ddl, stable_oxides_columns
from lisearch.screening.plan import model_path
from lisearch.spark.catalog import (
    check_tables_writable,
    is_delta_table,
    read_table,
    register_table,
    replace_run_rows,
    table_path,
    with_partner_columns,
)
from lisearch.spark.runs import check_run, downstream_run

log = get_logger("lisearch.narrow")
#: The `stable_oxides` rows the kernel yields (without ``run_id``).
OUTPUT_DDL = ddl(stable_oxides_columns())


def _kernel(cfg: NarrowSettings) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    anion, max_z, stability, atoms = cfg.anion, cfg.max_z, cfg.stability, cfg.max_formula_atoms

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            flagged = stability_flags(batch, anion, max_z, stability, atoms)
            yield flagged[passes_all(flagged, stability, atoms)].drop(columns="formula_atoms")

    return run


def transform(candidates: DataFrame, cfg: NarrowSettings, run_id: str) -> DataFrame:
    """`candidates` rows of one run -> `stable_oxides` rows (:data:`OUTPUT_DDL` plus ``run_id``): Z <= ``max_z`` and
    the anion present, filtered in Spark SQL; then the stability proxies and the size rule of ``cfg`` in
    ``mapInPandas`` (:func:`lisearch.downstream.narrowing.stability_flags`). No session, no I/O."""
    candidates = with_partner_columns(candidates)
    elements = F.array(*[f"element_{j}" for j in PARTNERS])
    cand = candidates.filter((F.col("max_z") <= cfg.max_z) & F.array_contains(elements, cfg.anion))
    flagged = cand.select(*STABLE_OXIDE_CANDIDATE_COLUMNS).mapInPandas(_kernel(cfg), OUTPUT_DDL)
    return flagged.withColumn("run_id", F.lit(run_id))


def run_narrow(settings: Settings, spark: SparkSession | None = None) -> dict[str, Any]:
    """Narrow the screen run ``run.id`` (the last succeeded one when not set) into `stable_oxides` (replacing its
    rows); return the number of stable compositions, the top rows and the Table III trace."""
    cfg = settings.narrow
    if cfg.anion not in symbols():
        raise InputError(f"narrow.anion is {cfg.anion!r}: not an element symbol (use e.g. O or S).")
    if not 1 <= cfg.max_z <= 94:
        raise InputError(f"narrow.max_z is {cfg.max_z}: use an atomic number between 1 and 94 (36 = four rows).")
    check_tables_writable(settings.paths.warehouse_dir, ("stable_oxides",))
    with downstream_run(settings, spark, "stable_oxides", "narrow") as (session, run_id):
        return _narrow(settings, session, run_id)


def _narrow(settings: Settings, spark: SparkSession, run_id: str) -> dict[str, Any]:
    """:func:`run_narrow` once its inputs are checked and the run locked."""
    cfg = settings.narrow
    run = check_run(spark, settings, run_id)
    warehouse = settings.paths.warehouse_dir
    cand = read_table(spark, warehouse, "candidates").filter(F.col("run_id") == run_id)  # extract
    if cfg.hull:  # the energy above the hull of the predicted structures replaces the composition proxies
        best = _near_hull(spark, settings, run_id)
        out = transform(cand, dataclasses.replace(cfg, stability=False), run_id).join(best, "formula", "inner")
        out = out.orderBy(F.desc("score"))
    else:
        out = transform(cand, cfg, run_id).orderBy(F.desc("score"))
    replace_run_rows(
        out, str(table_path(warehouse, "stable_oxides")), run_id, partitioned=True, add_columns=True
    )  # load
    register_table(spark, warehouse, "stable_oxides")
    stable = read_table(spark, warehouse, "stable_oxides").filter(F.col("run_id") == run_id)
    top = stable.orderBy(F.desc("score")).limit(cfg.top).toPandas()
    found = {r["formula"] for r in stable.select("formula").distinct().collect()}
    trace = _trace(settings, run, found)
    summary = {"run_id": run_id, "stable": len(found), "top": top, "table_iii": trace}
    record_job(settings, "narrow", run_id, {**summary, "table_iii": trace.to_dict(orient="records")})
    log.info(format_narrow(summary))
    return summary


def _near_hull(spark: SparkSession, settings: Settings, run_id: str) -> DataFrame:
    """(formula, e_above_hull): the lowest energy above the hull of each formula of the run's `materials` rows, for
    the formulas within ``materials.hull_window``."""
    warehouse = settings.paths.warehouse_dir
    if not is_delta_table(table_path(warehouse, "materials")):
        raise InputError("narrow.hull needs the run's predicted materials: run `lisearch materials` first.")
    rows = read_table(spark, warehouse, "materials").filter(
        (F.col("run_id") == run_id) & F.col("e_above_hull").isNotNull()
    )
    best = rows.groupBy("formula").agg(F.min("e_above_hull").alias("e_above_hull"))
    return best.filter(F.col("e_above_hull") <= settings.materials.hull_window)


def _trace(settings: Settings, run: dict[str, Any], found: set[str]) -> pd.DataFrame:
    cfg = settings.narrow
    screen_cfg = json.loads(run["settings_json"])
    path = Path(run["model_path"]) if run["model_path"] else model_path(settings)
    model = load_model(path)
    return trace_table_iii(
        model.decision_function, run["oxidation_list"], limit_value(float(screen_cfg["max_cost_per_kg"])),
        limit_value(float(screen_cfg["max_mean_atomic_mass"])), found, int(screen_cfg["step"]), anion=cfg.anion,
        max_z=cfg.max_z,
        stability=cfg.stability, max_formula_atoms=cfg.max_formula_atoms,
    )  # fmt: skip


def table_iii_comparison(spark: SparkSession, settings: Settings, run_id: str) -> pd.DataFrame:
    """Table III against the `stable_oxides` rows of a narrowed run (``lisearch narrow`` must have run)."""
    run = check_run(spark, settings, run_id)
    warehouse = settings.paths.warehouse_dir
    if not is_delta_table(table_path(warehouse, "stable_oxides")):
        raise InputError("There is no `stable_oxides` table yet: run `lisearch narrow` first.")
    stable = read_table(spark, warehouse, "stable_oxides").filter(F.col("run_id") == run_id)
    found = {r["formula"] for r in stable.select("formula").distinct().collect()}
    return _trace(settings, run, found)


def format_narrow(summary: dict[str, Any]) -> str:
    """The narrowing summary as printed lines (top rows and Table III)."""
    lines = [f"stable oxides of run {summary['run_id']}: {summary['stable']} distinct compositions; best by score:"]
    top = summary["top"]
    for r in top.itertuples(index=False):
        known = "  (known MP compound)" if r.known_in_mp else ""
        cost, mass = f"{r.cost_per_kg:6.1f} USD/kg", f"{r.mean_atomic_mass:5.1f} g/mol"
        lines.append(f"  {r.formula:<16s} score {r.score:7.3f}  {cost}  {mass}{known}")
    lines.append("Table III of the paper:")
    for r in summary["table_iii"].itertuples(index=False):
        verdict = "found" if r.found else f"not found: removed by {r.removed_by}"
        lines.append(f"  {r.table_iii:<12s} {verdict}")
    return "\n".join(lines)
