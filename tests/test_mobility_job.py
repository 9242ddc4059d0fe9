"""The mobility job on Spark equals the in-process simulation of the same items, keeps failures as rows, resumes,
and ranks every formula of the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from lisearch.errors import InputError
from lisearch.mobility.ranking import simulate_item
from lisearch.schema import MATERIALS_TABLE_COLUMNS
from tests.conftest import settings_for

pytestmark = pytest.mark.spark

TINY = ("run.id=md1", "mobility.md_ps=0.04", "mobility.sample_fs=4", "mobility.equilibration_ps=0",
        "mobility.min_cell_length=0", "mobility.temperatures=600, 900", "mobility.top=2")  # fmt: skip


def _materials() -> list[dict]:  # type: ignore[type-arg]
    licl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.13), ["Li", "Cl"], [[0, 0, 0], [0.5] * 3]).to(fmt="cif")
    squeezed = Structure(Lattice.cubic(5.0), ["Li", "Br"], [[0, 0, 0], [0.05, 0, 0]]).to(fmt="cif")
    rows = [
        {"shortlist_rank": 1, "formula": "LiCl", "candidate": 1, "e_above_hull": 0.02, "sml_p_superionic": 0.4,
         "bvse_e_3d": 0.5, "cif": licl},
        {"shortlist_rank": 1, "formula": "LiCl", "candidate": 2, "e_above_hull": 0.3, "cif": licl},  # not the best
        {"shortlist_rank": 2, "formula": "LiBr", "candidate": 1, "e_above_hull": 0.0, "cif": squeezed},  # fails
        {"shortlist_rank": 3, "formula": "LiI", "candidate": 1, "e_above_hull": 0.05, "sml_p_superionic": 0.9,
         "cif": licl},  # beyond --top 2: ranked, not simulated
    ]  # fmt: skip
    return [{**dict.fromkeys(MATERIALS_TABLE_COLUMNS), "status": "ok", **r} for r in rows]


def test_mobility_job_equals_in_process_simulation_resumes_and_ranks(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.mobility import RANKING, mobility_frame, run_mobility
    from lisearch.spark.tasks import append_run_rows

    settings = settings_for(tmp_path / "m", *TINY)
    with pytest.raises(InputError, match="Run `lisearch materials` first"):
        run_mobility(settings, 2, spark=spark)
    materials = settings.paths.warehouse_dir / "materials"
    append_run_rows(spark, materials, _materials(), MATERIALS_TABLE_COLUMNS, "md1")
    summary = run_mobility(settings, 2, spark=spark)
    assert summary["simulated_now"] == 4 and summary["ok"] == 2 and summary["failed"] == 2 and summary["ranked"] == 3
    md = mobility_frame(spark, settings, "md1")
    assert md[["formula", "temperature_k"]].values.tolist() == [["LiCl", 600.0], ["LiCl", 900.0], ["LiBr", 600.0],
                                                                ["LiBr", 900.0]]  # fmt: skip
    assert md.loc[md["formula"] == "LiBr", "reason"].str.contains("too close").all()
    for row in md.itertuples():  # the same function in this process, on the same item
        item = {
            "formula": row.formula,
            "candidate": row.candidate,
            "shortlist_rank": row.shortlist_rank,
            "temperature_k": row.temperature_k,
            "cif": _materials()[0 if row.formula == "LiCl" else 2]["cif"],
        }
        local = pd.Series(simulate_item(item, settings.mobility, "cpu"))  # fmt: skip
        for column in ("status", "reason", "atoms", "li_atoms"):
            assert getattr(row, column) == local[column] or (pd.isna(getattr(row, column)) and pd.isna(local[column]))
        for column in ("li_diffusivity", "framework_msd", "sigma_s_cm", "mean_temperature_k"):
            np.testing.assert_allclose(float(getattr(row, column)), float(local[column]), rtol=1e-4, atol=1e-12)

    ranking = mobility_frame(spark, settings, "md1", RANKING)
    assert ranking["formula"].tolist()[0] == "LiCl" and set(ranking["formula"]) == {"LiCl", "LiBr", "LiI"}
    by = ranking.set_index("formula")
    assert by.at["LiCl", "md_status"] == "ok" and np.isfinite(by.at["LiCl", "activation_energy_ev"])
    assert by.at["LiBr", "md_status"] == "failed" and pd.isna(by.at["LiI", "md_status"])
    assert by.at["LiCl", "parts"] == 4 and by.at["LiI", "parts"] == 2  # e_above_hull, sML (no BVSE, no MD)

    again = run_mobility(settings, 2, spark=spark)  # resumes: every simulation is there
    assert again["simulated_now"] == 0 and again["skipped_as_done"] == 4 and again["simulations"] == 4
    fresh = run_mobility(settings, 1, restart=True, spark=spark)
    assert fresh["simulated_now"] == 2 and fresh["simulations"] == 2
