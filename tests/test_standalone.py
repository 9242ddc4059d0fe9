"""spark-submit against a real standalone master and worker on 127.0.0.1, writing a Delta table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lisearch.jars import find_jars
from lisearch.spark.standalone import StandaloneCluster, spark_home
from lisearch.structure.labelling import label_cifs
from tests.conftest import SHORT_JVM_OPTS, cli_env, repo_jars_dir

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SPARK_DAEMON_JAVA_OPTS", SHORT_JVM_OPTS)  # master and worker JVMs
    c = StandaloneCluster(workers=1, cores_per_worker=1, memory_per_worker="2g", work_dir=tmp_path / "cluster")
    try:
        yield c.start()
    finally:
        c.stop()  # also when the test fails
        assert all(p.poll() is not None for p in c.processes)


def test_spark_submit_label_job_on_standalone(cluster: StandaloneCluster, spark, home: Path, cif_folder: Path):  # type: ignore[no-untyped-def]
    env = cli_env(home)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    jars = ",".join(str(p) for p in find_jars(repo_jars_dir()))
    cmd = [
        str(spark_home() / "bin" / "spark-submit"), "--master", cluster.master_url, "--jars", jars,
        "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false",
        "--conf", f"spark.executor.extraJavaOptions={SHORT_JVM_OPTS}",
        str(ROOT / "jobs" / "label_structures.py"), "--profile", "standalone", "--source", str(cif_folder),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = spark.read.format("delta").load(str(home / "warehouse" / "structures")).toPandas()
    texts = {p.stem: p.read_text() for p in cif_folder.glob("*.cif")}
    want = label_cifs(pd.DataFrame({"material_id": list(texts), "cif": list(texts.values())}))
    cols = ["material_id", "label", "status", "p_superionic"]
    pd.testing.assert_frame_equal(
        got[cols].sort_values("material_id").reset_index(drop=True),
        want[cols].sort_values("material_id").reset_index(drop=True),
        check_dtype=False,
    )
