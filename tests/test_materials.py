"""The materials stage: substitution on a hand-made prototype set against a hand-derived answer, the hull on a toy
system against a hand computation, the potential on a two-atom structure for a few steps, the `phases` cache
(computed once, resumed after a stop) and the pipeline on one small composition. No Spark."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Species, Structure
from pymatgen.core.structure_prediction.substitution_probability import SubstitutionProbability

from lisearch.config import MaterialsSettings, load_settings
from lisearch.materials import phases as phase_store
from lisearch.materials.hull import competing_phases, hull_energy
from lisearch.materials.pipeline import best_per_formula, predict_materials
from lisearch.materials.potential import POTENTIAL, relax, static_energy
from lisearch.materials.substitution import best_substitution, candidate_structures
from lisearch.materials.templates import ionic_formulas, pattern_of, template_index
from lisearch.schema import MATERIALS_COLUMNS
from tests.conftest import cli_env, lisearch_cmd


def _rocksalt(a: str, b: str, edge: float = 5.0) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(edge), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _prototypes(structures: dict[str, Structure]) -> pd.DataFrame:
    table = ionic_formulas([s.composition.reduced_formula for s in structures.values()])
    table.insert(0, "id", list(structures))
    table.insert(1, "formula", [s.composition.reduced_formula for s in structures.values()])
    table["structure"] = list(structures.values())
    return table


# ------------------------------------------------------------------------------------------- substitution
def test_pattern_and_ionic_assignment():
    table = ionic_formulas(["Li3PO4", "Li6PS5Cl", "LiPu3", "NaCl"])
    assert table.loc[0, "pattern"] == (3, (1, 4)) and table.loc[0, "states"] == (1, -2, 5)  # Li, O, P by Z
    assert table.loc[1, "pattern"] == (6, (1, 1, 5))
    assert table.loc[2, "states"] == () and table.loc[2, "reason"] == "not_neutral"
    assert table.loc[3, "pattern"] is None
    assert pattern_of(np.array([3, 8, 0]), np.array([4, 2, 0])) == (2, (1,))  # Li4O2 reduces to Li2O
    assert len(template_index()) > 15_000


def test_obelix_prototypes_ship_what_the_function_computes_and_serve_as_prototypes():
    """The shipped OBELiX prototype index equals a recomputation on a sample (a new structure, one MP already holds,
    a partially occupied CIF that is no prototype); an OBELiX prototype is read from OBELiX's archive and used."""
    import pandas as pd

    from lisearch.datasets import OBELIX_CIFS, OBELIX_PROTOTYPES, iter_cifs
    from lisearch.materials.substitution import candidate_structures
    from lisearch.materials.templates import obelix_prototypes, read_structures

    sample = {"cfy", "0iv", "etz"}  # LiPS3 (not in MP), Li2PS3 (MP's mp-1222635), cubic LLZO (partially occupied)
    recomputed = obelix_prototypes((k, t) for k, t in iter_cifs(OBELIX_CIFS) if k in sample)
    shipped = pd.read_csv(OBELIX_PROTOTYPES, dtype={"nsites": int})
    shipped = shipped[shipped["material_id"].isin(recomputed["material_id"])].reset_index(drop=True)
    assert list(recomputed["material_id"]) == ["obelix-0iv", "obelix-cfy"]
    pd.testing.assert_frame_equal(recomputed.astype({"nsites": int}).fillna(np.nan), shipped, check_dtype=False)
    assert recomputed.set_index("material_id").loc["obelix-0iv", "duplicate_of"] == "mp-1222635"
    table, index = template_index(), pd.read_csv(OBELIX_PROTOTYPES)
    assert set(table.loc[table["source"] == "obelix", "id"]) == set(
        index.loc[index["duplicate_of"].isna(), "material_id"]
    )
    assert "obelix-cfy" in read_structures({"obelix": ["obelix-cfy"]})
    best = candidate_structures(["LiPSe3"], k=2)[0].candidates[0]  # Se for S on OBELiX's LiPS3 ranks first
    assert best.template_id == "obelix-cfy" and best.structure.composition.reduced_formula == "LiPSe3"


def test_substitution_on_hand_made_prototypes_against_the_hand_derived_answer():
    """LiNaS (Li+ Na+ S2-) from LiKO (Li+ K+ O2-) and LiKSe: cation for cation, anion for anion (K -> Na, O -> S;
    never K -> S although the amounts are equal), ranked by the product of pymatgen's conditional probabilities;
    Li2O (another pattern) is not a prototype of LiNaS."""
    model = SubstitutionProbability()

    def p(*pairs: tuple[str, str]) -> float:
        return float(np.prod([model.cond_prob(Species.from_str(a), Species.from_str(b)) for a, b in pairs]))

    expected = {"p1": p(("Li+", "Li+"), ("Na+", "K+"), ("S2-", "O2-")),
                "p2": p(("Li+", "Li+"), ("Na+", "K+"), ("S2-", "Se2-"))}  # fmt: skip
    lattice = Lattice.hexagonal(3.6, 7.0)
    oxide = Structure(lattice, ["Li", "K", "O"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.25]])
    selenide = oxide.copy()
    selenide.replace_species({"O": "Se"})
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.6), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    table = _prototypes({"p1": oxide, "p2": selenide, "p3": li2o})
    (prediction,) = candidate_structures(["LiNaS"], k=5, templates=table)
    order = sorted(expected, key=lambda key: -expected[key])
    assert [c.template_id for c in prediction.candidates] == order
    for c in prediction.candidates:
        assert c.probability == pytest.approx(expected[c.template_id], rel=1e-12)
        assert c.structure.composition.reduced_composition == Composition("LiNaS") and len(c.structure) == 3
    assert prediction.candidates[order.index("p1")].substitution == {"K": "Na", "O": "S"}
    ions = (("Li", 1, 1), ("Na", 1, 1), ("S", 1, -2))
    assert best_substitution(ions, (("Li", 1, 1), ("O", 1, -2), ("K", 1, 1)))[1] == {"O": "S", "K": "Na"}  # type: ignore[index]
    assert best_substitution(ions, (("Li", 2, 1), ("O", 1, -2))) is None
    (none,) = candidate_structures(["Li2S"], templates=table.iloc[:2])
    assert none.candidates == [] and "no prototype with the pattern" in str(none.reason)
    (excluded,) = candidate_structures(["LiNaS"], templates=table, exclude=["LiKO"])
    assert [c.template_id for c in excluded.candidates] == ["p2"]


# ----------------------------------------------------------------------------------------------------- hull
def test_hull_on_a_toy_system_by_hand():
    """Li and O at 0 eV/atom, LiO at -1: LiO2 (x_O = 2/3) at -0.5 lies 1/6 eV/atom above the tie line LiO - O
    (-1 * (1 - 2/3) / (1 - 1/2) = -2/3); LiO at -1.2 lies 0.2 below the hull of the others."""
    phases = pd.DataFrame({"formula": ["Li", "O", "LiO", "LiO"], "energy_per_atom": [0.0, 0.0, -1.0, math.nan]})
    above = hull_energy("LiO2", -0.5, phases)
    assert above.e_above_hull == pytest.approx(1 / 6) and above.decomposition == "Li2O2:0.667 + O2:0.333"
    assert hull_energy("LiO", -1.2, phases).e_above_hull == pytest.approx(-0.2)
    missing = hull_energy("LiF", -1.0, phases)
    assert math.isnan(missing.e_above_hull) and "F alone" in str(missing.reason)
    assert "no energy" in str(hull_energy("LiO", math.nan, phases).reason)
    system = competing_phases(["Li", "Cl"])
    assert {"Li", "Cl", "LiCl"} <= {s for s in system["formula"].str.replace(r"\d", "", regex=True)}
    assert all(e <= {"Li", "Cl"} for e in system["elements"])


# ------------------------------------------------------------------------------------------------ potential
def test_potential_relaxes_a_two_atom_structure_in_a_few_steps():
    salt = _rocksalt("Li", "Cl", 5.4).get_primitive_structure()
    start = static_energy(salt)
    result = relax(salt, fmax=0.05, steps=8)
    assert result.status in ("ok", "not_converged") and 1 <= result.steps <= 10
    assert math.isfinite(result.energy_per_atom) and result.energy_per_atom <= start + 1e-6
    assert result.space_group == "Fm-3m" and result.structure.composition.reduced_formula == "LiCl"
    uncovered = relax(Structure(Lattice.cubic(3.0), ["Li", "Am"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert uncovered.status == "failed" and "Am not covered" in str(uncovered.reason)
    assert math.isnan(static_energy(Structure(Lattice.cubic(3.0), ["Cm"], [[0, 0, 0]])))
    lonely = phase_store.compute_energy(Structure(Lattice.cubic(15.0), ["He"], [[0, 0, 0]]), False, "cpu", 0.1, 5)
    assert math.isnan(lonely[0]) and lonely[1] == "failed" and "isolated atom" in str(lonely[2])  # a row, no crash


@pytest.mark.parametrize(
    ("final_energy", "largest_force", "volume_factor", "reason"),
    [
        (math.nan, 0.01, 1.0, "NaN or infinite energy"),
        (-3.0, 5e4, 1.0, "exploding forces"),
        (-3.0, math.nan, 1.0, "exploding forces"),
        (-3.0, 0.01, 8.0, "volume changed by a factor 8"),
        (-3.0, 0.5, 1.0, "not converged in 7 steps"),
    ],
)
def test_a_diverging_relaxation_becomes_a_row_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, final_energy: float, largest_force: float, volume_factor: float, reason: str
):
    """Each way a relaxation can go wrong (a stand-in optimizer returns what a diverging CHGNet run would) gives a
    Relaxation with a status and a reason, never an exception; the model is never loaded."""
    import chgnet.model

    from lisearch.materials import potential

    salt = _rocksalt("Li", "Cl", 5.4).get_primitive_structure()

    trajectory = SimpleNamespace(energies=[0.0] * 7, forces=[np.full((2, 3), largest_force)])

    class Optimizer:
        def __init__(self, **_: object) -> None:
            pass

        def relax(self, structure: Structure, **_: object) -> dict[str, object]:
            final = structure.copy()
            final.scale_lattice(structure.volume * volume_factor)
            return {"final_structure": final, "trajectory": trajectory}

    monkeypatch.setattr(chgnet.model, "StructOptimizer", Optimizer)
    monkeypatch.setattr(potential, "load_potential", lambda device="cpu": None)
    monkeypatch.setattr(potential, "static_energy", lambda structure, device="cpu": final_energy)
    result = relax(salt, fmax=0.1, steps=7)
    assert result.status == ("not_converged" if "converged" in reason else "failed")
    assert reason in str(result.reason) and result.steps == 7


# --------------------------------------------------------------------------------------------------- phases
class Stopped(Exception):
    """Stands for a killed job (the process would end here)."""


def test_phases_are_computed_once_and_a_stopped_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    phases = competing_phases(["Li"]).head(3)
    calls: list[int] = []
    stop_at = [2]
    real = phase_store.compute_energy

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == stop_at[0]:
            raise Stopped  # the run is stopped while computing the second phase
        return real(*args, **kwargs)

    monkeypatch.setattr(phase_store, "BATCH", 1)
    monkeypatch.setattr(phase_store, "compute_energy", counting)
    with pytest.raises(Stopped):
        phase_store.phase_energies(phases, tmp_path)
    assert len(phase_store.read_cached(tmp_path, relaxed=False)) == 1  # the finished batch is kept
    calls.clear()
    stop_at[0] = 0
    out = phase_store.phase_energies(phases, tmp_path)
    assert len(calls) == 2 and np.isfinite(out["energy_per_atom"]).all()  # only the two missing ones
    cached = phase_store.read_cached(tmp_path, relaxed=False)
    assert sorted(cached["material_id"]) == sorted(phases["id"]) and set(cached["potential"]) == {POTENTIAL}
    calls.clear()
    again = phase_store.phase_energies(phases, tmp_path)
    assert calls == [] and again["energy_per_atom"].tolist() == out["energy_per_atom"].tolist()
    assert phase_store.read_cached(tmp_path, relaxed=True).empty  # relaxed energies are another protocol


# ------------------------------------------------------------------------------------------------- pipeline
def test_pipeline_on_one_composition_and_a_composition_without_prototype(tmp_path: Path):
    settings = MaterialsSettings(candidates=1, steps=5, fmax=0.5)
    frame = predict_materials(["LiCl", "LiPu3"], tmp_path, settings)
    assert list(frame.columns) == list(MATERIALS_COLUMNS) and len(frame) == 2
    salt, plutonium = frame.iloc[0], frame.iloc[1]
    assert salt["status"] in ("ok", "not_converged") and salt["template_formula"] == "LiCl"
    assert math.isfinite(salt["e_above_hull"]) and "LiCl" in str(salt["decomposition"])
    assert str(salt["cif"]).startswith("# generated using pymatgen")
    assert plutonium["status"] == "no_template" and "no neutral ionic assignment" in str(plutonium["reason"])
    assert best_per_formula(frame)["formula"].tolist() == ["LiCl", "LiPu3"]


def test_predict_structure_cli_errors(tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = cli_env(tmp_path / "home")
        return subprocess.run(lisearch_cmd("predict-structure", *args), env=env, capture_output=True, text=True)

    out = run("LiPu3", "--format", "json", "--quiet")
    assert out.returncode == 2 and '"status":"no_template"' in out.stdout and "Traceback" not in out.stderr
    (tmp_path / "file").write_text("x")
    bad = run("LiCl", "--cif-dir", str(tmp_path / "file"))
    assert bad.returncode == 2 and "is a file" in bad.stderr
    assert "Give formulas" in run().stderr
    assert "materials.steps" in run("LiCl", "--steps", "0").stderr
    assert load_settings(None, ["materials.candidates=2"]).materials.candidates == 2


def test_validation_samples_are_fixed_and_within_the_shipped_phases():
    from lisearch.materials.validation import bootstrap_mean, known_sample

    first, again = known_sample(20, seed=0), known_sample(20, seed=0)
    assert first["material_id"].tolist() == again["material_id"].tolist() and len(first) == 20
    assert all(len(e) <= 4 and "Li" in e for e in first["elements"])
    stable = known_sample(15, seed=1, stable_only=True)
    assert (stable["e_above_hull_ev"] <= 1e-6).all() and len(stable) == 15
    values = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, 5, size=(2000, 5))].mean(axis=1)
    assert bootstrap_mean(values) == pytest.approx(np.percentile(means, [2.5, 97.5]), abs=1e-4)
    assert bootstrap_mean(np.array([])) is None


def test_leave_one_out_summary_counts_by_anion_set():
    """The summary's shares are over compounds with a prototype only; the anion sets come from the prototypes' ionic
    assignment (a peroxide has none), recovered shares per set computed by hand."""
    import pandas as pd

    from lisearch.materials.validation import anions_of, loo_summary

    assert anions_of(["Li2O", "Li3PS4", "Li6PS5Cl", "Li2O2", "Li3N"]) == ["O", "S", "S,Cl", "none", "N"]
    rows = pd.DataFrame({
        "material_id": [f"mp-{i}" for i in range(6)],
        "formula": ["Li2O", "LiAlO2", "Li4SiO4", "LiF", "Li3PS4", "Li2O2"],
        "no_template": [False, False, False, False, True, True],
        "recovered": [True, False, True, True, False, False],
        "best_e_above_hull": [-0.9, 0.05, 0.2, 0.0, float("nan"), float("nan")],
    })  # fmt: skip
    summary, out = loo_summary(rows, k=5)
    assert (summary["n_sample"], summary["no_template"], summary["n_with_template"], summary["k"]) == (6, 2, 4, 5)
    assert summary["recovered_top_k"] == pytest.approx(3 / 4) and summary["best_within_0.1"] == pytest.approx(3 / 4)
    assert [(g["anions"], g["n_with_template"]) for g in summary["by_anions"]] == [("O", 3), ("F", 1)]
    assert summary["by_anions"][0]["recovered_top_k"] == pytest.approx(2 / 3)
    assert out["anions"].tolist() == ["O", "O", "O", "F", "S", "none"]


def _square(item: tuple[str, int, str]) -> dict[str, object]:
    """A validation worker stand-in: records each call in a file, returns one row."""
    key, value, log = item
    with open(log, "a") as out:
        out.write(key + "\n")
    return {"material_id": key, "value": value * value}


def test_a_stopped_validation_continues_where_it_ended(tmp_path: Path):
    """resumable_map appends each finished row to the partial CSV; the next call computes only what is missing and
    returns the rows of the items asked for, old and new."""
    from lisearch.materials.validation import resumable_map

    log, partial = str(tmp_path / "calls.txt"), tmp_path / "partial.csv"
    first = resumable_map(1, _square, [("mp-1", 2, log), ("mp-2", 3, log)], partial)
    assert sorted(first["value"]) == [4, 9] and len(pd.read_csv(partial)) == 2
    again = resumable_map(1, _square, [("mp-2", 3, log), ("mp-3", 4, log)], partial)
    assert sorted(zip(again["material_id"], again["value"], strict=True)) == [("mp-2", 9), ("mp-3", 16)]
    assert sorted(Path(log).read_text().split()) == ["mp-1", "mp-2", "mp-3"]  # mp-2 computed once


def test_table_iii_check_keeps_each_formulas_best_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The Table III check asks the materials steps for the paper's 11 formulas (a stand-in here) and keeps each
    formula's lowest-E_hull structure, a formula without any with its reason; the CLI refuses to check nothing."""
    from lisearch.materials import pipeline
    from lisearch.materials.validation import TABLE_III_COLUMNS, table_iii_check
    from lisearch.paper import TABLE_III

    asked: list[list[str]] = []

    def fake(formulas: list[str], *_args: object, **_kwargs: object) -> pd.DataFrame:
        asked.append(formulas)
        rows = [{"formula": f, "candidate": 1, "status": "no_template", "reason": "no neutral ionic assignment"}
                for f in formulas[1:]]  # fmt: skip
        rows += [{"formula": formulas[0], "candidate": c, "status": "ok", "e_above_hull": e, "space_group": g}
                 for c, e, g in ((1, 0.3, "P1"), (2, 0.05, "Pnma"))]  # fmt: skip
        return pipeline.to_frame(rows)

    monkeypatch.setattr(pipeline, "predict_materials", fake)
    summary, best = table_iii_check(tmp_path, None, lambda _line: None)
    assert asked == [list(TABLE_III)] and list(best.columns) == TABLE_III_COLUMNS
    assert list(best["formula"]) == list(TABLE_III)
    first = best.set_index("formula").loc[TABLE_III[0]]
    assert first["space_group"] == "Pnma" and first["e_above_hull"] == pytest.approx(0.05)
    assert summary["with_structure"] == 1 and summary["within_window"] == 1 and len(summary["rows"]) == 11
    refused = subprocess.run(lisearch_cmd("validate-materials", "--known", "0", "--loo", "0"),
                             env=cli_env(tmp_path / "home"), capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "Nothing to check" in refused.stderr
