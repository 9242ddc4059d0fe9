"""The composition screen on Spark: ranges of element sets as partitions, the plan broadcast once,
``mapInPandas`` kernels that screen their blocks and write their surviving compositions and per-set counts
themselves, then Delta tables:

* ``candidates`` (partitioned by run_id): surviving compositions with elements, percents, oxidation states,
  score, cost and mass;
* ``funnel_by_set``: exact counts of every stage for every element set;
* ``funnel``: the whole space's counts per stage;
* ``runs``: run id, settings, model hash, start / end, status and counts.

Each table is replaced for the run id in one Delta commit: re-running an id leaves no duplicates, and readers never
see half of a table's rows for a run. Each kernel task writes its partition's candidates as one Parquet file (pyarrow)
into the `candidates` folder and its per-set counts into the run's staging folder (:mod:`lisearch.screening.files`;
``<home>/tmp``, which must be shared storage on a cluster, like the warehouse); the driver then adds the files to
`candidates` in one Delta commit and writes `funnel_by_set` and `funnel` from the counts. A stopped run resumes
from its staging folder (``screen.resume``) without screening its finished partitions again.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lisearch import paper
from lisearch.chemistry.elements import symbols
from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.locks import run_lock
from lisearch.logs import get_logger
from lisearch.records import record_job
from lisearch.schema import FUNNEL_DDL, RUNS_DDL, STAT_COLUMNS, candidates_ddl, stats_columns
from lisearch.screening.files import (
    Staging,
    code_sha256,
    plan_fingerprint,
    remove_uncommitted,
    resume_error,
)
from lisearch.screening.funnel import FUNNEL_STAGES, NOT_COMPUTED, funnel_frame, rows_written, stage_totals
from lisearch.screening.plan import (
    RowEstimate,
    ScreenPlan,
    check_candidate_rows,
    plan_from_settings,
    plan_to_dict,
)
from lisearch.screening.records import Manifest, ScreenSummary
from lisearch.screening.space import partition_blocks
from lisearch.screening.task import (
    OutputSpec,
    inputs_from_dict,
    output_of,
    screen_partition,
    space_from_dict,
    task_payload,
)
from lisearch.spark.catalog import (
    check_tables_writable,
    check_writable,
    ensure_table,
    register_table,
    replace_run_rows,
    table_path,
)
from lisearch.spark.commit import (
    RunFiles,
    commit_run_files,
    commit_with_spark,
    partition_columns,
    preflight,
    run_file_names,
)
from lisearch.spark.session import get_session
from lisearch.version import __version__

log = get_logger("lisearch.screen")


def _kernel(shared: Any) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Spark partitions to screen: each writes its candidate file and counts, and yields (partition, rows)."""
        _freeze_worker_objects()
        payload = shared.value  # the broadcast plan and output spec, fetched once per executor
        inputs, space, output = inputs_from_dict(payload), space_from_dict(payload), output_of(payload)
        for batch in batches:
            for i in batch["id"].astype(int).tolist():
                part = output.todo[i]
                rows = screen_partition(payload, part, inputs, space, output)
                yield pd.DataFrame({"partition": [part], "rows": [rows]})

    return run


@functools.cache
def _freeze_worker_objects() -> None:
    """PySpark's daemon runs a full ``gc.collect()`` after every task of a reused Python worker; with pandas,
    pyarrow and the kernel's caches loaded that walks every long-lived object (~20 ms a task). Freezing them once
    per worker process (:func:`gc.freeze`, meant for pre-fork servers) takes them out of every later collection;
    objects created afterwards are collected as usual. Once per process through the cache: asking
    ``gc.get_freeze_count()`` instead walks the ~160,000 frozen objects (~15 ms), too slow for every task."""
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


def partition_ids(spark: SparkSession, n: int) -> DataFrame:
    """Extract: ``n`` rows (``id`` 0..n-1), one per Spark partition of the screen, each in its own partition."""
    return spark.range(0, n, numPartitions=n)


KERNEL_DDL = "partition int, rows bigint"


def transform(ids: DataFrame, plan: ScreenPlan, output: OutputSpec) -> DataFrame:
    """Partition ids (:func:`partition_ids`, one per partition still to screen) -> one row per screened partition:
    its number and the candidate rows it wrote. ``output`` says where (:func:`output_spec`). The plan travels as a
    broadcast of plain data; no session is created here."""
    shared = ids.sparkSession.sparkContext.broadcast(task_payload(plan_to_dict(plan), output))
    return ids.mapInPandas(_kernel(shared), KERNEL_DDL)


def output_spec(plan: ScreenPlan, staging: Staging, candidates: str, manifest: Manifest,
                todo: list[int]) -> OutputSpec:  # fmt: skip
    """Where the kernel tasks write: the staging folder, the `candidates` table folder and the run's partition,
    the file token, the statistics columns, the partitions (block ids) and those still to screen."""
    return OutputSpec(
        staging=staging.root, table=candidates, run_id=plan.run_id, token=manifest["token"],
        stats_columns=tuple(stats_columns(plan.inputs.columns).split(",")),
        partitions=tuple(tuple(p) for p in manifest["partitions"]), todo=tuple(todo),
    )  # fmt: skip


def _symbol_of(column: str) -> Any:
    names = F.array(*[F.lit(s) for s in ("", *symbols())])
    return F.when(F.col(column) > 0, F.element_at(names, F.col(column).cast("int") + 1))


def funnel_by_set_frame(sets: DataFrame, plan: ScreenPlan) -> DataFrame:
    """Per element set counts with element symbols, as the rows of `funnel_by_set`."""
    return sets.select(
        F.lit(plan.run_id).alias("run_id"),
        *[_symbol_of(f"z{j}").alias(f"element_{j}") for j in range(1, plan.inputs.columns + 1)],
        *[F.when(F.col(c) >= 0, F.col(c)).cast("bigint").alias(c) for c in STAT_COLUMNS],
    )


class _Progress(threading.Thread):
    """Logs partitions done / total, compositions per second and time left while the kernel stage runs."""

    def __init__(self, spark: SparkSession, total_tasks: int, compositions: int, every: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.tracker = spark.sparkContext.statusTracker()
        self.total, self.compositions, self.every = total_tasks, compositions, every
        self.stop_event = threading.Event()
        self.started = time.time()

    def stop(self) -> None:
        """Stop logging and wait for the thread: no progress line after the stage (a caller may close the log
        stream as soon as the run returns)."""
        self.stop_event.set()
        self.join()

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
    plan: ScreenPlan, settings: Settings, status: str, started: datetime, extra: Mapping[str, Any]
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


def _record_run(spark: SparkSession, settings: Settings, plan: ScreenPlan, status: str, started: datetime,
                extra: Mapping[str, Any]) -> None:  # fmt: skip
    path = str(table_path(settings.paths.warehouse_dir, "runs"))
    frame = spark.createDataFrame(_runs_row(plan, settings, status, started, extra), RUNS_DDL)
    replace_run_rows(frame, path, plan.run_id, partitioned=True)


def _kernel_stage(spark: SparkSession, plan: ScreenPlan, output: OutputSpec) -> float:
    """Screen the partitions still to do (``output.todo``); returns the seconds it took."""
    t0 = time.time()
    todo = list(output.todo)
    if todo:
        screened = transform(partition_ids(spark, len(todo)), plan, output).collect()
        if sorted(r["partition"] for r in screened) != sorted(todo):
            raise RuntimeError(f"{len(screened)} of {len(todo)} partitions reported back from the kernel stage")
    kernel_s = time.time() - t0
    log.info("kernel stage done after %.1f s (%d partitions screened)", kernel_s, len(todo))
    return kernel_s


def _commit_tables(
    spark: SparkSession, plan: ScreenPlan, staging: Staging, n_parts: int, paths: dict[str, str],
    pool: ThreadPoolExecutor, fallback: str | None,
) -> tuple[dict[str, int | None], list[Future[Any]]]:  # fmt: skip
    """Load: the partitions' candidate files into `candidates` (one Delta commit for the run id: directly, or with
    Spark's writer when :func:`lisearch.spark.commit.preflight` gave a ``fallback`` reason), the per-set counts into
    `funnel_by_set` and their sums into `funnel`, side by side. Returns the stage totals and the commits."""
    totals = stage_totals(staging.read_stats(n_parts))
    if totals["total"] != plan.space.count():
        raise RuntimeError(f"funnel total {totals['total']} != closed-form count {plan.space.count()}")
    adds = [add for add in staging.done().values() if add is not None]
    sets = funnel_by_set_frame(spark.read.parquet(*[staging.stats_path(p) for p in range(n_parts)]), plan)
    funnel = spark.createDataFrame(funnel_frame(totals).assign(run_id=plan.run_id), FUNNEL_DDL)
    files = RunFiles(table=paths["candidates"], run_id=plan.run_id, adds=tuple(adds), columns=plan.inputs.columns)
    candidates = pool.submit(commit_with_spark, spark, files) if fallback else pool.submit(commit_run_files, files)
    commits: list[Future[Any]] = [
        candidates,
        pool.submit(replace_run_rows, sets, paths["funnel_by_set"], plan.run_id, True, None, True),
        pool.submit(replace_run_rows, funnel, paths["funnel"], plan.run_id, True),
    ]
    return totals, commits


def _start_staging(settings: Settings, plan: ScreenPlan, staging: Staging) -> tuple[Manifest | None, Manifest | None]:
    """(the manifest to resume, the manifest of an abandoned staged run to clean up): with ``screen.resume`` the
    staged run must have this plan's fingerprint (InputError otherwise, before Spark starts)."""
    manifest = staging.read_manifest()
    if not settings.screen.resume:
        return None, manifest
    if manifest is None:
        log.warning("run %s: nothing staged to resume in %s; screening it from the start", plan.run_id, staging.root)
        return None, None
    if manifest["fingerprint"] != _fingerprint(plan):
        raise resume_error(plan.run_id, "its settings, model or lisearch code differ from the stopped run's")
    return manifest, None


def _staged_run(
    spark: SparkSession, settings: Settings, plan: ScreenPlan, staging: Staging, resumed: Manifest | None,
    abandoned: Manifest | None, candidates: str,
) -> tuple[Manifest, dict[int, Any]]:  # fmt: skip
    """(the run's manifest, its finished partitions): the resumed staging, or a new one once an abandoned run's
    uncommitted candidate files are deleted. InputError when `candidates` is not partitioned by run id."""
    if partition_columns(candidates) not in (None, ["run_id"]):
        raise InputError(
            f"The `candidates` table at {candidates} was written by a lisearch older than run-id partitioning; the "
            "screen now adds its tasks' files to a run's partition. Move that folder aside (its rows stay readable "
            "as a Delta table) or point paths.warehouse at another folder, and run the screen again."
        )
    if abandoned is not None:
        committed = run_file_names(candidates, plan.run_id)
        gone = remove_uncommitted(candidates, plan.run_id, abandoned["token"], committed)
        log.info("run %s: an earlier stopped run's staging removed (%d uncommitted files)", plan.run_id, len(gone))
    manifest = resumed or staging.start(_fingerprint(plan), default_partitions(spark, plan, settings.screen.partitions))
    done = Staging(staging.root, manifest["token"]).done() if resumed else {}
    log.info(
        "run %s: %d compositions (%s), %d blocks in %d partitions%s, model %s, oxidation states %s",
        plan.run_id, plan.space.count(), ", ".join(f"Li + {k} partners" for k in plan.space.sizes), len(plan.blocks),
        len(manifest["partitions"]), f" (resumed: {len(done)} already screened)" if resumed else "", plan.model_path,
        plan.oxidation_list,
    )  # fmt: skip
    return manifest, done


def _ensure_candidates(spark: SparkSession, plan: ScreenPlan, path: str) -> None:
    """The `candidates` table, created (with its statistics columns) or given the plan's partner columns."""
    properties = {"delta.dataSkippingStatsColumns": stats_columns(plan.inputs.columns)}
    ensure_table(spark, path, candidates_ddl(plan.inputs.columns), True, properties)


def _record_failure(spark: SparkSession, settings: Settings, plan: ScreenPlan, started: datetime,
                    running: Future[Any], exc: BaseException) -> None:  # fmt: skip
    """The `runs` record of a failed run (after its ``running`` record), with how to resume it."""
    with contextlib.suppress(Exception):
        running.result()  # the failure record must land after the running one
    hint = f" (finished partitions are kept: `lisearch screen --resume --run-id {plan.run_id}` goes on)"
    _record_run(spark, settings, plan, "failed", started, {"error": f"{type(exc).__name__}: {exc}"[:2000] + hint})
    log.error("run %s failed%s", plan.run_id, hint)


def _fingerprint(plan: ScreenPlan) -> str:
    extra = (plan.run_id, plan.model_sha256, plan.oxidation_list, __version__, code_sha256())
    return plan_fingerprint(plan_to_dict(plan), *extra)


def _summary(
    plan: ScreenPlan, totals: dict[str, int | None], parts: int, wall: float, kernel_s: float
) -> ScreenSummary:
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


def run_screen(settings: Settings, spark: SparkSession | None = None, plan: ScreenPlan | None = None) -> ScreenSummary:
    """Plan (validating everything; or take ``plan``, :func:`lisearch.screening.plan.plan_from_settings` of the same
    settings, made once by the caller), screen the space on Spark, write the four tables; return the summary.

    Bookkeeping overlaps the work: the ``running`` record of `runs` and the `candidates` table's creation (or
    schema evolution) are committed while the kernel stage runs; `candidates`, `funnel_by_set` and `funnel` are
    committed side by side once every partition has reported; the final `runs` record comes last, so a run that
    `runs` calls ``succeeded`` has all its rows. New tables are partitioned by run id, so replacing a run's rows
    never rewrites another run's files. A run that stops keeps its staging folder: ``screen.resume`` (``lisearch
    screen --resume``) finishes it without screening its finished partitions again. ``summary["timings"]`` holds
    seconds per step.
    """
    plan = plan or plan_from_settings(settings)  # every bad setting or model stops here, before Spark starts
    with run_lock(settings.paths.home, plan.run_id, "screen", exclusive=True):  # a second screen of the id stops here
        return _screen(settings, plan, spark)


def _screen(settings: Settings, plan: ScreenPlan, spark: SparkSession | None) -> ScreenSummary:
    """:func:`run_screen` once its plan is made and its run id locked."""
    warehouse = settings.paths.warehouse_dir
    check_writable(warehouse)
    check_tables_writable(warehouse, ("candidates", "funnel_by_set", "funnel", "runs"))
    estimate, estimate_s = _expected_rows(plan, settings.screen.max_candidate_rows)  # too many rows stop here too
    staging = Staging(str(settings.paths.home / "tmp" / f"screen-{plan.run_id}"))
    resumed, abandoned = _start_staging(settings, plan, staging)  # a run that cannot resume stops here
    spark = spark or get_session(settings)
    started, t0 = datetime.now(UTC), time.time()
    paths = {name: str(table_path(warehouse, name)) for name in ("candidates", "funnel_by_set", "funnel")}
    manifest, done = _staged_run(spark, settings, plan, staging, resumed, abandoned, paths["candidates"])
    fallback = preflight(paths["candidates"], plan.inputs.columns)  # checked before the kernel stage, not after
    if fallback:
        log.warning("run %s: `candidates` is committed with Spark's writer, not directly: %s", plan.run_id, fallback)
    staging = Staging(staging.root, manifest["token"])  # this run's records
    parts: list[list[int]] = manifest["partitions"]
    todo = [p for p in range(len(parts)) if p not in done]
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="lisearch-commit")
    running = pool.submit(_record_run, spark, settings, plan, "running", started, {})
    table_ready = pool.submit(_ensure_candidates, spark, plan, paths["candidates"])
    progress = _Progress(spark, len(todo), plan.space.count() * len(todo) // max(len(parts), 1))
    progress.start()
    try:
        kernel_s = _kernel_stage(spark, plan, output_spec(plan, staging, paths["candidates"], manifest, todo))
        progress.stop()
        mark = time.time()
        table_ready.result()
        totals, commits = _commit_tables(spark, plan, staging, len(parts), paths, pool, fallback)
        for commit in commits:
            commit.result()
        running.result()
        timings = {"row_estimate": estimate_s, "kernel_stage": kernel_s, "table_commits": time.time() - mark}
    except BaseException as exc:
        progress.stop()
        _record_failure(spark, settings, plan, started, running, exc)
        raise
    finally:
        pool.shutdown(wait=True)
    staging.remove()
    summary = _summary(plan, totals, len(parts), time.time() - t0, kernel_s)
    summary["resumed_partitions"], summary["screened_partitions"] = len(done), len(todo)
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


def format_funnel(summary: ScreenSummary) -> str:
    """The screen's funnel as printed lines beside the paper's."""
    f, total = summary["funnel"], int(summary["funnel"]["total"] or 0)
    rate = summary["compositions_per_second"] / 1e9
    lines = [
        f"screen {summary['run_id']}: {total:,} compositions in {summary['wall_seconds']} s ({rate:.2f} G/s), "
        f"oxidation states: {summary['oxidation_list']}"
    ]
    for stage, text in FUNNEL_STAGES:
        count = f[stage]
        if count is None:
            lines.append(f"  {'n/a':>16}  {'':>11}  {text} ({NOT_COMPUTED.get(stage, 'not computed')})")
        else:
            lines.append(f"  {count:>16,}  {100 * count / total:9.5f} %  {text}")
    lines.append(f"  {rows_written(f):>16,}  {'':>11}  rows of `candidates`")
    fr, paper = summary["fractions"], summary["paper"]
    c_of_n = fr["conductive_of_neutral"]
    lines.append(
        f"  paper: {100 * paper['conductive_of_all']:.0f} % conductive, about {100 * paper['neutral_of_all']:.0f} % "
        f"neutral, {100 * paper['conductive_of_neutral']:.0f} % of neutral conductive; here: "
        + ("n/a" if fr["conductive_of_all"] is None else f"{100 * fr['conductive_of_all']:.1f} %")
        + f", {100 * (fr['neutral_of_all'] or 0):.2f} %, "
        + (f"{100 * c_of_n:.1f} %" if c_of_n is not None else "n/a")
    )
    return "\n".join(lines)
