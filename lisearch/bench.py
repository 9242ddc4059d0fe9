"""Benchmarks (``make bench``): prints one JSON report. Targets are ratios measured in the same run.

    python -m lisearch.bench                 # all benchmarks
    python -m lisearch.bench label           # only some
    python -m lisearch.bench label --full    # include the full 21,755-structure labelling job

Not run by the tests: speed is checked here, on a quiet machine, not in timed tests.
"""

from __future__ import annotations

import argparse
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


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {"label": bench_label}


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
