"""The materials job on Spark equals the in-process pipeline on three compositions, and a second run of the same run
id resumes (nothing recomputed) while --restart starts over."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lisearch.materials import phases as phase_store
from lisearch.materials.pipeline import predict_materials
from lisearch.schema import MATERIALS_COLUMNS
from tests.conftest import settings_for

pytestmark = pytest.mark.spark

FORMULAS = ["LiCl", "LiBr", "LiPu3"]
TINY = ("materials.candidates=2", "materials.steps=4", "materials.fmax=0.5", "mobility.bvse_resolution=0.3")
#: Columns compared within a tolerance: energies (float32 inside the potential) and the BVSE barriers (bisection
#: to 0.01 eV on a grid of the relaxed structure)
CLOSE = {"energy_per_atom": 1e-5, "volume_per_atom": 1e-5, "e_above_hull": 1e-5, "bvse_e_1d": 0.02, "bvse_e_2d": 0.02,
         "bvse_e_3d": 0.02, "sml_p_superionic": 1e-6, "sml_lasd": 1e-6, "sml_llsd": 1e-6, "sml_sbi": 1e-6}  # fmt: skip


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(MATERIALS_COLUMNS)].drop(columns="cif").sort_values(["formula", "candidate"])
    return out.reset_index(drop=True).astype(object).where(out.reset_index(drop=True).notna(), None)


def test_materials_job_equals_the_in_process_pipeline_and_resumes(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.materials import materials_frame, run_materials

    settings = settings_for(tmp_path / "spark", "run.id=m1", *TINY)
    summary = run_materials(settings, 0, FORMULAS, spark=spark)
    assert summary["formulas"] == 3 and summary["relaxed_now"] == 4 and summary["phases_computed"] > 4
    on_spark = materials_frame(spark, settings, "m1")
    # in process, on the phases the job computed (the same phase_row on both sides; computed once to keep this short)
    local = predict_materials(FORMULAS, settings.paths.warehouse_dir, settings.materials, mobility=settings.mobility)
    a, b = _comparable(on_spark), _comparable(local)
    assert a.drop(columns=list(CLOSE)).equals(b.drop(columns=list(CLOSE)))
    for column, tolerance in CLOSE.items():
        np.testing.assert_allclose(a[column].astype(float), b[column].astype(float), rtol=0, atol=tolerance)
    assert a["bvse_e_1d"].notna().sum() == 4 and a["sml_p_superionic"].notna().sum() == 4
    assert on_spark["cif"].notna().sum() == 4 and on_spark["shortlist_rank"].isna().all()
    assert len(phase_store.read_cached(settings.paths.warehouse_dir, relaxed=False)) == summary["phases_computed"]

    again = run_materials(settings, 0, FORMULAS, spark=spark)  # resumes: every row and phase is there
    assert again["relaxed_now"] == 0 and again["phases_computed"] == 0 and again["skipped_as_done"] == 5
    counted = ("formulas", "structures", "converged", "failed", "near_hull")  # the resumed run counts the same rows
    assert {k: again[k] for k in counted} == {k: summary[k] for k in counted}
    assert len(materials_frame(spark, settings, "m1")) == 5
    fresh = run_materials(settings, 0, FORMULAS[:1], restart=True, spark=spark)
    assert fresh["relaxed_now"] == 2 and fresh["phases_computed"] == 0 and fresh["formulas"] == 1
