"""Benchmarks (``make bench``): prints one JSON report. Targets are ratios measured in the same run.

    python -m lisearch.bench                 # all benchmarks
    python -m lisearch.bench label           # only some
    python -m lisearch.bench label --full    # include the full 21,755-structure labelling job

Not run by the tests: speed is checked here, on a quiet machine, not in timed tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd

from lisearch.config import load_settings
from lisearch.datasets import MP2025_ARCHIVE, iter_cifs
from lisearch.space import default_elements
from lisearch.structure.labelling import label_cifs


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def bench_label(full: bool = False, sample: int = 1500) -> dict[str, Any]:
    """Structure labelling: the kernel in one process vs the Spark job (local mode, all cores)."""
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


def bench_screen(full: bool = True) -> dict[str, Any]:
    """The composition screen: the full space on Spark (cold, then warm in the same session), the same kernel in
    one process on a subset vs Spark on that subset, SMACT's neutrality check, and scaling with the element set."""
    from lisearch.plan import plan_screen, screen_in_process
    from lisearch.spark.screen import run_screen
    from lisearch.spark.session import get_session

    base = load_settings()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lisearch-bench-") as home:

        def settings(*extra: str):
            paths = [f"paths.home={home}", f"paths.jars={base.paths.jars_dir}"]
            return load_settings(None, [*paths, f"paths.artifacts={base.paths.artifacts_dir}", *extra])

        spark = get_session(settings(), register=False)
        # Same subset, Spark vs one process: the first 40 partner elements.
        subset = ",".join(default_elements()[:40])
        sub_settings = settings(f"screen.elements={subset}", "screen.run_id=subset")
        plan = plan_screen(sub_settings)
        t0 = time.perf_counter()
        screen_in_process(plan)
        numpy_s = time.perf_counter() - t0
        run_screen(sub_settings, spark=spark)  # warm-up: JVM, Delta, Python workers
        spark_sub = run_screen(sub_settings, spark=spark)
        out["subset"] = {
            "elements": 40,
            "compositions": plan.space.count(),
            "numpy_one_process_seconds": round(numpy_s, 2),
            "numpy_one_process_rate": plan.space.count() / numpy_s,
            "spark_seconds": spark_sub["wall_seconds"],
            "spark_rate": spark_sub["compositions_per_second"],
            "spark_vs_numpy_x_cores": round(
                spark_sub["compositions_per_second"] / (plan.space.count() / numpy_s * _cores()), 3
            ),
        }
        scaling = []
        for m in (20, 40, 60, 93):
            s = run_screen(
                settings(f"screen.elements={','.join(default_elements()[:m])}", f"screen.run_id=scale{m}"), spark=spark
            )
            scaling.append({"elements": m, "compositions": s["compositions"], "seconds": s["wall_seconds"]})
        out["scaling"] = scaling
        rates = [r["compositions"] / r["seconds"] for r in scaling]
        out["scaling_rate_min_over_max"] = round(min(rates[1:]) / max(rates[1:]), 3)
        if full:
            cold = run_screen(settings("screen.run_id=full"), spark=spark)
            warm = run_screen(settings("screen.run_id=full"), spark=spark)
            out["full"] = {
                "compositions": warm["compositions"],
                "cold_seconds": cold["wall_seconds"],
                "warm_seconds": warm["wall_seconds"],
                "warm_rate": warm["compositions_per_second"],
                "candidates": warm["funnel"]["survivors"],
                "funnel": warm["funnel"],
                "oxidation_list": warm["oxidation_list"],
            }
        out["smact"] = _bench_smact(plan)
    try:
        import resource

        out["driver_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except ImportError:  # pragma: no cover
        pass
    return out


def _bench_smact(plan: Any, n: int = 3000) -> dict[str, Any]:
    """SMACT's neutrality check per composition on a random sample, against our kernel's rate."""
    import numpy as np

    try:
        from smact.screening import smact_validity
    except ImportError:
        return {"skipped": "smact not installed (pip install -e '.[dev]')"}
    rng = np.random.default_rng(0)
    from lisearch.elements import oxidation_states

    states = oxidation_states(plan.oxidation_list)
    picks = [plan.space.unrank(int(i)) for i in rng.integers(0, plan.space.count(), n)]
    t0 = time.perf_counter()
    for els, units in picks:
        comp = "Li" + str(units[0]) + "".join(f"{e}{u}" for e, u in zip(els, units[1:], strict=True))
        with contextlib.suppress(Exception):  # SMACT raises on some elements; timing only
            smact_validity(comp, use_pauling_test=False, oxidation_states_set="icsd24")
    smact_rate = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    from lisearch.kernels import screen_sets

    sets = plan.space.element_sets(plan.blocks[-1])
    stats, _ = screen_sets(plan.inputs, sets)
    ours = stats["total"].sum() / (time.perf_counter() - t0)
    return {
        "smact_compositions_per_second": round(smact_rate, 1),
        "lisearch_kernel_compositions_per_second": float(ours),
        "ratio": round(ours / smact_rate, 1),
        "states_compared": len(states),
    }


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {"label": bench_label, "screen": bench_screen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)")
    parser.add_argument("--full", action="store_true", help="full-size runs (the whole archive / space)")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": {"cores": _cores(), "python": sys.version.split()[0]}}
    for name in args.names or list(BENCHMARKS):
        started = time.perf_counter()
        report[name] = BENCHMARKS[name](full=args.full)
        report[name]["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
