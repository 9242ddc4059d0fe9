"""The labelling job on Spark against the same kernel run in pandas; incremental and crash-safe merges."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lisearch.errors import InputError
from lisearch.structure.labelling import label_cifs
from tests.conftest import settings_for


def _table(spark, home: Path) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return spark.read.format("delta").load(str(home / "warehouse" / "structures")).toPandas()


@pytest.mark.spark
def test_job_matches_pandas_kernel_and_is_incremental(spark, home: Path, cif_folder: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.label import run_label_job

    settings = settings_for(home, f"label.source={cif_folder}", "label.commit_every=4")
    summary = run_label_job(settings, spark=spark)
    assert summary["labelled_this_run"] == 6
    assert summary["table"]["by_status"] == {"error": 1, "ok": 5}

    got = _table(spark, home).sort_values("material_id").reset_index(drop=True)
    texts = {p.stem: p.read_text() for p in cif_folder.glob("*.cif")}
    want = label_cifs(pd.DataFrame({"material_id": list(texts), "cif": list(texts.values())}))
    want = want.sort_values("material_id").reset_index(drop=True)
    cols = ["material_id", "formula", "nsites", "llb", "sbi", "afc", "lasd", "llsd", "p_superionic", "label", "status"]
    pd.testing.assert_frame_equal(got[cols], want[cols], check_dtype=False)

    again = run_label_job(settings, spark=spark)
    assert again["labelled_this_run"] == 0 and again["skipped_already_done"] == 6

    forced = run_label_job(settings_for(home, f"label.source={cif_folder}", "label.force=true"), spark=spark)
    assert forced["labelled_this_run"] == 6
    table = _table(spark, home)
    assert len(table) == 6 and table["material_id"].is_unique
    assert spark.sql("SELECT count(*) FROM structures").collect()[0][0] == 6  # registered by name


@pytest.mark.spark
def test_crash_mid_run_keeps_committed_chunks(spark, home: Path, cif_folder: Path, monkeypatch):  # type: ignore[no-untyped-def]
    import lisearch.spark.label as job

    settings = settings_for(home, f"label.source={cif_folder}", "label.commit_every=2")
    real_merge = job._merge
    calls = {"n": 0}

    def failing_merge(spark_, path, rows):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated executor loss")
        real_merge(spark_, path, rows)

    monkeypatch.setattr(job, "_merge", failing_merge)
    with pytest.raises(RuntimeError, match="simulated"):
        job.run_label_job(settings, spark=spark)
    assert len(_table(spark, home)) == 2  # the first commit survived, the failed one left nothing

    monkeypatch.setattr(job, "_merge", real_merge)
    summary = job.run_label_job(settings, spark=spark)
    assert summary["skipped_already_done"] == 2 and summary["labelled_this_run"] == 4
    table = _table(spark, home)
    assert len(table) == 6 and table["material_id"].is_unique


def test_unreadable_source_is_refused_before_spark(home: Path, tmp_path: Path):
    from lisearch.spark.label import run_label_job

    not_archive = tmp_path / "structures.zip"
    not_archive.write_text("x")
    with pytest.raises(InputError, match="neither a folder nor a tar archive"):
        run_label_job(settings_for(home, f"label.source={not_archive}"))
    fake_tar = tmp_path / "structures.tar.gz"
    fake_tar.write_text("x")
    with pytest.raises(InputError, match="not a readable tar archive"):
        run_label_job(settings_for(home, f"label.source={fake_tar}"))


@pytest.mark.spark
def test_label_job_leaves_the_session_s_arrow_batch_size_as_it_was(spark, home: Path, cif_folder: Path):  # type: ignore[no-untyped-def]
    """`make run` shares one session: the labelling job's 64-row Arrow batches must not slow the jobs after it."""
    from lisearch.spark.label import ARROW_BATCH, run_label_job

    spark.conf.set(ARROW_BATCH, "5000")
    run_label_job(settings_for(home, f"label.source={cif_folder}", "label.batch_size=2"), spark=spark)
    assert spark.conf.get(ARROW_BATCH) == "5000"
    spark.conf.unset(ARROW_BATCH)


@pytest.mark.spark
def test_tasks_carry_file_paths_and_archives_are_unpacked_once(spark, home: Path, cif_folder: Path, monkeypatch):  # type: ignore[no-untyped-def]
    """Workers read the CIF files themselves: the rows handed to the transform hold paths, never CIF texts (which
    made Spark warn about multi-megabyte tasks); an archive is unpacked once under the home and reused."""
    import tarfile

    import lisearch.spark.label as job

    home.mkdir(parents=True, exist_ok=True)
    archive = home / "cifs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(cif_folder.glob("*.cif")):
            tar.add(path, arcname=f"set/{path.name}")
    seen: list[list[str]] = []
    real = job.transform

    def spy(files, partial_occupancy="sample", root=None):  # type: ignore[no-untyped-def]
        seen.append(files.columns)
        assert root is not None and Path(root).parent == (home / "tmp" / "cif-cache").resolve()  # workers stay inside
        return real(files, partial_occupancy, root)

    monkeypatch.setattr(job, "transform", spy)
    summary = job.run_label_job(settings_for(home, f"label.source={archive}"), spark=spark)
    assert summary["labelled_this_run"] == 6 and seen and all(c == ["material_id", "path", "refused"] for c in seen)
    unpacked = list((home / "tmp" / "cif-cache").iterdir())
    assert len(unpacked) == 1 and len(list(unpacked[0].rglob("*.cif"))) == 6
    stamp = unpacked[0].stat().st_mtime_ns
    again = job.run_label_job(settings_for(home, f"label.source={archive}", "label.force=true"), spark=spark)
    assert again["labelled_this_run"] == 6 and unpacked[0].stat().st_mtime_ns == stamp
    folder_rows = _table(spark, home).sort_values("material_id")
    assert folder_rows["status"].value_counts().to_dict() == {"ok": 5, "error": 1}
