"""One job shape: every job's `transform` takes and returns DataFrames (no session created, no I/O besides the
screen's per-partition counts), and equals its pandas kernel on a tiny input, schema first
(``pyspark.testing.assertSchemaEqual``, then ``assertDataFrameEqual``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql.types import StructType
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from tests.conftest import repo_jars_dir, save_small_esml, small_screen_settings

pytestmark = pytest.mark.spark


def _frame(spark, rows: pd.DataFrame, ddl: str):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(rows, StructType.fromDDL(ddl))


def test_narrow_transform_equals_the_pandas_kernel(spark):  # type: ignore[no-untyped-def]
    from lisearch.config import NarrowSettings
    from lisearch.downstream.narrowing import passes_all, stability_flags
    from lisearch.schema import STABLE_OXIDE_CANDIDATE_COLUMNS as CANDIDATE_COLUMNS
    from lisearch.spark.narrow import OUTPUT_DDL, transform

    cand = pd.DataFrame(
        {"element_1": ["Mg", "Na", "C", "P", "Ge", "Mg"], "element_2": ["O", "O", "O", "O", "O", "Al"],
         "element_3": [None, None, "Br", None, "S", "Si"], "element_4": [None, None, None, None, None, "O"],
         "pct_li": [40, 50, 10, 20, 30, 20], "pct_1": [20, 20, 30, 20, 10, 10], "pct_2": [40, 30, 40, 60, 40, 8],
         "pct_3": [None, None, 20, None, 20, 10], "pct_4": [None, None, None, None, None, 52],
         "score": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05], "cost_per_kg": [10.0, 5.0, 3.0, 4.0, 900.0, 2.0],
         "mean_atomic_mass": [15.0, 16.0, 20.0, 18.0, 25.0, 17.0], "max_z": [12, 11, 35, 15, 32, 14]}
    )  # fmt: skip
    ddl = ("element_1 string, element_2 string, element_3 string, element_4 string, pct_li smallint, "
           "pct_1 smallint, pct_2 smallint, pct_3 smallint, pct_4 smallint, score float, cost_per_kg float, "
           "mean_atomic_mass float, max_z smallint")  # fmt: skip
    old_ddl = ddl.replace("element_4 string, ", "").replace("pct_4 smallint, ", "")  # a table from before quinaries
    # With the proxies: Ge-O-S has two anions, C-Br no common states; the quinary Li10Mg5Al4Si5O26 passes them but
    # has 50 atoms (the second case's limit is 10).
    cases = [(NarrowSettings(), ddl, cand, 3),
             (NarrowSettings(stability=False, max_formula_atoms=10), ddl, cand, 5),
             (NarrowSettings(), old_ddl, cand[:5], 2)]  # fmt: skip
    for cfg, schema, rows, kept_rows in cases:
        actual = transform(_frame(spark, rows.drop(columns=[c for c in rows if c not in schema]), schema), cfg, "t")
        assertSchemaEqual(actual.schema, StructType.fromDDL(OUTPUT_DDL + ", run_id string"))
        flagged = stability_flags(rows[list(CANDIDATE_COLUMNS)], cfg.anion, cfg.max_z, cfg.stability,
                                  cfg.max_formula_atoms)  # fmt: skip
        kept = flagged[passes_all(flagged, cfg.stability, cfg.max_formula_atoms)].drop(columns="formula_atoms")
        expected = _frame(spark, kept.assign(run_id="t"), OUTPUT_DDL + ", run_id string")
        assertDataFrameEqual(actual, expected)
        assert actual.count() == kept_rows


def test_label_transform_equals_the_pandas_kernel(spark, cif_folder: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.label import transform
    from lisearch.structure.labelling import OUTPUT_DDL, label_cif_files

    files = pd.DataFrame([(p.stem, str(p)) for p in sorted(cif_folder.glob("*.cif"))], columns=["material_id", "path"])
    actual = transform(spark.createDataFrame(files, "material_id string, path string")).drop("labelled_at")
    assertSchemaEqual(actual.schema, StructType.fromDDL(OUTPUT_DDL))
    assertDataFrameEqual(actual, _frame(spark, label_cif_files(files), OUTPUT_DDL))


def test_screen_transform_equals_the_in_process_kernel(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The Spark kernel stage writes, partition by partition, the same candidate rows and per-set counts as the
    kernel run in this process (ternaries to quinaries)."""
    from lisearch.screening.files import Staging, candidate_table
    from lisearch.screening.plan import plan_from_settings, screen_in_process
    from lisearch.spark.screen import default_partitions, output_spec, partition_ids, transform

    save_small_esml(tmp_path / "artifacts")
    plan = plan_from_settings(
        small_screen_settings(
            tmp_path / "home", tmp_path / "artifacts", "screen.elements=N,O,Na,P,S", "screen.sizes=2,3,4",
            "screen.plausible_only=false",
        )
    )  # fmt: skip
    manifest = Staging(str(tmp_path / "staging")).start("test", default_partitions(spark, plan))
    staging = Staging(str(tmp_path / "staging"), manifest["token"])
    n = len(manifest["partitions"])
    output = output_spec(plan, staging, str(tmp_path / "table"), manifest, list(range(n)))
    reported = transform(partition_ids(spark, n), plan, output).toPandas()
    assert plan.inputs.columns == 4  # quinaries: a fourth partner column
    _, stats, survivors = screen_in_process(plan)
    assert sorted(reported["partition"]) == list(range(n)) and reported["rows"].sum() == len(survivors)
    files = sorted((tmp_path / "table" / f"run_id={plan.run_id}").glob("part-*.parquet"))
    assert {f.name for f in files} == {add["path"].split("/")[1] for add in staging.done().values() if add}
    got = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    want = candidate_table(survivors, 4).to_pandas()
    elements = [f"element_{j}" for j in (1, 2, 3, 4)]
    want[elements] = want[elements].astype(object).fillna("")  # dictionary-encoded in Arrow
    got[elements] = got[elements].fillna("")
    keys = list(want.columns)
    pd.testing.assert_frame_equal(
        got[keys].sort_values(keys).reset_index(drop=True), want.sort_values(keys).reset_index(drop=True),
        check_dtype=False, check_categorical=False,
    )  # fmt: skip
    assert (survivors["z4"] > 0).any()
    counts = staging.read_stats(n)
    keys = ["z1", "z2", "z3", "z4"]
    pd.testing.assert_frame_equal(
        counts.sort_values(keys).reset_index(drop=True), stats.sort_values(keys).reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip


def test_every_job_records_its_resolved_settings_the_same_way(spark, tmp_path: Path, cif_folder: Path):  # type: ignore[no-untyped-def]
    import json

    import lisearch

    home = tmp_path / "home"
    save_small_esml(home / "artifacts")
    s = lisearch.settings(home=home, paths__jars=str(repo_jars_dir()), label__source=str(cif_folder))
    lisearch.label(settings=s, spark=spark)
    lisearch.screen(["N", "O", "Na", "P"], step=10, run_id="rec", settings=s, spark=spark)
    lisearch.narrow("rec", settings=s, spark=spark)
    records = [json.loads(p.read_text()) for p in sorted((home / "runs").glob("*.json"))]
    assert [r["job"] for r in records] == ["label_structures", "screen", "narrow"]
    for record, section in zip(records, ("label", "screen", "narrow"), strict=True):
        # the resolved settings in full: the profile's, with the keywords of this call in the job's own section and
        # the run id in `run`
        got = record["settings"]
        assert got == s.to_dict() | {section: got[section], "run": got["run"]}
        assert got["run"]["id"] == ("" if section == "label" else "rec")
        assert set(record) == {"job", "run_id", "recorded_at", "summary", "settings"}
    assert records[1]["settings"]["screen"]["elements"] == "N,O,Na,P" and records[2]["run_id"] == "rec"
