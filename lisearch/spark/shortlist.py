"""The shortlist on Spark: a screen run's `candidates` -> plausibility rules, measured scores and nearest known
compound inside ``mapInPandas`` (:func:`lisearch.downstream.shortlisting.shortlist_batch`) -> the best rows of every
chemical family (a window over the families) -> the Delta table `shortlist` (this run's rows replaced in one commit) and
the report files (CSV, Markdown, HTML)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from lisearch.config import Settings
from lisearch.downstream.shortlisting import (
    finish_shortlist,
    shortlist_batch,
    table_iii_plausibility,
    to_markdown,
    with_materials,
    write_shortlist,
)
from lisearch.logs import get_logger
from lisearch.measured.models import MODEL_FILES
from lisearch.records import record_job
from lisearch.schema import SHORTLIST_COLUMNS, SHORTLIST_DDL
from lisearch.spark.catalog import (
    check_tables_writable,
    is_delta_table,
    read_table,
    register_table,
    replace_run_rows,
    table_path,
)
from lisearch.spark.measured import measured_payloads, worker_models
from lisearch.spark.runs import check_run, downstream_run

log = get_logger("lisearch.shortlist")
TABLE = "shortlist"


def _kernel(settings: Any, shared: Any, digest: Any) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        measured = None
        if shared is not None:
            classifier, regressor = worker_models(digest, shared)
            measured = {"classifier": classifier, "regressor": regressor}
        for batch in batches:
            kept, removed = shortlist_batch(batch, settings, measured)
            kept["removed_by"], kept["removed"] = None, 0
            summary = pd.DataFrame({"removed_by": list(removed), "removed": list(removed.values())})
            out = pd.concat([kept, summary], ignore_index=True)[[*batch.columns, *ADDED, "removed_by", "removed"]]
            for column in _STRINGS:  # an all-empty batch leaves float NaN columns, which Arrow cannot make strings
                out[column] = out[column].astype(object).where(out[column].notna(), None)
            yield out

    return run


_STRINGS = ("family", "cations", "anions", "formula", "nearest_known", "known_source", "ranked_by", "removed_by")


#: The columns the kernel adds, in :data:`lisearch.schema.SHORTLIST_COLUMNS` order.
ADDED = list(SHORTLIST_COLUMNS)


def run_shortlist(settings: Settings, spark: SparkSession | None = None) -> dict[str, Any]:
    """Shortlist the screen run ``run.id`` (the last succeeded one when not set); returns the funnel of the rules, the
    shortlist (pandas) and the files."""
    artifacts = settings.paths.artifacts_dir
    trained = all((artifacts / name).exists() for name in MODEL_FILES.values())
    payloads, digest = measured_payloads(artifacts) if trained else ({}, None)  # untrained: ranked by screen score
    check_tables_writable(settings.paths.warehouse_dir, (TABLE,))
    with downstream_run(settings, spark, TABLE, "shortlist") as (session, run_id):
        return _shortlist(settings, session, run_id, payloads, digest)


def _shortlist(
    settings: Settings, spark: SparkSession, run_id: str, payloads: dict[str, Any], digest: tuple[str, str] | None
) -> dict[str, Any]:
    """:func:`run_shortlist` once the models are read and the run locked."""
    cfg = settings.shortlist
    check_run(spark, settings, run_id)
    warehouse = settings.paths.warehouse_dir
    cand = read_table(spark, warehouse, "candidates").filter(F.col("run_id") == run_id)
    shared = spark.sparkContext.broadcast(payloads) if payloads else None
    schema = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in cand.schema.fields)
    out = cand.mapInPandas(
        _kernel(cfg, shared, digest), f"{schema}, {SHORTLIST_DDL}, removed_by string, removed bigint"
    )
    out = out.persist()
    try:
        removed = out.filter(F.col("removed_by").isNotNull()).groupBy("removed_by").agg(F.sum("removed").alias("n"))
        removed_counts = {r["removed_by"]: int(r["n"]) for r in removed.collect()}
        kept = out.filter(F.col("removed_by").isNull()).drop("removed_by", "removed")
        order = Window.partitionBy("family").orderBy(F.desc("rank_score"), F.desc("state_probability"))
        best = kept.withColumn("_r", F.row_number().over(order)).filter(F.col("_r") <= cfg.top_per_family).drop("_r")
        plausible = kept.count()
        families = kept.select("family").distinct().count()
        top = best.toPandas()
    finally:
        out.unpersist()
    shortlist = finish_shortlist(top, cfg)
    total = plausible + sum(removed_counts.values())
    funnel = _funnel(total, removed_counts, plausible, families, len(shortlist))
    if len(shortlist):
        frame = spark.createDataFrame(shortlist.drop(columns=["run_id"]).assign(run_id=run_id))
        replace_run_rows(frame, str(table_path(warehouse, TABLE)), run_id, partitioned=True, add_columns=True)
        register_table(spark, warehouse, TABLE)
    materials_path = table_path(warehouse, "materials")
    if len(shortlist) and is_delta_table(materials_path):  # the materials stage ran before: show its structures
        rows = read_table(spark, warehouse, "materials").filter(F.col("run_id") == run_id).toPandas()
        if len(rows):
            shortlist = with_materials(shortlist, rows)
    paths = write_shortlist(shortlist, settings.paths.home / "reports", run_id, funnel)
    summary = {
        "run_id": run_id,
        "funnel": funnel,
        "table_iii": table_iii_plausibility(cfg),
        "shortlist": shortlist,
        "paths": paths,
        "ranked_by": str(shortlist["ranked_by"].iloc[0]) if len(shortlist) else "nothing (no row)",
        "show": cfg.show,
    }
    record_job(settings, "shortlist", run_id, {**summary, "funnel": funnel.to_dict(orient="records")})
    log.info("shortlist of run %s: %d rows from %d plausible candidates", run_id, len(shortlist), plausible)
    return summary


def _funnel(total: int, removed: dict[str, int], plausible: int, families: int, rows: int) -> pd.DataFrame:
    stages = [("candidates of the run", total)]
    labels = {
        "rare_state": "removed: an element has no common non-zero oxidation state (ICSD share below the limit)",
        "not_neutral": "removed: no charge-neutral choice of common states",
        "not_ionic": "removed: neutral only with an anion less electronegative than a cation",
        "too_complex": "removed: too many atoms in the reduced formula",
        "outside_domain": "removed: outside the measured models' applicability domain",
    }
    stages += [(label, removed.get(key, 0)) for key, label in labels.items()]
    stages += [("plausible (and in domain)", plausible), ("chemical families", families), ("shortlist rows", rows)]
    return pd.DataFrame(stages, columns=["stage", "count"])


def format_shortlist(summary: dict[str, Any]) -> str:
    """The shortlist summary as printed lines (funnel of the rules and the top rows)."""
    lines = [f"shortlist of run {summary['run_id']} (ranked by {summary['ranked_by']}):"]
    lines += [f"  {r.count:>14,d}  {r.stage}" for r in summary["funnel"].itertuples(index=False)]
    lines.append(to_markdown(summary["shortlist"], summary["show"]))
    trace = summary["table_iii"]
    verdicts = [f"{r.table_iii} {'plausible' if r.plausible else r.removed_by}" for r in trace.itertuples(index=False)]
    lines.append("Table III of the paper under the plausibility rules: " + ", ".join(verdicts))
    lines.append("written: " + ", ".join(str(p) for p in summary["paths"].values()))
    return "\n".join(lines)
