"""The paper study: batch charge neutrality against the per-composition oracle, the sample against exact counts of
small spaces, the objective against a brute-force pick over the grid, the study's Table III trace against the
narrowing's own trace, and the profile machinery (``extends``, the `paper` profile, train settings)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lisearch.chemistry.elements import DESCRIPTORS, OXIDATION_LISTS, oxidation_states, symbols
from lisearch.chemistry.neutrality import charge_neutral, is_charge_neutral, state_table
from lisearch.config import load_settings
from lisearch.downstream.narrowing import TABLE_III, passes_all, stability_flags, trace_table_iii
from lisearch.downstream.study import (
    DEFAULT_CHOICE,
    MIN_HOLDOUT_ACCURACY,
    PAPER_FUNNEL,
    StudyChoices,
    build_sample,
    choose,
    probe_arrays,
    profile_mismatches,
    profile_settings,
    run_study,
    sample_space,
    to_markdown,
    write_study,
)
from lisearch.errors import ConfigError, InputError
from lisearch.models.linear import sklearn_class_weight
from lisearch.models.training import LabelledSet, esml_descriptors, holdout_split
from lisearch.screening.space import CompositionSpace

LI = symbols().index("Li") + 1


def _as_dict(z: np.ndarray, amounts: np.ndarray) -> dict[str, int]:
    return {symbols()[e - 1]: int(a) for e, a in zip(z, amounts, strict=True) if e}


@pytest.mark.parametrize("name", OXIDATION_LISTS)
def test_batch_charge_neutrality_equals_the_oracle(name: str):
    z, amounts = sample_space(CompositionSpace(tuple(s for s in symbols() if s != "Li")), 3000, seed=7)
    zp, ap = probe_arrays(TABLE_III)
    z, amounts = np.vstack([z, zp]), np.vstack([amounts, ap])
    states = oxidation_states(name)
    fast = charge_neutral(z, amounts, state_table(states), chunk=257)  # small chunks: the seams are exercised
    slow = [is_charge_neutral(_as_dict(r, a), states) for r, a in zip(z, amounts, strict=True)]
    assert fast.tolist() == slow
    assert 0 < fast.sum() < len(fast)


def test_sample_is_uniform_over_a_small_space():
    space = CompositionSpace(("O", "S", "P", "Na"), step=10, sizes=(2, 3))
    n = 60_000
    z, amounts = sample_space(space, n, seed=1)
    assert (z[:, 0] == LI).all() and (amounts.sum(axis=1) == 100).all()
    for row_z, row_a in zip(z[:200], amounts[:200], strict=True):
        present = row_z[row_z > 0]
        assert len(set(present)) == len(present) and (row_a[row_z > 0] > 0).all() and (row_a[row_z == 0] == 0).all()
    # Every composition of the space is equally likely: counts per composition against the exact total.
    ranks = [
        space.rank(tuple(symbols()[e - 1] for e in r[1:] if e), tuple(a[a > 0] // 10))
        for r, a in zip(z, amounts, strict=True)
    ]
    counts = np.bincount(ranks, minlength=space.count())
    assert len(counts) == space.count()
    expected = n / space.count()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = space.count() - 1
    assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof)  # fixed seed: deterministic, far inside the bound


def test_sampled_neutral_share_matches_the_exact_share():
    space = CompositionSpace(("N", "O", "Na", "Mg", "P", "K", "Ga"), step=5, sizes=(2, 3))
    every = [space.unrank(i) for i in range(space.count())]
    table = state_table(oxidation_states("pymatgen_all"))
    z = np.zeros((len(every), 4), np.int64)
    amounts = np.zeros((len(every), 4), np.int64)
    for i, (els, units) in enumerate(every):
        z[i, : len(els) + 1] = [LI, *(symbols().index(e) + 1 for e in els)]
        amounts[i, : len(units)] = np.asarray(units) * 5
    exact = charge_neutral(z, amounts, table).mean()
    zs, am = sample_space(space, 40_000, seed=3)
    estimate = charge_neutral(zs, am, table).mean()
    assert abs(estimate - exact) < 4 * math.sqrt(exact * (1 - exact) / 40_000)


def _synthetic_mp(n: int = 3000) -> LabelledSet:
    """A stand-in for the sML-labelled MP set: random compositions labelled by a rule a linear model can learn."""
    z, amounts = sample_space(CompositionSpace(tuple(s for s in symbols() if s != "Li")), n, seed=11)
    fractions = np.zeros((n, len(symbols())))
    for i, (row_z, row_a) in enumerate(zip(z, amounts, strict=True)):
        fractions[i, row_z[row_z > 0] - 1] = row_a[row_z > 0] / 100
    y = (fractions[:, LI - 1] > 0.45).astype(int)
    return LabelledSet("synthetic", fractions, y, np.arange(n).astype(str))


@pytest.fixture(scope="module")
def study():  # type: ignore[no-untyped-def]
    choices = StudyChoices(class_weight=("balanced", "none"), C=(1.0,), reductions=(("mean",), ("mean", "std")),
                           limits=((30.0, 30.0), (math.inf, math.inf)), max_formula_atoms=(0, 10))  # fmt: skip
    eml = ("atomic_number", "electronegativity")
    return run_study(_synthetic_mp(), {"all": tuple(DESCRIPTORS), "eml": eml}, n=20_000, seed=0, choices=choices)


def test_study_grid_and_the_objective(study):  # type: ignore[no-untyped-def]
    grid = study.grid
    assert len(grid) == study.settings["combinations"] == 2 * 1 * 2 * 2 * len(OXIDATION_LISTS) * 2 * 2 * 2
    assert {"conductive", "neutral", "neutral_conductive", "table_iii_kept"} <= set(grid.columns)
    # The neutral share depends on the list only; the conductive share on the model only.
    assert grid.groupby("oxidation_list")["neutral"].nunique().max() == 1
    assert grid.groupby(["class_weight", "C", "descriptors", "reductions"])["conductive"].nunique().max() == 1
    # The objective, by brute force: no eligible row beats the chosen one lexicographically.
    paper = study.paper
    eligible = grid[(grid["holdout_accuracy"] >= MIN_HOLDOUT_ACCURACY) & (grid["reductions"] == "mean")]
    assert paper["reductions"] == "mean" and paper["holdout_accuracy"] >= MIN_HOLDOUT_ACCURACY
    assert paper["table_iii_kept"] == eligible["table_iii_kept"].max()
    tied = eligible[eligible["table_iii_kept"] == paper["table_iii_kept"]]
    assert paper["funnel_distance"] == pytest.approx(tied["funnel_distance"].min())
    assert paper["survivors"] == pytest.approx(
        tied.loc[np.isclose(tied["funnel_distance"], paper["funnel_distance"]), "survivors"].min()
    )
    distance = sum(abs(math.log(paper[k] / v)) for k, v in PAPER_FUNNEL.items())
    assert paper["funnel_distance"] == pytest.approx(distance)
    assert choose(grid, screenable_only=False)["table_iii_kept"] >= paper["table_iii_kept"]


def test_study_trace_equals_the_narrowing_trace_for_the_default(study):  # type: ignore[no-untyped-def]
    """Two code paths, one answer: the study's default trace against `trace_table_iii` with the same model."""
    from lisearch.models.linear import ElementalLinearModel

    mp = _synthetic_mp()
    train, _ = holdout_split(mp, 0)
    model = ElementalLinearModel(class_weight="balanced").fit(mp.fractions[train], mp.y[train])
    narrow = trace_table_iii(model.decision_function, "pymatgen_icsd", 30.0, 30.0, set())
    narrow_removed = [None if r is None else r.split(" (")[0] for r in narrow["removed_by"]]
    default_removed = [study.default[f"removed:{name}"] for name in TABLE_III]
    assert default_removed == narrow_removed
    assert list(study.trace["table_iii"]) == list(TABLE_III)
    # The default trace goes on to the shortlist's plausibility rules only for what the study's stages keep.
    for mine, full in zip(default_removed, study.trace["default"], strict=True):
        assert full == mine or (mine is None and (full is None or full.startswith("plausibility")))


def test_study_outputs_and_profile_settings(study, tmp_path: Path):  # type: ignore[no-untyped-def]
    paths = write_study(study, tmp_path)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert len(pd.read_csv(paths["csv"])) == len(study.grid)
    text = to_markdown(study)
    assert "| Table III | removed under the default by" in text and "paper: 60 %" in text
    overrides = profile_settings(study.paper)
    settings = load_settings("local", overrides)
    assert profile_mismatches(study.paper, settings) == []
    assert profile_mismatches(study.paper, load_settings("local", [*overrides, "screen.max_cost_per_kg=7"]))


def test_default_choice_is_the_embedded_default():
    s = load_settings("local")
    assert DEFAULT_CHOICE["class_weight"] == s.train.class_weight and DEFAULT_CHOICE["C"] == s.train.C
    assert DEFAULT_CHOICE["descriptors"] == s.train.descriptors
    assert DEFAULT_CHOICE["oxidation_list"] == s.screen.oxidation_list
    assert DEFAULT_CHOICE["max_cost_per_kg"] == s.screen.max_cost_per_kg
    assert DEFAULT_CHOICE["max_mean_atomic_mass"] == s.screen.max_mean_atomic_mass
    assert DEFAULT_CHOICE["max_formula_atoms"] == s.narrow.max_formula_atoms
    assert DEFAULT_CHOICE["stability"] == s.narrow.stability


def test_probes_sit_outside_the_sample_shares():
    sample = build_sample(5000, seed=2)
    assert sample.probe.sum() == len(TABLE_III) and not sample.probe[:5000].any()
    assert np.allclose(sample.fractions.sum(axis=1), 1.0)


# ------------------------------------------------------------------------------------------ profiles and train
def test_paper_profile_extends_local_and_sets_its_own_names():
    paper, local = load_settings("paper"), load_settings("local")
    assert paper.spark == local.spark  # from `extends = "local"`
    assert paper.train.esml_name == paper.screen.model == "esml_paper"
    assert paper.run.id == "paper"
    assert local.train.esml_name == "esml" and local.run.id == ""


def test_extends_errors(tmp_path: Path):
    (tmp_path / "a.toml").write_text('extends = "b"\n')
    (tmp_path / "b.toml").write_text('extends = "a"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_settings("a", conf_dir=tmp_path)
    (tmp_path / "c.toml").write_text("extends = 3\n")
    with pytest.raises(ConfigError, match="must be a profile name"):
        load_settings("c", conf_dir=tmp_path)
    (tmp_path / "d.toml").write_text('extends = "nowhere"\n')
    with pytest.raises(ConfigError, match="Unknown profile 'nowhere'"):
        load_settings("d", conf_dir=tmp_path)


def test_train_settings_are_checked():
    with pytest.raises(ConfigError, match=r"train\.class_weight is '1:-2'"):
        load_settings("local", ["train.class_weight=1:-2"])
    with pytest.raises(ConfigError, match=r"train\.esml_name"):
        load_settings("local", ["train.esml_name=a/b"])
    with pytest.raises(ConfigError, match=r"narrow\.max_formula_atoms is 1"):
        load_settings("local", ["narrow.max_formula_atoms=1"])
    assert sklearn_class_weight("1:10") == {0: 1.0, 1: 10.0} and sklearn_class_weight("none") is None
    with pytest.raises(InputError, match="1:w"):
        sklearn_class_weight("2:1")
    assert esml_descriptors("eml", ("period",)) == ("period",) and len(esml_descriptors("all", ())) == 9
    with pytest.raises(InputError, match="descriptors 'colour'"):
        esml_descriptors("colour", ())


def test_class_weight_dict_survives_the_artifact_round_trip():
    from lisearch.models.linear import ElementalLinearModel

    mp = _synthetic_mp(400)
    model = ElementalLinearModel(class_weight={0: 1.0, 1: 10.0}).fit(mp.fractions, mp.y)
    back = ElementalLinearModel.from_payload(json.loads(json.dumps(model.to_payload())))
    assert back.class_weight == {0: 1.0, 1: 10.0}
    assert np.allclose(back.decision_function(mp.fractions), model.decision_function(mp.fractions))


def test_narrowing_without_stability_and_with_a_size_rule():
    cand = pd.DataFrame(
        {"element_1": ["Mg", "Na", "C"], "element_2": ["O", "O", "O"], "element_3": [None, None, "Br"],
         "pct_li": [40, 50, 10], "pct_1": [20, 20, 30], "pct_2": [40, 30, 40], "pct_3": [0, 0, 20]}
    )  # fmt: skip  # Li2MgO2 (5 atoms), Li5Na2O3 (10 atoms, needs Na-1/O-1: fails common states), LiC3Br2O4
    flagged = stability_flags(cand, stability=False)
    assert flagged["formula_atoms"].tolist() == [5, 10, 10]
    assert passes_all(flagged).tolist() == [True, False, False]
    assert passes_all(flagged, stability=False).tolist() == [True, True, True]
    assert passes_all(flagged, stability=False, max_formula_atoms=5).tolist() == [True, False, False]
    assert flagged["formula"].notna().all()  # without the proxies every row that passes Z and the anion is named
    assert stability_flags(cand, stability=False, max_formula_atoms=5)["formula"].notna().tolist() == [
        True, False, False
    ]  # fmt: skip


def test_neutral_amounts_equals_the_oracle_for_any_number_of_elements():
    from lisearch.chemistry.neutrality import integer_amounts, neutral_amounts
    from lisearch.prediction import predict_formulas

    formulas = ["Li7La3Zr2O12", "Li6.4La3Zr1.4Ta0.6O12", "Li10GeP2S12", "Li6PS5Cl", "Li5Na2O3", "LiC2BrO", "Li2O2"]
    from pymatgen.core import Composition

    amounts = [integer_amounts(Composition(f).get_el_amt_dict()) for f in formulas]
    for name in OXIDATION_LISTS:
        states = oxidation_states(name)
        want = [is_charge_neutral(a, states) for a in amounts if a]
        assert neutral_amounts(amounts, states).tolist() == want
        assert predict_formulas(formulas, {})[f"neutral_{name}"].tolist() == want
    assert neutral_amounts([None], oxidation_states("pymatgen_all")).tolist() == [False]
