"""The composition screen on Spark: ranges of element sets as partitions, the plan broadcast once,
``mapInPandas`` kernels that emit per-set counts and surviving compositions, then Delta tables:

* ``candidates`` (partitioned by run_id): surviving compositions with elements, percents, oxidation states,
  score, cost and mass;
* ``funnel_by_set``: exact counts of every stage for every element set;
* ``funnel``: the whole space's counts per stage;
* ``runs``: run id, settings, model hash, start / end, status and counts.

Each table is replaced for the run id in one Delta commit (``replaceWhere run_id = ...``): re-running an id leaves
no duplicates, and readers never see half of a table's rows for a run. The kernel stage writes ``candidates``
directly; each task also writes its blocks' per-set counts as a small Parquet file (named by partition, replaced
atomically, so a retried task leaves no duplicate) under ``<home>/tmp``, which must be shared storage on a
cluster; the driver reads them back for ``funnel_by_set`` and ``funnel`` after the stage.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lisearch import paper
from lisearch.config import Settings
from lisearch.elements import symbols
from lisearch.funnel import FUNNEL_STAGES, NOT_COMPUTED, funnel_frame, rows_written, stage_totals
from lisearch.kernels import STAT_COLUMNS, survivor_dtypes
from lisearch.logs import get_logger
from lisearch.plan import (
    RowEstimate,
    ScreenPlan,
    check_candidate_rows,
    inputs_from_dict,
    plan_from_settings,
    plan_to_dict,
    run_blocks,
    space_from_dict,
)
from lisearch.records import record_job
from lisearch.space import partition_blocks
from lisearch.spark.catalog import check_writable, register_table, replace_run_rows, table_path
from lisearch.spark.session import get_session

log = get_logger("lisearch.screen")

_SPARK_TYPES = {"int16": "smallint", "int8": "tinyint", "float32": "float"}
#: Names of the per-partition count files under a run's staging folder.
STATS_FILES = "part-*.parquet"


def kernel_ddl(columns: int = 3) -> str:
    """Spark schema (DDL) of the kernel's survivors with ``columns`` partner columns (3, or 4 with quinaries)."""
    return ", ".join(f"{c} {_SPARK_TYPES[t.__name__]}" for c, t in survivor_dtypes(columns).items())


def _kernel(shared: Any, stats_dir: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """One Spark partition: screen its blocks, yield the survivors, write its per-set counts."""
        _freeze_worker_objects()
        plan = shared.value  # the broadcast plan, fetched once per executor
        inputs, space = inputs_from_dict(plan), space_from_dict(plan)  # rebuilt once per partition
        for batch in batches:
            for part in batch["id"].astype(int).tolist():
                counts = []
                for block_id in plan["partitions"][part]:
                    stats, survivors = run_blocks(plan, [block_id], inputs, space)
                    counts.append(stats)
                    if len(survivors):
                        yield survivors
                write_partition_stats(pd.concat(counts, ignore_index=True), stats_dir, part)

    return run


@functools.cache
def _freeze_worker_objects() -> None:
    """PySpark's daemon runs a full ``gc.collect()`` after every task of a reused Python worker; with pandas,
    pyarrow and the kernel's caches loaded that walks every long-lived object (~20 ms a task). Freezing them once
    per worker process (:func:`gc.freeze`, meant for pre-fork servers) takes them out of every later collection;
    objects created afterwards are collected as usual. Once per process through the cache: asking
    ``gc.get_freeze_count()`` instead walks the ~160,000 frozen objects (~15 ms), too slow for every task."""
    import gc

    gc.collect()
    gc.freeze()


#: Partitions per core of a run with quinaries (when ``screen.partitions`` is 0): its tasks take minutes, so more of
#: them give the progress log and a retried task a finer grain at a negligible fixed cost.
QUINARY_PARTITIONS_PER_CORE = 16


def default_partitions(spark: SparkSession, plan: ScreenPlan, partitions: int = 0) -> list[list[int]]:
    """Block ids per Spark partition: ``partitions`` of them, or when 0 two per core of the session (16 per core
    with quinaries). Few partitions keep Spark's fixed cost per Python task (~40-70 ms here) small against the
    kernel's; two per core still leave room to balance uneven blocks."""
    per_core = QUINARY_PARTITIONS_PER_CORE if 4 in plan.space.sizes else 2
    return partition_blocks(plan.blocks, partitions or per_core * spark.sparkContext.defaultParallelism)


def partition_ids(spark: SparkSession, parts: list[list[int]]) -> DataFrame:
    """Extract: one row (``id``) per Spark partition of the screen, each in its own partition."""
    return spark.range(0, len(parts), numPartitions=len(parts))


def transform(ids: DataFrame, plan: ScreenPlan, stats_dir: str, parts: list[list[int]]) -> DataFrame:
    """Partition ids (:func:`partition_ids`) -> the surviving compositions of their blocks (:func:`kernel_ddl`);
    per-set counts go to ``stats_dir``, one file per partition. ``parts``: block ids per partition. The plan travels
    as a broadcast of plain data; no session is created here."""
    shared = ids.sparkSession.sparkContext.broadcast({**plan_to_dict(plan), "partitions": parts})
    return ids.mapInPandas(_kernel(shared, stats_dir), kernel_ddl(plan.inputs.columns))


def _symbol_of(column: str) -> Any:
    names = F.array(*[F.lit(s) for s in ("", *symbols())])
    return F.when(F.col(column) > 0, F.element_at(names, F.col(column).cast("int") + 1))


def candidates_frame(cand: DataFrame, plan: ScreenPlan) -> DataFrame:
    """Kernel survivors -> the `candidates` columns (symbols, percents, run id); the columns of an absent partner
    (z3 of a ternary, z4 of a quaternary in a run with quinaries) are null. A run without quinaries has no fourth
    partner's columns; Delta leaves them null when the table has them from an earlier run."""
    js = range(1, plan.inputs.columns + 1)
    present = {j: F.col(f"z{j}") > 0 for j in js}
    n_elements = sum((F.when(present[j], 1).otherwise(0) for j in js), F.lit(1))
    return cand.select(
        F.lit(plan.run_id).alias("run_id"),
        n_elements.cast("tinyint").alias("n_elements"),
        *[_symbol_of(f"z{j}").alias(f"element_{j}") for j in js],
        *[F.when(present[j], F.col(f"z{j}")).alias(f"z{j}") for j in js],
        F.greatest(*[f"z{j}" for j in js]).alias("max_z"),
        "pct_li",
        *[F.when(present[j], F.col(f"pct_{j}")).alias(f"pct_{j}") for j in js],
        *[F.when(present[j], F.col(f"ox_{j}")).alias(f"ox_{j}") for j in js],
        "score", "cost_per_kg", "mean_atomic_mass",
    )  # fmt: skip


def funnel_by_set_frame(sets: DataFrame, plan: ScreenPlan) -> DataFrame:
    """Per element set counts with element symbols, as the rows of `funnel_by_set`."""
    return sets.select(
        F.lit(plan.run_id).alias("run_id"),
        *[_symbol_of(f"z{j}").alias(f"element_{j}") for j in range(1, plan.inputs.columns + 1)],
        *[F.when(F.col(c) >= 0, F.col(c)).cast("bigint").alias(c) for c in STAT_COLUMNS],
    )


#: Columns of `candidates` with Delta min/max statistics (``delta.dataSkippingStatsColumns``, set when the table is
#: created): the numbers users filter and sort on. Not the element symbols: string min/max cost ~15 % of the full
#: screen's time to collect, and a task's file holds blocks from all over the space, so every file's symbol range
#: spans nearly the whole table and would skip nothing (the atomic numbers z1..z4 and max_z are there instead).
CANDIDATE_STATS_COLUMNS = ("n_elements", "z1", "z2", "z3", "z4", "max_z", "score", "cost_per_kg", "mean_atomic_mass")


def stats_columns(columns: int) -> str:
    """The table property ``delta.dataSkippingStatsColumns`` of a `candidates` table first written by a run with
    ``columns`` partner columns (z4 only when it exists)."""
    return ",".join(c for c in CANDIDATE_STATS_COLUMNS if c != "z4" or columns >= 4)


def write_partition_stats(stats: pd.DataFrame, stats_dir: str, part: int) -> None:
    """Per-set counts of one partition's blocks as a Parquet file named by the partition (atomic rename: a retried
    task rewrites the same file with the same content)."""
    import os
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(stats_dir, exist_ok=True)
    name = f"part-{part:05d}.parquet"
    final = os.path.join(stats_dir, name)
    tmp = os.path.join(stats_dir, f".{name}.{uuid.uuid4().hex}.tmp")  # hidden: readers skip dot files
    pq.write_table(pa.Table.from_pandas(stats, preserve_index=False), tmp)
    os.replace(tmp, final)


def read_partition_stats(stats_dir: Path, n_partitions: int) -> pd.DataFrame:
    """All per-set counts; raises when a partition's file is missing (the run is then incomplete)."""
    files = sorted(stats_dir.glob(STATS_FILES))
    if len(files) != n_partitions:
        raise RuntimeError(f"{len(files)} of {n_partitions} partitions reported their counts in {stats_dir}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


class _Progress(threading.Thread):
    """Logs partitions done / total, compositions per second and time left while the kernel stage runs."""

    def __init__(self, spark: SparkSession, total_tasks: int, compositions: int, every: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.tracker = spark.sparkContext.statusTracker()
        self.total, self.compositions, self.every = total_tasks, compositions, every
        self.stop_event = threading.Event()
        self.started = time.time()

    def run(self) -> None:
        """Log progress every ``every`` seconds until stopped."""
        while not self.stop_event.wait(self.every):
            done = 0
            for stage_id in self.tracker.getActiveStageIds():
                info = self.tracker.getStageInfo(stage_id)
                if info is not None and info.numTasks == self.total:
                    done = max(done, info.numCompletedTasks)
            if done:
                elapsed = time.time() - self.started
                rate = self.compositions * done / self.total / elapsed
                left = elapsed * (self.total - done) / done
                log.info(
                    "partitions %d/%d, %.2f G compositions/s, about %.0f s left", done, self.total, rate / 1e9, left
                )


def _runs_row(
    plan: ScreenPlan, settings: Settings, status: str, started: datetime, extra: dict[str, Any]
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "run_id": plan.run_id,
                "status": status,
                "started_at": started,
                "ended_at": datetime.now(UTC) if status != "running" else None,
                "model_path": plan.model_path,
                "model_sha256": plan.model_sha256,
                "oxidation_list": plan.oxidation_list,
                "compositions": plan.space.count(),
                "settings_json": json.dumps(settings.to_dict()["screen"]),
                "summary_json": json.dumps(extra, default=str),
            }
        ]
    )


FUNNEL_DDL = (
    "stage_order bigint, stage string, description string, count bigint, fraction_of_total double, "
    "fraction_of_previous double, run_id string"
)
RUNS_DDL = (
    "run_id string, status string, started_at timestamp, ended_at timestamp, model_path string, "
    "model_sha256 string, oxidation_list string, compositions bigint, settings_json string, summary_json string"
)


def _record_run(spark: SparkSession, settings: Settings, plan: ScreenPlan, status: str, started: datetime,
                extra: dict[str, Any]) -> None:  # fmt: skip
    path = str(table_path(settings.paths.warehouse_dir, "runs"))
    frame = spark.createDataFrame(_runs_row(plan, settings, status, started, extra), RUNS_DDL)
    replace_run_rows(frame, path, plan.run_id, partitioned=True)


def _commit_tables(
    spark: SparkSession, plan: ScreenPlan, parts: list[list[int]], staging: Path, pool: ThreadPoolExecutor,
    warehouse: Path,
) -> tuple[dict[str, int | None], list[Future[Any]], float]:  # fmt: skip
    """Transform and load: the kernel stage writes `candidates` directly (one Delta commit for the run id); once every
    partition has written its counts, `funnel_by_set` and `funnel` are committed beside it. Returns the stage totals,
    the commits in flight and the seconds until the kernel stage was over."""
    t0 = time.time()
    paths = {name: str(table_path(warehouse, name)) for name in ("candidates", "funnel_by_set", "funnel")}
    stats_dir = staging / "stats"
    cand = candidates_frame(transform(partition_ids(spark, parts), plan, str(stats_dir), parts), plan)
    properties = {"delta.dataSkippingStatsColumns": stats_columns(plan.inputs.columns)}
    commits = [pool.submit(replace_run_rows, cand, paths["candidates"], plan.run_id, True, properties, True)]
    while not commits[0].done() and len(list(stats_dir.glob(STATS_FILES))) < len(parts):
        time.sleep(0.05)
    if commits[0].done():
        commits[0].result()  # the kernel stage's error, if any
    kernel_s = time.time() - t0
    log.info("kernel stage done after %.1f s", kernel_s)
    totals = stage_totals(read_partition_stats(stats_dir, len(parts)))
    if totals["total"] != plan.space.count():
        raise RuntimeError(f"funnel total {totals['total']} != closed-form count {plan.space.count()}")
    sets = funnel_by_set_frame(spark.read.parquet(str(stats_dir)), plan)
    funnel = spark.createDataFrame(funnel_frame(totals).assign(run_id=plan.run_id), FUNNEL_DDL)
    commits += [
        pool.submit(replace_run_rows, sets, paths["funnel_by_set"], plan.run_id, True, None, True),
        pool.submit(replace_run_rows, funnel, paths["funnel"], plan.run_id, True),
    ]
    return totals, commits, kernel_s


def _summary(
    plan: ScreenPlan, totals: dict[str, int | None], parts: int, wall: float, kernel_s: float
) -> dict[str, Any]:
    """The run's summary: funnel counts and shares beside the paper's, limits, model, blocks, timings."""
    return {
        "job": "screen",
        "run_id": plan.run_id,
        "compositions": plan.space.count(),
        "funnel": {stage: totals[stage] for stage, _ in FUNNEL_STAGES},
        "fractions": {
            "conductive_of_all": _share(totals["conductive"], totals["total"]),
            "neutral_of_all": _share(totals["neutral"], totals["total"]),
            "conductive_of_neutral": _share(totals["neutral_conductive"], totals["neutral"]),
        },
        "paper": {
            "conductive_of_all": paper.FUNNEL["conductive"],
            "neutral_of_all": paper.FUNNEL["neutral"],
            "conductive_of_neutral": paper.FUNNEL["neutral_conductive"],
        },
        "oxidation_list": plan.oxidation_list,
        "plausible_only": plan.inputs.plausible_only,
        "limits": {
            "max_cost_per_kg": plan.inputs.max_cost_per_kg,
            "max_mean_atomic_mass": plan.inputs.max_mean_atomic_mass,
        },
        "model": {"path": plan.model_path, "sha256": plan.model_sha256},
        "blocks": len(plan.blocks),
        "partitions": parts,
        "wall_seconds": round(wall, 2),
        "kernel_stage_seconds": round(kernel_s, 2),
        "compositions_per_second": plan.space.count() / wall,
    }


def _expected_rows(plan: ScreenPlan, limit: int) -> tuple[RowEstimate | None, float]:
    """(the plan's expected rows of `candidates`, logged; seconds it took): InputError when over ``limit``."""
    mark = time.time()
    estimate = check_candidate_rows(plan, limit)
    if estimate is not None:
        log.info("run %s: expected rows of `candidates`: %s", plan.run_id, estimate)
    return estimate, time.time() - mark


def run_screen(settings: Settings, spark: SparkSession | None = None) -> dict[str, Any]:
    """Plan (validating everything), screen the space on Spark, write the four tables; return the summary.

    Bookkeeping overlaps the work: the ``running`` record of `runs` is committed while the kernel stage runs, and
    `candidates`, `funnel_by_set` and `funnel` are committed side by side once every partition has reported its
    counts; the final `runs` record comes last, so a run that `runs` calls ``succeeded`` has all its rows. New
    tables are partitioned by run id, so replacing a run's rows never rewrites another run's files.
    ``summary["timings"]`` holds seconds per step.
    """
    plan = plan_from_settings(settings)  # every bad setting or model stops here, before Spark starts
    warehouse = settings.paths.warehouse_dir
    check_writable(warehouse)
    estimate, estimate_s = _expected_rows(plan, settings.screen.max_candidate_rows)  # too many rows stop here too
    staging = settings.paths.home / "tmp" / f"screen-{plan.run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    spark = spark or get_session(settings)
    started, t0 = datetime.now(UTC), time.time()
    parts = default_partitions(spark, plan, settings.screen.partitions)
    log.info(
        "run %s: %d compositions (%s), %d blocks in %d partitions, model %s, oxidation states %s",
        plan.run_id, plan.space.count(), ", ".join(f"Li + {k} partners" for k in plan.space.sizes),
        len(plan.blocks), len(parts), plan.model_path, plan.oxidation_list,
    )  # fmt: skip
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="lisearch-commit")
    running = pool.submit(_record_run, spark, settings, plan, "running", started, {})
    progress = _Progress(spark, len(parts), plan.space.count())
    progress.start()
    try:
        totals, commits, kernel_s = _commit_tables(spark, plan, parts, staging, pool, warehouse)
        progress.stop_event.set()
        mark = time.time()
        for commit in commits:
            commit.result()
        running.result()
        timings = {"row_estimate": estimate_s, "kernel_stage": kernel_s, "table_commits": time.time() - mark}
    except BaseException as exc:
        progress.stop_event.set()
        with contextlib.suppress(Exception):
            running.result()  # the failure record must land after the running one
        _record_run(spark, settings, plan, "failed", started, {"error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise
    finally:
        pool.shutdown(wait=True)
        shutil.rmtree(staging, ignore_errors=True)
    summary = _summary(plan, totals, len(parts), time.time() - t0, kernel_s)
    summary["candidate_rows"] = {"written": rows_written(totals), "expected": str(estimate) if estimate else None}
    mark = time.time()
    _record_run(spark, settings, plan, "succeeded", started, summary)
    timings["runs_commit"] = time.time() - mark
    summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    summary["job_seconds_with_final_record"] = round(time.time() - t0, 2)
    for name in ("candidates", "funnel_by_set", "funnel", "runs"):
        register_table(spark, warehouse, name)
    record_job(settings, "screen", plan.run_id, summary)
    log.info(format_funnel(summary))
    log.info("timings (s): %s", summary["timings"])
    return summary


def _share(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else part / whole


def format_funnel(summary: dict[str, Any]) -> str:
    """The screen's funnel as printed lines beside the paper's."""
    f, total = summary["funnel"], summary["funnel"]["total"]
    rate = summary["compositions_per_second"] / 1e9
    lines = [
        f"screen {summary['run_id']}: {total:,} compositions in {summary['wall_seconds']} s ({rate:.2f} G/s), "
        f"oxidation states: {summary['oxidation_list']}"
    ]
    for stage, text in FUNNEL_STAGES:
        if f[stage] is None:
            lines.append(f"  {'n/a':>16}  {'':>11}  {text} ({NOT_COMPUTED.get(stage, 'not computed')})")
        else:
            lines.append(f"  {f[stage]:>16,}  {100 * f[stage] / total:9.5f} %  {text}")
    lines.append(f"  {rows_written(f):>16,}  {'':>11}  rows of `candidates`")
    fr, paper = summary["fractions"], summary["paper"]
    c_of_n = fr["conductive_of_neutral"]
    lines.append(
        f"  paper: {100 * paper['conductive_of_all']:.0f} % conductive, about {100 * paper['neutral_of_all']:.0f} % "
        f"neutral, {100 * paper['conductive_of_neutral']:.0f} % of neutral conductive; here: "
        + ("n/a" if fr["conductive_of_all"] is None else f"{100 * fr['conductive_of_all']:.1f} %")
        + f", {100 * fr['neutral_of_all']:.2f} %, "
        + (f"{100 * c_of_n:.1f} %" if c_of_n is not None else "n/a")
    )
    return "\n".join(lines)
