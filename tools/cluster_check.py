"""The cluster path, checked end to end (``make cluster-check``): a standalone master with two workers on
127.0.0.1, ``spark-submit jobs/screen.py`` and ``jobs/narrow.py`` with the ``standalone`` profile, funnel counts
compared with the same plan run in one local process; then the same screen again while one worker is killed
mid-stage, compared again, and the `candidates` rows checked for duplicates.

    python -m tools.cluster_check [--elements all] [--sizes 2,3] [--kill-after-partitions 2]
        [--output report.json]

``--elements z36 --sizes 4`` runs the Z <= 36 quinary job (197 G compositions) instead of the paper's space. A
worker-kill run that fails as a whole is resumed (``--resume``) on the surviving worker.

Writes into a temporary LISEARCH_HOME (models are read from the checkout's artifacts folder); prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lisearch.config import SOURCE_ROOT, load_settings
from lisearch.jars import find_jars
from lisearch.run_ids import run_predicate
from lisearch.screening.files import Staging
from lisearch.screening.plan import plan_from_settings, screen_in_process
from lisearch.spark.standalone import StandaloneCluster, spark_home


def _submit(cluster: StandaloneCluster, home: Path, job: str, *args: str) -> tuple[int, float, str]:
    base = load_settings()
    env = dict(os.environ, LISEARCH_HOME=str(home), PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env["PYTHONPATH"] = str(SOURCE_ROOT)
    jars = ",".join(str(p) for p in find_jars(base.paths.jars_dir))
    cmd = [
        str(spark_home() / "bin" / "spark-submit"), "--master", cluster.master_url, "--jars", jars,
        "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false",
        "--conf", "spark.task.maxFailures=4",
        str(SOURCE_ROOT / "jobs" / f"{job}.py"), "--profile", "standalone",
        "--set", f"paths.artifacts={base.paths.artifacts_dir}", "--set", f"spark.master={cluster.master_url}", *args,
    ]  # fmt: skip
    t0 = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    return out.returncode, round(time.time() - t0, 1), out.stderr[-4000:]


def _summary(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _candidate_rows(home: Path, run_id: str) -> dict[str, int]:
    from lisearch.spark.sql import run_sql

    settings = load_settings("local", [f"paths.home={home}", f"paths.jars={load_settings().paths.jars_dir}"])
    present = set(run_sql(settings, "SELECT * FROM candidates LIMIT 0").columns)  # z4, pct_4 after quinary runs
    key = ", ".join(f"coalesce({c}, 0)" for c in ("z1", "z2", "z3", "z4", "pct_li", "pct_1", "pct_2", "pct_3", "pct_4")
                    if c in present)  # fmt: skip
    frame = run_sql(
        settings,
        f"SELECT count(*) AS n, count(DISTINCT {key}) AS distinct_n FROM candidates WHERE {run_predicate(run_id)}",
    )
    return {"rows": int(frame["n"][0]), "distinct": int(frame["distinct_n"][0])}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--elements", default="all", help="screen.elements (default: the whole default space; z36: Z <= 36)"
    )
    parser.add_argument("--sizes", default="2,3", help="screen.sizes (4: quinaries)")
    parser.add_argument(
        "--kill-after-partitions",
        type=int,
        default=2,
        help="kill worker 1 once this many partitions of screen 2 are done (of 4 on two 1-core workers)",
    )
    parser.add_argument("--output", type=Path)
    return parser.parse_args(argv)


def _local_funnel(elements: str, sizes: str) -> tuple[dict[str, int | None], float]:
    """The funnel of one local process (the kernel in this process, no Spark) and its seconds."""
    overrides = [f"screen.elements={elements}", f"screen.sizes={sizes}", "run.id=local"]
    local = plan_from_settings(load_settings(None, overrides))
    t0 = time.time()
    funnel, _, _ = screen_in_process(local)
    want = {s: (None if pd.isna(c) else int(c)) for s, c in zip(funnel["stage"], funnel["count"], strict=True)}
    return want, round(time.time() - t0, 1)


def _two_workers(c: StandaloneCluster, home: Path, tmp: Path, screen_args: list[str], want: dict) -> dict[str, Any]:
    """Step 1: the screen and the narrowing submitted to the two-worker cluster."""
    summary_path = tmp / "standalone.json"
    rc, secs, err = _submit(
        c, home, "screen", *screen_args, "--run-id", "standalone", "--summary-json", str(summary_path)
    )
    if rc != 0:
        raise SystemExit(f"standalone screen failed ({rc}):\n{err}")
    got = _summary(summary_path)
    rc_n, secs_n, err_n = _submit(c, home, "narrow", "--run-id", "standalone")
    out = {
        "screen_seconds": secs,
        "screen_job_seconds": got["wall_seconds"],
        "funnel": got["funnel"],
        "funnel_equals_local": got["funnel"] == want,
        "narrow_exit_code": rc_n,
        "narrow_seconds": secs_n,
        "candidates": _candidate_rows(home, "standalone"),
    }
    if rc_n != 0:
        out["narrow_error"] = err_n
    return out


def _killer(c: StandaloneCluster, staging: Path, after: int, killed_at: dict[str, Any]) -> threading.Thread:
    """A thread that kills worker 1 once ``after`` partitions have finished (at most 600 s)."""

    def kill_when_running() -> None:
        t0 = time.time()
        while time.time() - t0 < 600:
            current = Staging(str(staging)).current()
            done = len(current.done()) if current else 0
            if done >= after:
                killed_at.update(partitions_done=done, seconds=round(time.time() - t0, 1))
                c.kill_worker(1)
                return
            time.sleep(0.2)

    return threading.Thread(target=kill_when_running, daemon=True)


def _worker_kill(
    c: StandaloneCluster, home: Path, tmp: Path, screen_args: list[str], want: dict, after: int
) -> dict[str, Any]:
    """Step 2: the same screen while worker 1 is killed mid-stage; a clean failure is re-run on the survivor."""
    kill_path = tmp / "kill.json"
    killed_at: dict[str, Any] = {}
    killer = _killer(c, home / "tmp" / "screen-worker-kill", after, killed_at)
    killer.start()
    args = ("screen", *screen_args, "--run-id", "worker-kill", "--summary-json", str(kill_path))
    rc_k, secs_k, err_k = _submit(c, home, *args)
    killer.join()
    entry: dict[str, Any] = {"killed_worker": killed_at or "never (the stage ended first)", "exit_code": rc_k,
                             "seconds": secs_k}  # fmt: skip
    if rc_k == 0:
        killed = _summary(kill_path)
        entry.update(funnel_equals_local=killed["funnel"] == want, candidates=_candidate_rows(home, "worker-kill"))
        return entry
    entry["error_tail"] = err_k[-1500:]
    rc_r, secs_r, err_r = _submit(c, home, *args, "--resume")  # the partitions finished before the kill stay
    again = _summary(kill_path) if rc_r == 0 else {"rerun_error_tail": err_r[-1500:]}
    entry.update(
        rerun_exit_code=rc_r, rerun_seconds=secs_r, rerun_resumed_partitions=again.get("resumed_partitions"),
        funnel_equals_local=again.get("funnel") == want,
        candidates=_candidate_rows(home, "worker-kill"),
    )  # fmt: skip
    return entry


def main(argv: list[str] | None = None) -> int:
    """`make cluster-check`: the screen and narrowing on a two-worker standalone cluster vs one local process."""
    args = _parse(argv)
    if args.elements == "z36":
        from lisearch.chemistry.elements import symbols

        args.elements = ",".join(e for e in symbols()[:36] if e != "Li")
    screen_args = ["--elements", args.elements, "--sizes", args.sizes]
    want, seconds = _local_funnel(args.elements, args.sizes)
    report: dict[str, Any] = {"local_one_process": {"funnel": want, "seconds": seconds}}
    with tempfile.TemporaryDirectory(prefix="lisearch-cluster-") as tmp:
        home = Path(tmp) / "home"
        with StandaloneCluster(workers=2, cores_per_worker=1, memory_per_worker="1500m", work_dir=Path(tmp) / "c") as c:
            report["standalone_two_workers"] = _two_workers(c, home, Path(tmp), screen_args, want)
            report["worker_kill"] = _worker_kill(c, home, Path(tmp), screen_args, want, args.kill_after_partitions)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    ok = report["standalone_two_workers"]["funnel_equals_local"] and report["worker_kill"]["funnel_equals_local"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
