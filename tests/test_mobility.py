"""Does Li move: BVSE barriers against bvlain's published LiFePO4 numbers and its own map, the diffusion kernels
against brute force and a random walk of known D, the MD run on a few atoms, the structure columns."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from lisearch.config import load_settings
from lisearch.mobility import bvse, diffusion
from lisearch.schema import MD_COLUMNS, STRUCTURE_MOBILITY_COLUMNS

LIFEPO4 = Path(__file__).parent / "data" / "LiFePO4_bvlain.cif"


def _rocksalt_licl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.13), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_bvse_reproduces_bvlains_published_lifepo4_barriers() -> None:
    # BVlain's documentation: E_1D 0.4395, E_2D 3.3301, E_3D 3.3594 eV (resolution 0.2, r_cut 10, encut 5); the
    # bisection stops at 0.01 eV, the tolerance the method states
    barriers = bvse.bvse_barriers(Structure.from_file(LIFEPO4), resolution=0.2, encut=5.0)
    assert barriers.reason is None and barriers.resolution == 0.2
    assert barriers.e_1d == pytest.approx(0.4395, abs=0.01)
    assert barriers.e_2d == pytest.approx(3.3301, abs=0.01)
    assert barriers.e_3d == pytest.approx(3.3594, abs=0.01)
    # a 1D conductor: the 1D path is far cheaper than crossing between channels
    assert barriers.e_1d < 0.6 < 3.0 < barriers.e_2d <= barriers.e_3d


def test_chunked_energy_map_equals_bvlains_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from bvlain import Lain

    structure, _ = bvse.oxidation_decorated(_rocksalt_licl())
    reference = Lain(verbose=False)
    reference.read_structure(structure, oxi_check=False)
    expected = reference.bvse_distribution(mobile_ion="Li1+", r_cut=10.0, resolution=0.4, k=100)
    monkeypatch.setattr(bvse, "CHUNK_POINTS", 97)  # many chunks, the last one short
    ours = Lain(verbose=False)
    ours.read_structure(structure, oxi_check=False)
    np.testing.assert_allclose(bvse._energy_map(ours, 10.0, 0.4, 100), expected, rtol=1e-12, atol=1e-12)


def test_grid_is_coarsened_for_large_cells_and_reasons_replace_exceptions() -> None:
    assert bvse.grid_resolution((5.0, 5.0, 5.0), 0.2, 10**6) == 0.2
    coarse = bvse.grid_resolution((40.0, 40.0, 40.0), 0.2, 100_000)
    assert coarse > 0.2 and math.prod(int(40 // coarse) for _ in range(3)) <= 100_000
    no_li = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert bvse.bvse_barriers(no_li).reason == "no Li in the structure"
    disordered = Structure(Lattice.cubic(4.2), [{"Li": 0.5, "Na": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert "ordered" in (bvse.bvse_barriers(disordered).reason or "")
    metallic = Structure(Lattice.cubic(3.5), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    result = bvse.bvse_barriers(metallic)
    assert math.isnan(result.e_1d) and "no anion" in (result.reason or "")
    # a composition no assignment makes neutral still gets each element's most frequent ICSD state
    off = Structure(Lattice.cubic(5.13), ["Li", "Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0.5]])
    decorated, reason = bvse.oxidation_decorated(off)
    assert reason is None and {str(s) for s in decorated.species} == {"Li+", "Cl-"}


def test_msd_equals_a_brute_force_loop() -> None:
    rng = np.random.default_rng(1)
    positions = rng.normal(size=(12, 3, 3)).cumsum(axis=0)
    expected = np.zeros((6, 3))
    for lag in range(1, 6):
        for ion in range(3):
            expected[lag, ion] = np.mean(
                [np.sum((positions[t + lag, ion] - positions[t, ion]) ** 2) for t in range(12 - lag)]
            )
    np.testing.assert_allclose(diffusion.msd_per_ion(positions, 5), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="max_lag"):
        diffusion.msd_per_ion(positions, 12)


def test_diffusivity_of_a_random_walk_with_known_d() -> None:
    # steps of variance 2 D dt per direction: D = 1e-5 cm^2/s = 1e-4 A^2/fs; 64 ions, 400 frames 20 fs apart
    d_true, dt = 1e-5, 20.0
    sigma = math.sqrt(2 * d_true / diffusion.A2_PER_FS_IN_CM2_PER_S * dt)
    rng = np.random.default_rng(7)
    positions = rng.normal(scale=sigma, size=(400, 64, 3)).cumsum(axis=0)
    fit = diffusion.diffusivity(positions, dt)
    assert fit.ions == 64 and fit.fit_from_fs == pytest.approx(40 * dt) and fit.fit_to_fs == pytest.approx(200 * dt)
    assert abs(fit.d - d_true) < 3 * fit.d_err and fit.d_err < 0.2 * d_true
    still = diffusion.diffusivity(np.zeros((50, 4, 3)), dt)
    assert still.d == 0.0
    with pytest.raises(ValueError, match="too few"):
        diffusion.diffusivity(positions[:4], dt)


def test_nernst_einstein_and_arrhenius_golden_values() -> None:
    # 1 Li per 100 A^3 (1e22 cm^-3), D 1e-5 cm^2/s, 1000 K: 1e22 * (1.602e-19)^2 * 1e-5 / (1.381e-23 * 1000)
    expected = 1e22 * 1.602176634e-19**2 * 1e-5 / (1.380649e-23 * 1000)
    assert diffusion.nernst_einstein(1e-5, 10, 1000.0, 1000.0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.1859, abs=1e-4)
    t = np.array([500.0, 600.0, 750.0, 1000.0])
    d = 1e-3 * np.exp(-0.3 / (diffusion.K_B_EV * t))
    ea, ea_err, d0 = diffusion.arrhenius(t, d, 0.05 * d)
    assert ea == pytest.approx(0.3, rel=1e-9) and d0 == pytest.approx(1e-3, rel=1e-9) and 0 < ea_err < 0.05
    assert all(math.isnan(v) for v in diffusion.arrhenius(t[:1], d[:1], d[:1]))


def test_supercell_multiples_reach_the_minimum_width() -> None:
    from lisearch.mobility.md import supercell_multiples

    assert supercell_multiples(np.diag([4.0, 5.0, 10.0]), 9.0) == (3, 2, 1)
    hexagonal = Lattice.hexagonal(3.0, 5.0).matrix  # the width across a is a sin(60°) = 2.6 A
    assert supercell_multiples(hexagonal, 9.0) == (4, 4, 2)


def test_md_on_a_few_atoms_gives_a_summary_row_and_failures_are_rows() -> None:
    from lisearch.mobility.md import Simulation, simulate

    assert [f.name for f in dataclasses.fields(Simulation)] == list(MD_COLUMNS)
    settings = dataclasses.replace(load_settings().mobility, md_ps=0.06, equilibration_ps=0.0, sample_fs=4.0,
                                   min_cell_length=0.0)  # fmt: skip
    result = simulate(_rocksalt_licl(), 600.0, settings)
    assert result.status == "ok" and result.reason is None and result.atoms == 8 and result.li_atoms == 4
    assert result.simulated_ps == pytest.approx(0.06)
    assert math.isfinite(result.li_diffusivity) and math.isfinite(result.sigma_s_cm)
    assert 0 < result.framework_msd < settings.melt_msd and 100 < result.mean_temperature_k < 3000
    squeezed = Structure(Lattice.cubic(5.0), ["Li", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    failed = simulate(squeezed, 600.0, settings)
    assert failed.status == "failed" and "too close" in (failed.reason or "")
    no_li = simulate(Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), 600.0, settings)
    assert no_li.status == "failed" and no_li.reason == "no Li in the structure"


def test_structure_descriptors_columns_and_reasons() -> None:
    from lisearch.mobility.structure import structure_descriptors

    settings = dataclasses.replace(load_settings().mobility, bvse_resolution=0.3)
    row = structure_descriptors(_rocksalt_licl(), settings)
    assert list(row) == list(STRUCTURE_MOBILITY_COLUMNS) and row["mobility_reason"] is None
    assert 0 < row["sml_p_superionic"] < 1 and row["sml_llb"] == 12  # twelve Li neighbours in rock salt
    assert 0 < row["bvse_e_1d"] <= row["bvse_e_2d"] <= row["bvse_e_3d"] < settings.bvse_encut
    no_li = structure_descriptors(Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), settings)
    assert math.isnan(no_li["sml_p_superionic"]) and math.isnan(no_li["bvse_e_1d"])
    assert "sML" in no_li["mobility_reason"] and "BVSE: no Li" in no_li["mobility_reason"]


def test_validation_pairs_rankings_and_known_structures() -> None:
    import pandas as pd

    from lisearch.mobility import validation

    fast = pd.Series([True, True, False, False])
    assert validation.pair_share(pd.Series([3.0, 2.0, 1.0, 0.0]), fast) == 1.0
    assert validation.pair_share(pd.Series([1.0, 0.0, 1.0, 2.0]), fast) == pytest.approx((0.5 + 0 + 0 + 0) / 4)
    assert validation.pair_share(pd.Series([np.nan, 2.0, 1.0, np.nan]), fast) == 1.0  # only the pair (2, 1) is left
    assert validation.pair_share(pd.Series([np.nan] * 4), fast) is None
    # a barrier: lower is faster, an infinite one (no path) ranks last, NaN (not computed) is left out
    barrier = np.array([0.2, 0.3, np.inf, 1.5, np.nan])
    y, log_sigma = np.array([1, 1, 0, 0, 1]), np.array([-3.0, -2.0, -9.0, -8.0, -1.0])
    metrics = validation.ranking_metrics(-barrier, y, log_sigma)
    assert metrics["n"] == 4 and metrics["positives"] == 2 and metrics["roc_auc"] == 1.0
    assert metrics["spearman"] == pytest.approx(0.8)  # ranks (4, 3, 1, 2) against (3, 4, 1, 2): 1 - 6 * 2 / 60
    known = validation.known_structures()
    assert list(known["formula"]) == [*validation.KNOWN_FAST, *validation.KNOWN_SLOW]
    assert known["fast"].sum() == 5 and known["cif"].str.startswith("#").all()
    # MP's lowest-energy LLZO is the tetragonal phase and its Li3PS4 the Pnma one: OBELiX measured both below 1e-4
    checked = validation.label_check(known, threshold=1e-4)
    assert set(checked.loc[~checked["label_agrees"], "formula"]) == {"Li7La3Zr2O12", "Li3PS4"}
    llzo = checked.set_index("formula").loc["Li7La3Zr2O12"]
    assert llzo["space_group_number"] == 142 and llzo["obelix_ids"] == "wyu" and llzo["obelix_sigma"] == 1.63e-6
    lower = validation.label_check(known, threshold=1e-6)  # 1.63e-6 is fast at this threshold, 8.93e-7 is not
    assert set(lower.loc[~lower["label_agrees"], "formula"]) == {"Li3PS4"}


def test_mobility_settings_refuse_what_cannot_run() -> None:
    from lisearch.errors import ConfigError

    temperatures = load_settings(overrides=["mobility.temperatures=1000, 750,600"]).mobility.temperature_list
    assert temperatures == (1000, 750, 600)
    refused = {
        "mobility.temperatures=hot": "distinct temperatures",
        "mobility.temperatures=1000,1000": "distinct",
        "mobility.md_ps=0.1": "lengthen md_ps",
        "mobility.bvse_resolution=0": "mobility.bvse_resolution = 0.0",
        "mobility.sample_fs=1": "at least mobility.timestep_fs",
    }
    for bad, words in refused.items():
        with pytest.raises(ConfigError, match=words):
            load_settings(overrides=[bad])


def test_shortlist_gets_the_best_structures_mobility_columns() -> None:
    import pandas as pd

    from lisearch.downstream.shortlisting import with_materials

    shortlist = pd.DataFrame({"rank": [1, 2, 3], "formula": ["Li3PO4", "LiCl", "Li2O"]})
    materials = pd.DataFrame({
        "formula": ["Li3PO4", "Li3PO4", "LiCl"], "candidate": [1, 2, 1], "e_above_hull": [0.05, 0.01, np.nan],
        "template_formula": ["Li3AsO4", "Li3VO4", "LiBr"], "template_id": ["mp-1", "mp-2", "mp-3"],
        "space_group": ["Pmn2_1", "Pnma", "Fm-3m"], "sml_p_superionic": [0.9, 0.2, 0.5],
        "bvse_e_1d": [0.3, 0.6, 0.4], "bvse_e_3d": [0.5, np.inf, 0.4],
    })  # fmt: skip
    out = with_materials(shortlist, materials)
    assert out["best_structure"].tolist() == ["Li3VO4 mp-2, Pnma", None, None]  # lowest E_hull; none without a hull
    assert out["sml_p_superionic"].iloc[0] == 0.2 and out["bvse_e_3d"].iloc[0] == np.inf
    assert out[["sml_p_superionic", "bvse_e_1d"]].iloc[1:].isna().all().all()
    older = with_materials(shortlist, materials.drop(columns=["sml_p_superionic", "bvse_e_1d", "bvse_e_3d"]))
    assert older["e_above_hull"].iloc[0] == 0.01 and np.isnan(older["bvse_e_1d"].iloc[0])


def test_framework_ordering_keeps_the_framework_and_the_mobile_ions_presence() -> None:
    from lisearch.structure.ordering import framework_ordering

    # an LLTO-like A site (La 0.55, Li 0.33), a Li site at 0.3 occupancy (vacant in a majority ordering), Ti, O
    structure = Structure(
        Lattice.cubic(7.8),
        [{"La": 0.55, "Li": 0.33}, {"Li": 0.3}, "Ti", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.25, 0.25, 0.0]],
    )
    ordered = framework_ordering(structure)
    assert ordered.is_ordered and [str(s.specie) for s in ordered] == ["La", "Li", "Ti", "O"]
    assert framework_ordering(_rocksalt_licl()) == _rocksalt_licl()  # ordered: unchanged
    mixed = Structure(Lattice.cubic(3.9), [{"Li": 0.6, "Na": 0.4}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert [str(s.specie) for s in framework_ordering(mixed)] == ["Li", "Cl"]  # Na holds less than half: Li


def test_structure_mobility_command_on_files_and_bad_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from lisearch.cli import main

    broken = tmp_path / "broken.cif"
    broken.write_text("data_x\n_cell_length_a 3\n")
    assert main(["structure-mobility", str(LIFEPO4), str(broken), "--format", "csv"]) == 0
    import io

    import pandas as pd

    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert out["material_id"].tolist() == ["LiFePO4_bvlain", "broken"]
    assert out.loc[0, "bvse_e_1d"] == pytest.approx(0.4395, abs=0.01) and "CIF" in out.loc[1, "mobility_reason"]
    assert main(["structure-mobility", str(tmp_path / "missing.cif")]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_obelix_md_subset_takes_ordered_li_structures_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from lisearch.mobility import validation

    disordered = Structure(Lattice.cubic(4.2), [{"Li": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif")
    no_li = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif")
    cifs = [("a", LIFEPO4.read_text()), ("b", disordered), ("c", no_li), ("d", "not a CIF"),
            ("e", _rocksalt_licl().to(fmt="cif"))]  # fmt: skip
    monkeypatch.setattr(validation, "iter_cifs", lambda _source: iter(cifs))
    assert [k for k, _ in validation.obelix_md_subset(5)] == ["a", "e"]
    assert [k for k, _ in validation.obelix_md_subset(5, max_sites=20)] == ["e"]
    assert len(validation.obelix_md_subset(1)) == 1


def test_obelix_md_metrics_with_and_without_the_melted_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The OBELiX MD part joins each run to its entry's measured conductivity: a melted run is left out of the
    default ranking and kept in the ``_with_melted`` one, a failed run is in neither."""
    import pandas as pd

    from lisearch.mobility import validation

    # measured (OBELiX): j8q Li10GeP2S12 0.0121 and 122 Li6PS5Cl 0.00205 S/cm fast; wyu 1.63e-6, nhq 8.93e-7 slow
    runs = pd.DataFrame({"material_id": ["j8q", "122", "wyu", "nhq", "joc"],
                         "status": ["ok", "ok", "ok", "melted", "failed"],
                         "li_diffusivity": [1e-4, 5e-5, 1e-7, 2e-4, np.nan]})  # fmt: skip
    monkeypatch.setattr(validation, "obelix_md_subset", lambda n: [(k, "") for k in runs["material_id"]][:n])
    monkeypatch.setattr(validation, "resumable_map", lambda *_args: runs.copy())
    settings = load_settings(overrides=[f"paths.home={tmp_path}"])
    out = validation._obelix_md_part(settings, 1, tmp_path, 5, lambda _line: None)["obelix_md"]
    assert out["structures"] == 5 and out["ok"] == 3
    assert out["md_li_diffusivity"]["n"] == 3 and out["md_li_diffusivity"]["roc_auc"] == 1.0
    melted = out["md_li_diffusivity_with_melted"]
    assert melted["n"] == 4 and melted["roc_auc"] == pytest.approx(0.5)  # nhq (slow) outranks both fast ones
    assert (tmp_path / "mobility_obelix_md.csv").is_file()
