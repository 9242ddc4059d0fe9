"""Benchmarks (``make bench``): prints one JSON report. Targets are ratios measured in the same run.

    python -m tools.bench                 # all benchmarks
    python -m tools.bench label           # only some
    python -m tools.bench label --full    # include the full 21,755-structure labelling job

Not run by the tests: speed is checked here, on a quiet machine, not in timed tests.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from lisearch.chemistry.elements import default_elements
from lisearch.config import load_settings
from lisearch.datasets import MP2025_ARCHIVE, iter_cifs
from lisearch.errors import LisearchError
from lisearch.screening.files import Staging
from lisearch.screening.funnel import rows_written
from lisearch.screening.task import output_of, screen_partition, task_payload
from lisearch.structure.labelling import label_cifs


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def bench_label(full: bool = False, sample: int = 1500) -> dict[str, Any]:
    """Structure labelling: the kernel in one process vs the Spark job (local mode, the profile's cores)."""
    cifs = pd.DataFrame(list(islice(iter_cifs(MP2025_ARCHIVE), sample)), columns=["material_id", "cif"])
    t0 = time.perf_counter()
    label_cifs(cifs)
    kernel_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "kernel_structures": len(cifs),
        "kernel_seconds": round(kernel_s, 2),
        "kernel_structures_per_second_per_core": round(len(cifs) / kernel_s, 1),
    }
    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="lisearch-bench-") as home:
        from lisearch.spark.label import run_label_job
        from lisearch.spark.session import get_session

        def settings(*extra: str):
            return load_settings(None, [f"paths.home={home}", f"paths.jars={base.paths.jars_dir}", *extra])

        spark = get_session(settings(), register=False)
        limit = 0 if full else sample * 2
        first = run_label_job(settings(f"label.limit={limit}"), spark=spark)
        rerun = run_label_job(settings(f"label.limit={limit}"), spark=spark)
        cores = spark.sparkContext.defaultParallelism
        out.update(
            spark_structures=first["labelled_this_run"],
            spark_seconds=first["wall_seconds"],
            spark_cores=cores,
            spark_structures_per_second=round(first["labelled_this_run"] / first["wall_seconds"], 1),
            spark_structures_per_second_per_core=round(first["labelled_this_run"] / first["wall_seconds"] / cores, 1),
            spark_vs_kernel_x_cores=round(
                (first["labelled_this_run"] / first["wall_seconds"]) / (len(cifs) / kernel_s * cores), 3
            ),
            rerun_nothing_new_seconds=rerun["wall_seconds"],
            superionic_fraction=first["table"]["superionic_fraction"],
        )
        if not full:
            out["full_archive_seconds_estimate"] = round(21755 / out["spark_structures_per_second"], 0)
    return out


class _ScreenBench:
    """The steps of :func:`bench_screen`, sharing one temporary home and one Spark session."""

    def __init__(self, home: str, rounds: int) -> None:
        from lisearch.spark.session import get_session

        self.home, self.rounds, self.base = home, rounds, load_settings()
        self.spark = get_session(self.settings(), register=False)
        self.cores = self.spark.sparkContext.defaultParallelism
        self.runs = itertools.count()

    def settings(self, *extra: str) -> Any:
        """Settings of the temporary home, the installation's jars and the trained models, plus ``extra``."""
        paths = [f"paths.home={self.home}", f"paths.jars={self.base.paths.jars_dir}"]
        return load_settings(None, [*paths, f"paths.artifacts={self.base.paths.artifacts_dir}", *extra])

    def spark_kernel(self, plan: Any, parts: list[list[int]]) -> float:
        """Seconds of the kernel job as the screen runs it (each task writes its candidate file and counts); its
        one row per partition goes to Spark's "noop" sink (made for benchmarks)."""
        from lisearch.spark.screen import partition_ids, transform

        with self.scratch_output(plan, parts) as output:
            frame = transform(partition_ids(self.spark, len(parts)), plan, output)
            t0 = time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            return time.perf_counter() - t0

    @contextlib.contextmanager
    def scratch_output(self, plan: Any, parts: list[list[int]]) -> Iterator[Any]:
        """Where a kernel run writes its candidate files and counts (a fresh staging folder and table folder),
        removed afterwards."""
        from lisearch.spark.screen import output_spec

        run = next(self.runs)
        staging = Staging(f"{self.home}/tmp/kernel-{run}")
        manifest = staging.start("bench", parts)
        output = output_spec(plan, staging, f"{self.home}/kernel-files-{run}", manifest, list(range(len(parts))))
        try:
            yield output
        finally:
            staging.remove()
            shutil.rmtree(output.table, ignore_errors=True)

    def kernel(self, emit: str) -> tuple[Any, dict[str, Any]]:
        """Best of ``rounds`` interleaved runs: one numpy process, ``cores`` numpy processes, the Spark kernel job."""
        from lisearch.screening.plan import plan_from_settings, screen_in_process
        from lisearch.spark.screen import default_partitions

        plan = plan_from_settings(self.settings(f"screen.emit={emit}", "run.id=kernel"))
        parts = default_partitions(self.spark, plan)
        with threadpool_limits(1):
            screen_in_process(plan)  # warm this process's caches, as Spark's workers are warm below
        for _ in range(2):
            self.spark_kernel(plan, parts)  # warm-up: JVM, Python workers and their caches
        numpy_s, parallel_s, spark_s = [], [], []
        for _ in range(self.rounds):
            with threadpool_limits(1):
                t0 = time.perf_counter()
                screen_in_process(plan)
                numpy_s.append(time.perf_counter() - t0)
            if emit == "true":  # the processes also write their candidate files, as the Spark tasks do
                with self.scratch_output(plan, parts) as output:
                    parallel_s.append(_numpy_processes(plan, self.cores, output))
            else:
                parallel_s.append(_numpy_processes(plan, self.cores))
            spark_s.append(self.spark_kernel(plan, parts))
        best = {"numpy": min(numpy_s), "parallel": min(parallel_s), "spark": min(spark_s)}
        cores = self.cores
        return plan, {
            "compositions": plan.space.count(),
            "partitions": len(parts),
            "numpy_one_process_seconds": round(best["numpy"], 2),
            "numpy_processes_seconds": round(best["parallel"], 2),
            "spark_kernel_job_seconds": round(best["spark"], 2),
            "spark_kernel_job_rate": plan.space.count() / best["spark"],
            "spark_kernel_job_vs_numpy_x_cores": round(best["numpy"] / cores / best["spark"], 3),
            "spark_kernel_job_vs_numpy_processes": round(best["parallel"] / best["spark"], 3),
            "numpy_processes_vs_numpy_x_cores": round(best["numpy"] / cores / best["parallel"], 3),
            "all_seconds": {k: [round(x, 2) for x in v] for k, v in
                            (("numpy", numpy_s), ("numpy_processes", parallel_s), ("spark", spark_s))},
        }  # fmt: skip

    def job_counts_only(self, numpy_s: float) -> dict[str, Any]:
        """The whole counts-only screen command, best of ``rounds`` (the first run creates the tables)."""
        from lisearch.spark.screen import run_screen

        counts_only = self.settings("screen.emit=false", "run.id=kernel")
        jobs = [run_screen(counts_only, spark=self.spark) for _ in range(self.rounds + 1)][1:]
        job = min(jobs, key=lambda j: j["job_seconds_with_final_record"])
        return {
            "seconds": job["job_seconds_with_final_record"],
            "timings": job["timings"],
            "vs_numpy_x_cores": round(numpy_s / self.cores / job["job_seconds_with_final_record"], 3),
            "all_seconds": [j["job_seconds_with_final_record"] for j in jobs],
        }

    def scaling(self) -> list[dict[str, Any]]:
        """The counts-only job and the kernel job for growing element sets (best of two each)."""
        from lisearch.screening.plan import plan_from_settings
        from lisearch.spark.screen import default_partitions, run_screen

        rows = []
        for m in (20, 40, 60, 93):
            elements = ",".join(default_elements()[:m])
            sized_settings = self.settings(f"screen.elements={elements}", "screen.emit=false", f"run.id=scale{m}")
            s = min((run_screen(sized_settings, spark=self.spark) for _ in range(2)), key=lambda r: r["wall_seconds"])
            rows.append({"elements": m, "compositions": s["compositions"], "seconds": s["wall_seconds"]})
            sized = plan_from_settings(sized_settings)
            sized_parts = default_partitions(self.spark, sized)
            self.spark_kernel(sized, sized_parts)  # warm-up
            rows[-1]["kernel_job_seconds"] = round(min(self.spark_kernel(sized, sized_parts) for _ in range(2)), 2)
        return rows

    def full(self, warm_rounds: int = 3) -> dict[str, Any]:
        """The whole default job with its 9.9 M candidates, cold then warm (best of ``warm_rounds``: the write path
        is the difference of two job times, each varying by a second from run to run here)."""
        from lisearch.spark.screen import run_screen

        cold = run_screen(self.settings("run.id=full"), spark=self.spark)
        warms = [run_screen(self.settings("run.id=full"), spark=self.spark) for _ in range(warm_rounds)]
        warm = min(warms, key=lambda w: w["wall_seconds"])
        return {
            "compositions": warm["compositions"],
            "cold_seconds": cold["wall_seconds"],
            "warm_seconds": warm["wall_seconds"],
            "warm_all_seconds": [w["wall_seconds"] for w in warms],
            "warm_seconds_with_final_record": warm["job_seconds_with_final_record"],
            "warm_timings": warm["timings"],
            "warm_rate": warm["compositions_per_second"],
            "candidates_written": rows_written(warm["funnel"]),
            "funnel": warm["funnel"],
            "oxidation_list": warm["oxidation_list"],
        }

    def memory(self) -> dict[str, Any]:
        """Peak resident memory of the driver JVM (in local mode it runs the executors' JVM side too)."""
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        runtime = jvm.java.lang.Runtime.getRuntime()
        return {
            "driver_jvm_max_heap_mb": round(runtime.maxMemory() / 2**20),
            "driver_jvm_peak_rss_mb": _peak_rss_mb(int(jvm.java.lang.ProcessHandle.current().pid())),
        }


def _scaling_fit(scaling: list[dict[str, Any]], numpy_per_billion: float) -> dict[str, Any]:
    """Line fits of seconds against compositions: seconds per G compositions, fixed costs, marginal rates."""
    x = [r["compositions"] for r in scaling]
    slope, intercept = _fit(x, [r["seconds"] for r in scaling])
    k_slope, k_intercept = _fit(x, [r["kernel_job_seconds"] for r in scaling])
    return {
        "job_seconds_per_billion": round(slope * 1e9, 3),
        "job_fixed_seconds": round(intercept, 2),
        "kernel_job_seconds_per_billion": round(k_slope * 1e9, 3),
        "kernel_job_fixed_seconds": round(k_intercept, 2),
        "numpy_x_cores_seconds_per_billion": round(numpy_per_billion, 3),
        # Seconds per extra G compositions once the fixed costs are paid: numpy x cores / Spark.
        "kernel_job_marginal_vs_numpy_x_cores": round(numpy_per_billion / (k_slope * 1e9), 3),
        "job_marginal_vs_numpy_x_cores": round(numpy_per_billion / (slope * 1e9), 3),
    }


def bench_screen(full: bool = True, rounds: int = 5) -> dict[str, Any]:
    """The composition screen on Spark (local mode, this machine's cores).

    * kernel: the same kernel over the same blocks, warm, best of ``rounds`` interleaved runs of: one Python process
      with one BLAS thread (Spark runs every Python task with OMP_NUM_THREADS=1); ``cores`` plain numpy processes;
      the Spark job that runs it (``mapInPandas`` over the screen's partitions, counts to the per-partition files,
      survivors to the JVM, written to Spark's ``noop`` sink). Counts only, then with the 9.9 M survivors;
    * job: the whole counts-only screen command (kernel job + Delta commits of the four tables), best of ``rounds``;
    * full: the whole default job (score, neutrality, cost, weight, Delta writes of 9.9 M candidates), cold, then
      warm best of three;
    * write_path: what writing the candidates adds to the job (warm job minus the counts-only job) against writing the
      same rows with pyarrow alone, one Parquet file per core (the baseline; best of three);
    * scaling: the counts-only job and the kernel job for growing element sets (best of two each); line fits give
      seconds per G compositions and the fixed cost (Delta commits, job start), and the marginal rate against numpy;
    * smact: SMACT's per-composition neutrality check against the kernel;
    * memory: peak resident memory of the driver JVM (local mode: it also runs the executors' JVM side) and of the
      driver's Python process.
    """
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lisearch-bench-") as home:
        bench = _ScreenBench(home, rounds)
        kernel: dict[str, Any] = {"spark_cores": bench.cores, "rounds": rounds}
        for label, emit in (("counts_only", "false"), ("with_survivors", "true")):
            plan, kernel[label] = bench.kernel(emit)
        numpy_s = kernel["counts_only"]["numpy_one_process_seconds"]
        out["kernel"] = kernel
        out["job_counts_only"] = bench.job_counts_only(numpy_s)
        out["scaling"] = bench.scaling()
        numpy_per_billion = numpy_s / bench.cores / kernel["counts_only"]["compositions"] * 1e9
        out["scaling_fit"] = _scaling_fit(out["scaling"], numpy_per_billion)
        if full:
            out["full"] = bench.full()
            out["write_path"] = _write_path(out, plan, bench.cores, home)
        out["smact"] = _bench_smact(plan)
        out["memory"] = bench.memory()
    import resource

    out["memory"]["driver_python_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a process in MB, from /proc (None where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _blocks_worker(args: tuple[dict[str, Any], list[int], int]) -> float:
    """Seconds of one process's share of the blocks, warm: the kernel alone, or with an ``output`` in ``data`` what
    a Spark task does (:func:`screen_partition`: the candidate file and the counts written)."""
    from threadpoolctl import threadpool_limits

    from lisearch.screening.task import run_blocks

    data, ids, part = args
    with threadpool_limits(1):
        run_blocks(data, ids)  # warm this process's caches, like a warm Spark worker
        t0 = time.perf_counter()
        if "output" in data:
            output = output_of(data)
            mine = tuple(tuple(ids) if p == part else () for p in range(max(part + 1, len(output.partitions))))
            screen_partition(data, part, output=dataclasses.replace(output, partitions=mine))
        else:
            run_blocks(data, ids)
        return time.perf_counter() - t0


def _numpy_processes(plan: Any, processes: int, output: Any = None) -> float:
    """Wall seconds of the kernel over the whole plan split across ``processes`` plain numpy processes (no
    Spark): what this machine's cores deliver together, shared caches and memory bandwidth included. With
    ``output`` (:func:`lisearch.spark.screen.output_spec`) each process also writes its candidate file and counts
    with pyarrow, as a Spark task does."""
    from multiprocessing import get_context

    from lisearch.screening.plan import plan_to_dict

    data = task_payload(plan_to_dict(plan), output) if output else plan_to_dict(plan)
    n = len(plan.blocks)
    shares = [(data, list(range(i, n, processes)), i) for i in range(processes)]
    with get_context("fork").Pool(processes) as pool:
        return max(pool.map(_blocks_worker, shares))


def _pyarrow_write_worker(args: tuple[dict[str, Any], list[int], str]) -> float:
    """Seconds to write one process's share of the survivors with pyarrow alone (Arrow columns of `candidates`,
    one snappy Parquet file); the kernel that finds them runs first, untimed."""
    import pyarrow.parquet as pq
    from threadpoolctl import threadpool_limits

    from lisearch.screening.files import candidate_table
    from lisearch.screening.task import inputs_from_dict, run_blocks

    data, ids, path = args
    with threadpool_limits(1):
        survivors = run_blocks(data, ids)[1]
        t0 = time.perf_counter()
        pq.write_table(candidate_table(survivors, inputs_from_dict(data).columns), path, compression="snappy")
        return time.perf_counter() - t0


def _write_path(out: dict[str, Any], plan: Any, cores: int, folder: str) -> dict[str, Any]:
    """The screen's cost of writing its candidates (the whole job with them, warm, minus the counts-only job)
    against writing the same rows with pyarrow alone in ``cores`` processes (the baseline)."""
    from multiprocessing import get_context

    from lisearch.screening.plan import plan_to_dict

    data, n = plan_to_dict(plan), len(plan.blocks)
    shares = [(data, list(range(i, n, cores)), f"{folder}/pyarrow-{i}.parquet") for i in range(cores)]
    with get_context("fork").Pool(cores) as pool:
        baseline = min(max(pool.map(_pyarrow_write_worker, shares)) for _ in range(3))
    job = out["full"]["warm_seconds"] - out["job_counts_only"]["seconds"]
    return {
        "rows": out["full"]["candidates_written"],
        "job_write_seconds": round(job, 2),
        "pyarrow_alone_seconds": round(baseline, 2),
        "job_vs_pyarrow": round(job / baseline, 2),
    }


def _fit(x: list[float], y: list[float]) -> tuple[float, float]:
    import numpy as np

    slope, intercept = np.polyfit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 1)
    return float(slope), float(intercept)


def _bench_smact(plan: Any, n: int = 3000) -> dict[str, Any]:
    """SMACT's neutrality check per composition on a random sample, against our kernel's rate."""
    import numpy as np

    try:
        from smact.screening import smact_validity
    except ImportError:
        return {"skipped": "smact not installed (pip install -e '.[dev]')"}
    rng = np.random.default_rng(0)
    picks = [plan.space.unrank(int(i)) for i in rng.integers(0, plan.space.count(), n)]
    t0 = time.perf_counter()
    for els, units in picks:
        comp = "Li" + str(units[0]) + "".join(f"{e}{u}" for e, u in zip(els, units[1:], strict=True))
        with contextlib.suppress(Exception):  # SMACT raises on some elements; timing only
            smact_validity(comp, use_pauling_test=False, oxidation_states_set="icsd24")
    smact_rate = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    from lisearch.screening.kernels import screen_sets

    sets = plan.space.element_sets(plan.blocks[-1])
    stats, _ = screen_sets(plan.inputs, sets)
    ours = stats["total"].sum() / (time.perf_counter() - t0)
    return {
        "smact_compositions_per_second": round(smact_rate, 1),
        "lisearch_kernel_compositions_per_second": float(ours),
        "ratio": round(ours / smact_rate, 1),
    }


def bench_models(full: bool = False, blocks: int = 6) -> dict[str, Any]:
    """The screen kernel with the linear esML model beside atom2vec-esML, on the same blocks, in one process:
    compositions covered per second and charge-neutral compositions scored per second. With ``--full``, also the
    Spark job of the atom2vec screen over the charge-neutral part of the default space (Eu, Tb, Yb have no vector).
    """
    from lisearch.screening.plan import plan_from_settings, plan_to_dict
    from lisearch.screening.task import run_blocks

    base = load_settings()
    out: dict[str, Any] = {}
    common = ["screen.emit=false", "screen.exclude=Eu,Tb,Yb", f"paths.artifacts={base.paths.artifacts_dir}"]
    for model in ("esml", "atom2vec"):
        plan = plan_from_settings(load_settings(None, [*common, f"screen.model={model}"]))
        data = plan_to_dict(plan)
        picks = list(range(len(plan.blocks)))[:: max(1, len(plan.blocks) // blocks)][:blocks]
        run_blocks(data, picks[:1], plan.inputs)  # warm the caches of neutral compositions
        t0 = time.perf_counter()
        stats, _ = run_blocks(data, picks, plan.inputs)
        seconds = time.perf_counter() - t0
        out[model] = {
            "blocks": len(picks),
            "compositions": int(stats["total"].sum()),
            "neutral_scored": int(stats["neutral"].sum()),
            "seconds": round(seconds, 2),
            "compositions_per_second": stats["total"].sum() / seconds,
            "neutral_scored_per_second": stats["neutral"].sum() / seconds,
        }
    out["atom2vec_vs_esml_rate"] = round(
        out["atom2vec"]["compositions_per_second"] / out["esml"]["compositions_per_second"], 3
    )
    if full:
        from lisearch.spark.screen import run_screen
        from lisearch.spark.session import get_session

        with tempfile.TemporaryDirectory(prefix="lisearch-bench-") as home:
            settings = load_settings(
                None,
                [
                    f"paths.home={home}",
                    f"paths.jars={base.paths.jars_dir}",
                    f"paths.artifacts={base.paths.artifacts_dir}",
                    "screen.model=atom2vec",
                    "screen.exclude=Eu,Tb,Yb",
                    "run.id=atom2vec",
                ],
            )
            summary = run_screen(settings, spark=get_session(settings, register=False))
            out["atom2vec_full_screen"] = {
                "compositions": summary["compositions"],
                "neutral_scored": summary["funnel"]["neutral"],
                "candidates_written": rows_written(summary["funnel"]),
                "wall_seconds": summary["wall_seconds"],
            }
    return out


def _candidate_sample(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` random `candidates`-like rows (Li + 3 partners, whole percents summing to 100)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    partners = np.array([z for z in range(1, 95) if z != 3])
    z = np.sort(np.array([rng.choice(partners, 3, replace=False) for _ in range(n)]), axis=1)
    cuts = np.sort(np.array([rng.choice(np.arange(1, 100), 3, replace=False) for _ in range(n)]), axis=1)
    pct = np.diff(np.column_stack([np.zeros(n, int), cuts, np.full(n, 100)]), axis=1)
    return pd.DataFrame({"z1": z[:, 0], "z2": z[:, 1], "z3": z[:, 2], "pct_li": pct[:, 0], "pct_1": pct[:, 1],
                         "pct_2": pct[:, 2], "pct_3": pct[:, 3]})  # fmt: skip


def bench_measured(full: bool = False, rows: int = 100_000) -> dict[str, Any]:
    """The measured models' screen kernel (:func:`lisearch.measured.scoring.score_candidates`) in one process with
    one BLAS thread: seconds per stage for ``rows`` candidate rows, the rate, and the kernel time per million
    candidates on the machine's cores. With ``--full``, the `lisearch score-measured` Spark job over the `candidates`
    of run ``default`` of `make run` (it replaces that run's rows of `measured_candidates`)."""
    from lisearch.measured.models import check_pair, load_measured
    from lisearch.measured.scoring import score_candidates
    from lisearch.schema import candidate_fractions

    settings = load_settings()
    classifier, regressor = check_pair(load_measured(settings.paths.artifacts_dir, required=True), "artifacts")
    batch = _candidate_sample(rows)
    out: dict[str, Any] = {"rows": rows}
    with threadpool_limits(1):
        score_candidates(batch.head(1000), classifier, regressor)  # compile and warm
        t0 = time.perf_counter()
        X = classifier.features(candidate_fractions(batch))
        t1 = time.perf_counter()
        classifier.ensemble_.predict(X)
        t2 = time.perf_counter()
        regressor.ensemble_.predict(X)
        t3 = time.perf_counter()
        classifier.domain_.distance(X)
        t4 = time.perf_counter()
        score_candidates(batch, classifier, regressor)
        t5 = time.perf_counter()
    out["seconds"] = {"features": round(t1 - t0, 3), "classifier": round(t2 - t1, 3), "regressor": round(t3 - t2, 3),
                      "applicability_domain": round(t4 - t3, 3), "whole_kernel": round(t5 - t4, 3)}  # fmt: skip
    rate = rows / (t5 - t4)
    out["rows_per_second_per_core"] = round(rate)
    out["kernel_seconds_per_million_candidates_on_all_cores"] = round(1e6 / rate / _cores(), 1)
    if full:
        from lisearch.spark.measured import run_score_measured

        summary = run_score_measured(settings)
        out["score_measured_job"] = summary
        out["target_seconds"] = 300
    return out


def bench_narrowing(full: bool = False) -> dict[str, Any]:
    """Wall time of the two downstream jobs over the `candidates` of run ``default`` of `make run`: the narrowing to
    stable oxides (`lisearch narrow`, target 120 s) and the shortlist (`lisearch shortlist`). Both replace that
    run's rows of their tables, as `make run` does. Then `lisearch paper-study` (target 600 s), which rewrites
    ``reports/paper_study.*``."""
    from lisearch.spark.narrow import run_narrow
    from lisearch.spark.session import get_session
    from lisearch.spark.shortlist import run_shortlist

    settings = load_settings()
    spark = get_session(settings)
    out: dict[str, Any] = {}
    for name, job in (("narrow", run_narrow), ("shortlist", run_shortlist)):
        started = time.perf_counter()
        job(settings, spark=spark)
        out[f"{name}_seconds"] = round(time.perf_counter() - started, 1)
    out["narrow_target_seconds"] = 120
    from lisearch.api import paper_study

    started = time.perf_counter()
    paper_study(settings=settings)  # the fixed 400,000-composition sample of `lisearch paper-study`
    out["paper_study_seconds"] = round(time.perf_counter() - started, 1)
    out["paper_study_target_seconds"] = 600
    return out


#: Element sets sampled per size by :func:`bench_quinary` (the default space, seed 0).
QUINARY_SAMPLE = {3: 3000, 4: 48}
#: Blocks of the 93-element quinary run sampled by :func:`bench_quinary` to extrapolate its time.
QUINARY_BLOCKS = 64


def _blocks_extrapolation(plan: Any, blocks: int, cores: int, seed: int = 0) -> dict[str, Any]:
    """The whole plan's seconds on ``cores`` cores extrapolated from ``blocks`` random blocks of it, each screened
    in this process with one BLAS thread and the neutral-solution caches emptied first (a real run reuses a
    group's solutions across its blocks: this errs on the slow side); mean x blocks / cores with a 95 % interval
    (the blocks' times vary 10x: light many-valent element sets cost most)."""
    import numpy as np

    from lisearch.screening.kernels import clear_caches, screen_sets

    ids = np.random.default_rng(seed).choice(len(plan.blocks), min(blocks, len(plan.blocks)), replace=False)
    seconds = []
    with threadpool_limits(1):
        for b in ids.tolist():
            clear_caches()
            t0 = time.perf_counter()
            screen_sets(plan.inputs, plan.space.element_sets(plan.blocks[b]))
            seconds.append(time.perf_counter() - t0)
    t = np.array(seconds)
    scale = len(plan.blocks) / cores
    half = 1.96 * t.std(ddof=1) / np.sqrt(len(t)) * scale * np.sqrt(1 - len(t) / len(plan.blocks))
    return {
        "blocks": len(plan.blocks),
        "sets_per_block": plan.blocks[0].stop - plan.blocks[0].start,
        "sampled_blocks": len(t),
        "block_seconds_min_mean_max": [round(float(t.min()), 2), round(float(t.mean()), 2), round(float(t.max()), 2)],
        "extrapolated_seconds": round(float(t.mean()) * scale),
        "extrapolated_seconds_95": [round(float(t.mean()) * scale - half), round(float(t.mean()) * scale + half)],
    }


def _kernel_rates(plan: Any, k: int, sets: Any, rounds: int = 3) -> dict[str, Any]:
    """Compositions per second of one process (one BLAS thread) on element sets ``sets`` of size ``k``, best of
    ``rounds``: the conductive count alone, then the whole kernel cold (neutral-solution caches emptied before each
    round) and warm."""
    from lisearch.screening.kernels import clear_caches, conductive_counts, screen_sets

    def seconds(run: Callable[[], Any], cold: bool = False) -> float:
        best = float("inf")
        for _ in range(rounds):
            if cold:
                clear_caches()
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        return best

    compositions = len(sets) * plan.space.n_fractions(k)
    with threadpool_limits(1):
        conductive_counts(plan.inputs, sets[:2])  # the size's leading parts, built once per process
        counts_s = seconds(lambda: conductive_counts(plan.inputs, sets))
        cold_s = seconds(lambda: screen_sets(plan.inputs, sets), cold=True)
        warm_s = seconds(lambda: screen_sets(plan.inputs, sets))
        stats, _ = screen_sets(plan.inputs, sets)
    return {
        "element_sets": len(sets),
        "compositions": compositions,
        "neutral_per_set": round(float(stats["neutral"].mean())),
        "conductive_count_rate": compositions / counts_s,
        "kernel_cold_rate": compositions / cold_s,
        "kernel_warm_rate": compositions / warm_s,
    }


def bench_quinary(full: bool = False) -> dict[str, Any]:
    """Li + four partners against Li + three, per core: the kernel's compositions per second on random element sets
    of the default space (:data:`QUINARY_SAMPLE`), the ratios (target >= 0.8), and the 93-element quinary space's
    time on this machine's cores extrapolated from :data:`QUINARY_BLOCKS` of its blocks (target <= 30 minutes on 2
    cores; :func:`_blocks_extrapolation`), and from the cold rate of single sets for comparison. With ``--full``,
    the Z <= 36 quinary job (197,102,727,360 compositions, plausible survivors written to Delta; target 3 minutes).
    """
    import numpy as np

    from lisearch.chemistry.elements import symbols
    from lisearch.screening.plan import plan_from_settings
    from lisearch.screening.space import unrank_subset

    base = load_settings()
    artifacts = f"paths.artifacts={base.paths.artifacts_dir}"
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for k, m in QUINARY_SAMPLE.items():
        plan = plan_from_settings(load_settings(None, [artifacts, f"screen.sizes={k}"]))
        n, elements = plan.space.n_sets(k), len(plan.space.elements)
        ranks = sorted(int(r) for r in rng.choice(n, m, replace=False))
        sets = np.array([unrank_subset(r, elements, k) for r in ranks], dtype=np.int64)
        out[f"k{k}"] = _kernel_rates(plan, k, sets)
    four, three = out["k4"], out["k3"]
    out["ratios"] = {name: four[name] / three[name] for name in ("conductive_count_rate", "kernel_cold_rate",
                                                                  "kernel_warm_rate")}  # fmt: skip
    out["ratio_target"] = 0.8
    cores = _cores()
    full_space = plan.space.count(4)
    out["full_quinary_space"] = {
        "compositions": full_space,
        "cores": cores,
        # random sets, each on its own: what the run would cost without blocks grouped by state lists
        "extrapolated_seconds_from_cold_sets": round(full_space / (four["kernel_cold_rate"] * cores)),
        **_blocks_extrapolation(plan, QUINARY_BLOCKS, cores),
        "target_seconds_on_2_cores": 1800,
    }
    if full:
        with tempfile.TemporaryDirectory(prefix="lisearch-bench-") as home:
            from lisearch.spark.screen import run_screen

            z36 = ",".join(e for e in symbols()[:36] if e != "Li")
            settings = load_settings(None, [
                f"paths.home={home}", f"paths.jars={base.paths.jars_dir}", artifacts, "screen.sizes=4",
                f"screen.elements={z36}", "screen.sets_per_block=200", "screen.partitions=32", "run.id=q36",
            ])  # fmt: skip
            t0 = time.perf_counter()
            summary = run_screen(settings)
            out["z36_job"] = {
                "compositions": summary["compositions"],
                "seconds": round(time.perf_counter() - t0, 1),
                "target_seconds": 180,
                "funnel": summary["funnel"],
                "candidate_rows": summary["candidate_rows"],
            }
    return out


def _relax_worker(item: dict[str, Any]) -> dict[str, Any]:
    from lisearch.config import MaterialsSettings
    from lisearch.materials.pipeline import relax_item

    return relax_item(item, MaterialsSettings(**item["_settings"]))


def bench_materials(full: bool = False) -> dict[str, Any]:
    """The `lisearch materials` Spark job against the same relaxations in one process per core (the issue's target:
    the job >= 0.85 of the processes' throughput). Both start warm (the potential loaded in every worker) and the
    competing phases are cached before either is timed, so both do the same relaxations; the job also computes the
    hulls and commits its chunks, which the processes do not. Work: the candidates of 6 compositions (``--full``:
    12), ``materials.steps`` 60 so that every relaxation is bounded."""
    import dataclasses
    import multiprocessing
    import tempfile

    from lisearch.materials.phases import phase_energies
    from lisearch.materials.pipeline import plan_candidates, system_phases
    from lisearch.spark.materials import run_materials
    from lisearch.spark.session import get_session

    formulas = ["Li3AsO4", "Li3PS4", "Li3InCl6", "LiAlO2", "Li2SiO3", "Li3BO3"]
    if full:
        formulas += ["Li6PS5Cl", "LiGaO2", "Li3VO4", "Li2ZrO3", "LiNbO3", "Li4GeO4"]
    cores = _cores()
    with tempfile.TemporaryDirectory() as home:
        overrides = [f"paths.home={home}", "materials.steps=60", "materials.candidates=2"]
        settings = load_settings(None, [*overrides, "run.id=bench"])
        m = settings.materials
        for phases in system_phases(formulas).values():  # phases first: not part of either timing
            phase_energies(phases, settings.paths.warehouse_dir)
        work, _ = plan_candidates(formulas, m)
        plain = dataclasses.asdict(m)
        items = [{**item, "_settings": plain} for item in sorted(work, key=lambda it: -len(it["structure"]))]
        spark = get_session(settings)
        warm = [*formulas[:1]] * 1
        run_materials(dataclasses.replace(settings, run=dataclasses.replace(settings.run, id="warm")), 0, warm,
                      spark=spark)  # fmt: skip
        t0 = time.perf_counter()
        summary = run_materials(settings, 0, formulas, restart=True, spark=spark)
        spark_seconds = time.perf_counter() - t0
        with multiprocessing.get_context("spawn").Pool(cores) as pool:
            pool.map(_relax_worker, items[:cores], chunksize=1)  # warm: the potential loaded in every process
            t0 = time.perf_counter()
            pool.map(_relax_worker, items, chunksize=1)
            pool_seconds = time.perf_counter() - t0
    return {
        "formulas": len(formulas), "relaxations": len(items), "cores": cores,
        "spark_job_seconds": round(spark_seconds, 1), "processes_seconds": round(pool_seconds, 1),
        "ratio_job_to_processes": round(pool_seconds / spark_seconds, 3), "target_ratio": 0.85,
        "job_summary": {k: v for k, v in summary.items() if k != "shortlist_report"},
    }  # fmt: skip


def _simulate_worker(args: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    from lisearch.config import MobilitySettings
    from lisearch.mobility.ranking import simulate_item

    item, plain = args
    return simulate_item(item, MobilitySettings(**plain), "cpu")


def bench_mobility(full: bool = False) -> dict[str, Any]:
    """The `lisearch mobility` Spark job against the same simulations in one process per core (the issue's target:
    the job >= 0.85 of the processes' throughput). Both start warm (the potential loaded in every worker). Work: MD at
    1000 K of 8 shipped MP Li compounds of 8 to 20 sites (``--full``: 16; the first by id of ``mp_known``) in their
    cells as shipped, 0.4 ps after 0.1 ps."""
    import dataclasses
    import multiprocessing
    import tempfile

    import pandas as pd

    from lisearch.datasets import MP2025_ARCHIVE, MP2025_INDEX, mp_known
    from lisearch.materials.templates import read_cifs
    from lisearch.schema import MATERIALS_TABLE_COLUMNS
    from lisearch.spark.mobility import run_mobility
    from lisearch.spark.session import get_session
    from lisearch.spark.tasks import append_run_rows

    shipped = pd.read_csv(MP2025_INDEX)
    shipped = shipped[shipped["nsites"].between(8, 20) & shipped["material_id"].isin(mp_known()["material_id"])]
    ids = shipped.sort_values("material_id")["material_id"].head(16 if full else 8).tolist()
    cifs = read_cifs(MP2025_ARCHIVE, ids)
    rows = [{**dict.fromkeys(MATERIALS_TABLE_COLUMNS), "formula": i, "candidate": 1, "status": "ok",
             "e_above_hull": 0.0, "cif": cifs[i]} for i in ids if i in cifs]  # fmt: skip
    cores = _cores()
    overrides = ["run.id=bench", "mobility.md_ps=0.4", "mobility.equilibration_ps=0.1", "mobility.min_cell_length=0",
                 "mobility.temperatures=1000"]  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(None, [f"paths.home={home}", *overrides])
        spark = get_session(settings)
        append_run_rows(spark, settings.paths.warehouse_dir / "materials", rows, MATERIALS_TABLE_COLUMNS, "bench")
        warm = dataclasses.replace(settings, mobility=dataclasses.replace(settings.mobility, md_ps=0.02,
                                   equilibration_ps=0.0, sample_fs=2.0))  # fmt: skip
        run_mobility(warm, cores, spark=spark)  # the potential loaded in the Python workers
        t0 = time.perf_counter()
        summary = run_mobility(settings, len(rows), restart=True, spark=spark)
        spark_seconds = time.perf_counter() - t0
        plain = dataclasses.asdict(settings.mobility)
        items = [({"formula": r["formula"], "candidate": 1, "shortlist_rank": None, "temperature_k": 1000.0,
                   "cif": r["cif"]}, plain) for r in sorted(rows, key=lambda r: -len(r["cif"]))]  # fmt: skip
        with multiprocessing.get_context("spawn").Pool(cores) as pool:
            pool.map(_simulate_worker, [(i, dataclasses.asdict(warm.mobility)) for i, _ in items[:cores]], chunksize=1)
            t0 = time.perf_counter()
            pool.map(_simulate_worker, items, chunksize=1)
            pool_seconds = time.perf_counter() - t0
    return {
        "simulations": len(items), "cores": cores, "spark_job_seconds": round(spark_seconds, 1),
        "processes_seconds": round(pool_seconds, 1), "ratio_job_to_processes": round(pool_seconds / spark_seconds, 3),
        "target_ratio": 0.85, "job_summary": summary,
    }  # fmt: skip


SERVE_FUNNEL = "SELECT stage, count FROM funnel WHERE run_id = 'default' ORDER BY stage_order"


def _percentiles(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    values = np.array(seconds)
    return {"p50_s": round(float(np.percentile(values, 50)), 3), "p95_s": round(float(np.percentile(values, 95)), 3),
            "n": len(seconds)}  # fmt: skip


def _cli_seconds(*args: str) -> float:
    import subprocess

    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "lisearch.cli", *args], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise LisearchError(f"`lisearch {' '.join(args)}` failed: {out.stderr.strip()[-500:]}")
    return round(time.perf_counter() - started, 2)


def _connect_clients(url: str, clients: int, seconds: float, expected: list[tuple[Any, ...]]) -> dict[str, Any]:
    """``clients`` threads, each with its own Spark Connect session, asking the funnel for ``seconds``."""
    import threading

    from pyspark.sql import SparkSession

    latencies: list[float] = []
    errors: list[str] = []
    wrong = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        session = SparkSession.builder.remote(url).create()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                rows = [tuple(r) for r in session.sql(SERVE_FUNNEL).collect()]
            except Exception as exc:
                with lock:
                    errors.append(str(exc).splitlines()[0][:200])
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                wrong[0] += rows != expected
        session.stop()  # releases its server session now (not in retries against a stopped endpoint at exit)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"clients": clients, "seconds": round(elapsed, 1), "queries": len(latencies),
            "queries_per_s": round(len(latencies) / elapsed, 2), "errors": len(errors), "first_errors": errors[:3],
            "answers_differing": wrong[0], **_percentiles(latencies)}  # fmt: skip


def _beeline_latency(settings: Any, endpoint: Any, rounds: int) -> dict[str, Any]:
    """The funnel ``rounds`` times over one JDBC connection (beeline); beeline's own per-query times."""
    import re
    import subprocess

    from lisearch.spark.shell import beeline_command

    cmd = beeline_command(settings, endpoint, ["--outputformat=csv2", "-e", ";\n".join([SERVE_FUNNEL] * rounds)])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    times = [float(t) for t in re.findall(r"rows? selected \(([0-9.]+) seconds\)", out.stdout + out.stderr)]
    return _percentiles(times[1:] or times)  # the first query of a connection warms its session


def bench_serve(full: bool = False, clients: int = 16, seconds: float = 60.0) -> dict[str, Any]:
    """`lisearch serve`: funnel latency through Spark Connect and Thrift (p50, p95), ``clients`` concurrent Connect
    clients for ``seconds``, `lisearch sql` end to end with and without the endpoint, and `lisearch report` with
    the models and their saved metrics present. Uses the home of `make run` (its funnel and models)."""
    from pyspark.sql import SparkSession

    from lisearch.serve import running_endpoint, start, stop

    settings = load_settings()
    if not (settings.paths.warehouse_dir / "funnel" / "_delta_log").is_dir():
        raise LisearchError(f"No funnel table in {settings.paths.warehouse_dir}.")
    endpoint = running_endpoint(settings)
    ours = endpoint is None
    out: dict[str, Any] = {}
    if endpoint is None:
        out["lisearch_sql_in_process_s"] = _cli_seconds("sql", SERVE_FUNNEL)
        started = time.perf_counter()
        endpoint = start(settings, None, [], say=lambda _: None)
        out["endpoint_start_s"] = round(time.perf_counter() - started, 1)
    try:
        session = SparkSession.builder.remote(endpoint.connect_url).create()
        expected = [tuple(r) for r in session.sql(SERVE_FUNNEL).collect()]
        latencies = []
        for _ in range(5 if full else 3):
            session.sql(SERVE_FUNNEL).collect()  # warm
        for _ in range(100 if full else 40):
            started = time.perf_counter()
            session.sql(SERVE_FUNNEL).collect()
            latencies.append(time.perf_counter() - started)
        session.stop()
        out["connect_latency"] = {**_percentiles(latencies), "goal_p50_s": 1.0}
        out["thrift_latency"] = _beeline_latency(settings, endpoint, 40 if full else 20)
        out["lisearch_sql_via_endpoint_s"] = _cli_seconds("sql", SERVE_FUNNEL)
        out["concurrent"] = _connect_clients(endpoint.connect_url, clients, seconds, expected)
    finally:
        if ours:
            stop(settings)
    out["report_first_s"] = _cli_seconds("report")
    out["report_s"] = _cli_seconds("report")
    out["report_goal_s"] = 10.0
    return out


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "label": bench_label,
    "screen": bench_screen,
    "models": bench_models,
    "measured": bench_measured,
    "narrowing": bench_narrowing,
    "quinary": bench_quinary,
    "materials": bench_materials,
    "mobility": bench_mobility,
    "serve": bench_serve,
}


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmarks (all by default) and print one JSON report; exit code 0 or the error's."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)")
    parser.add_argument("--full", action="store_true", help="full-size runs (the whole archive / space)")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": {"cores": _cores(), "python": sys.version.split()[0]}}
    for name in args.names or list(BENCHMARKS):
        started = time.perf_counter()
        try:
            report[name] = BENCHMARKS[name](full=args.full)
        except LisearchError as exc:
            # e.g. no trained model yet: the screen and model benchmarks use the artifacts of `make run`
            print(f"tools.bench {name}: {exc} (`make run` trains the models the benchmarks use.)", file=sys.stderr)
            return exc.exit_code
        report[name]["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
