"""atom2vec-esML: JAX training vs the numpy model, artifacts and their errors, the sweep and contributions, and
the screen kernel with a network model against direct scoring."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lisearch.errors import InputError
from lisearch.models.artifact import load_artifact, make_artifact, save_artifact
from lisearch.models.atom2vec import KIND, Atom2VecModel
from lisearch.screening.plan import plan_from_settings, screen_in_process
from lisearch.screening.space import CompositionSpace
from tests.conftest import cli_env, lisearch_cmd, settings_for

POOL = ["B", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Zr"]
FAST = {"steps": 250, "learning_rate": 0.03}


def synthetic_structures(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Random Li compounds labelled by a rule a small network can learn: S-rich or Cl-rich means 'superionic'."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        partners = list(rng.choice(POOL, size=int(rng.integers(2, 4)), replace=False))
        parts = rng.integers(1, 6, size=len(partners) + 1).astype(float)
        frac = parts / parts.sum()
        share = dict(zip(["Li", *partners], frac, strict=True))
        label = int(share.get("S", 0) + share.get("Cl", 0) > 0.2)
        rows.append(
            {
                "material_id": f"syn-{i:04d}",
                "formula": "",
                "elements": ["Li", *partners],
                "fractions": frac.tolist(),
                "label": label,
                "status": "ok",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    from lisearch.models.atom2vec_train import Atom2VecConfig, train_atom2vec

    folder = tmp_path_factory.mktemp("a2v")
    structures = synthetic_structures()
    train_atom2vec(structures, folder, Atom2VecConfig(**FAST), seeds=2)  # type: ignore[arg-type]
    return folder, structures


def _model(folder: Path) -> Atom2VecModel:
    return Atom2VecModel.from_payload(load_artifact(folder / "atom2vec.json", kinds=(KIND,))["payload"])


def test_numpy_kernel_matches_jax_and_learns(trained: tuple[Path, pd.DataFrame]):
    from lisearch.models.atom2vec_train import jax_decision
    from lisearch.models.training import mp_set

    folder, structures = trained
    model = _model(folder)
    data = mp_set(structures)
    batch = data.fractions[:200]
    assert np.max(np.abs(model.decision_function(batch) - jax_decision(model, batch))) < 1e-5
    assert model.training["numpy_vs_jax_max_abs_diff"] < 1e-5
    assert model.training["holdout_accuracy"] > 0.85  # the rule is learnable; a constant classifier gets ~0.6
    assert model.dim == 3 and set(model.elements) == {"Li", *POOL}


def test_training_is_reproducible(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    from lisearch.models.atom2vec_train import Atom2VecConfig, train_atom2vec

    folder, structures = trained
    train_atom2vec(structures, tmp_path, Atom2VecConfig(**FAST), seeds=2)  # type: ignore[arg-type]
    a, b = _model(folder), _model(tmp_path)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    np.testing.assert_array_equal(a.layers[-1][0], b.layers[-1][0])


def test_artifact_errors(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    folder, _ = trained
    payload = load_artifact(folder / "atom2vec.json")["payload"]

    wrong_size = json.loads(json.dumps(payload))
    wrong_size["embedding_dim"] = 4
    with pytest.raises(InputError, match="embedding size is 4"):
        Atom2VecModel.from_payload(wrong_size, "wrong.json")

    short_layer = json.loads(json.dumps(payload))
    short_layer["layers"][0]["W"] = short_layer["layers"][0]["W"][:-1]
    with pytest.raises(InputError, match="layer 1 expects 5 inputs"):
        Atom2VecModel.from_payload(short_layer, "layer.json")

    model = Atom2VecModel.from_payload(payload)
    with pytest.raises(InputError, match="no vector for Xe"):
        model.vectors(["Li", "O", "Xe"])
    from lisearch.chemistry.composition import parse_formulas

    fractions, _, _ = parse_formulas(["LiXeO3"])
    with pytest.raises(InputError, match="no vector for Xe"):
        model.decision_function(fractions)


def _screen_settings(home: Path, artifacts: Path, *extra: str):  # type: ignore[no-untyped-def]
    return settings_for(
        home,
        f"paths.artifacts={artifacts}",
        "screen.model=atom2vec",
        "screen.elements=N,O,F,Mg,P,S,Cl",
        "screen.step=5",
        "screen.sets_per_block=7",
        "screen.max_cost_per_kg=1000",
        *extra,
    )


def test_screen_kernel_with_network_equals_direct_scoring(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    """Every neutral composition of a small space scored by the model directly (brute force) vs the kernel."""
    from lisearch.chemistry.elements import oxidation_states, symbols
    from lisearch.chemistry.neutrality import is_charge_neutral

    folder, _ = trained
    plan = plan_from_settings(_screen_settings(tmp_path, folder))
    funnel, _, survivors = screen_in_process(plan)
    counts = dict(zip(funnel["stage"], funnel["count"], strict=True))
    assert pd.isna(counts["conductive"]) and counts["total"] == plan.space.count()

    model, states = _model(folder), oxidation_states("pymatgen_icsd")
    space = CompositionSpace(plan.space.elements, 5, (2, 3))
    neutral = conductive = 0
    for rank in range(space.count()):
        els, units = space.unrank(rank)
        names = ["Li", *els]
        amounts = dict(zip(names, units, strict=True))
        if not is_charge_neutral(amounts, states):
            continue
        neutral += 1
        frac = np.zeros((1, 94))
        for e, u in amounts.items():
            frac[0, symbols().index(e)] = u / 20
        conductive += int(model.decision_function(frac)[0] > 0)
    assert (counts["neutral"], counts["neutral_conductive"]) == (neutral, conductive)
    assert len(survivors) == counts["survivors"] and (survivors["score"] > 0).all()


def test_screen_refuses_missing_element_and_bad_artifact_before_spark(trained: tuple[Path, pd.DataFrame], home: Path):
    folder, _ = trained
    with pytest.raises(InputError, match="no vector for Ti"):
        plan_from_settings(_screen_settings(home, folder, "screen.elements=O,S,Ti"))
    # An element without oxidation states can never be neutral: no vector needed for it.
    plan_from_settings(_screen_settings(home, folder, "screen.elements=O,S,He"))

    payload = load_artifact(folder / "atom2vec.json")["payload"]
    payload["embedding_dim"] = 2
    (home / "bad").mkdir(parents=True)
    bad = home / "bad" / "bad.json"
    bad.write_text(json.dumps(make_artifact(KIND, payload)))
    cmd = lisearch_cmd("screen", "--model", str(bad), "--elements", "O,S", "--step", "10")
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(home), timeout=120)
    assert out.returncode == 2 and "embedding size is 2" in out.stderr
    assert not (home / "warehouse").exists()  # stopped before any Spark work


@pytest.mark.spark
def test_spark_screen_with_atom2vec_equals_in_process(spark, trained: tuple[Path, pd.DataFrame], home: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.screen import run_screen

    folder, _ = trained
    settings = _screen_settings(home, folder, "run.id=a2v")
    summary = run_screen(settings, spark=spark)
    funnel, _, survivors = screen_in_process(plan_from_settings(settings))
    want = {s: (None if pd.isna(c) else int(c)) for s, c in zip(funnel["stage"], funnel["count"], strict=True)}
    assert summary["funnel"] == want and summary["funnel"]["conductive"] is None
    rows = spark.sql("SELECT stage, count FROM funnel WHERE run_id = 'a2v'").toPandas()
    counts = rows.set_index("stage")["count"]
    assert set(counts[counts.isna()].index) == {"conductive", "plausible"}  # no closed form; rules not applied
    cand = spark.read.format("delta").load(str(home / "warehouse" / "candidates")).toPandas()
    assert len(cand) == len(survivors)
    np.testing.assert_allclose(np.sort(cand["score"]), np.sort(survivors["score"]), rtol=1e-6)


def test_sweep_and_contributions(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    from lisearch.models.atom2vec_train import Atom2VecConfig, dim_sweep, element_contributions
    from lisearch.report import plot_contributions, plot_dim_sweep

    _, structures = trained
    sweep = dim_sweep(structures, (1, 2), seeds=2, cfg=Atom2VecConfig(**FAST))  # type: ignore[arg-type]
    assert list(sweep["dim"]) == [1, 1, 2, 2] and sweep["holdout_accuracy"].between(0, 1).all()
    runs, summary = element_contributions(structures, 3, Atom2VecConfig(**FAST), batch=2)  # type: ignore[arg-type]
    assert runs["run"].nunique() == 3 and set(summary["element"]) == {"Li", *POOL}
    # The rule makes S and Cl push toward 'superionic': both rank above the median.
    rank = summary.set_index("element")["rank"]
    assert rank["S"] <= len(rank) / 2 and rank["Cl"] <= len(rank) / 2
    plot_dim_sweep(sweep, tmp_path / "s.png")
    plot_contributions(summary, tmp_path / "c.png")
    assert (tmp_path / "s.png").stat().st_size > 5000 and (tmp_path / "c.png").stat().st_size > 5000


def test_save_and_reload_roundtrip(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    folder, _ = trained
    model = _model(folder)
    save_artifact(tmp_path / "copy.json", KIND, model.to_payload())
    copy = Atom2VecModel.from_payload(load_artifact(tmp_path / "copy.json")["payload"])
    assert copy.elements == model.elements and copy.training == model.training
    np.testing.assert_array_equal(copy.embedding, model.embedding)
    fractions = np.zeros((1, 94))
    fractions[0, [2, 7, 15]] = [0.5, 0.25, 0.25]  # Li2OS
    assert copy.decision_function(fractions)[0] == model.decision_function(fractions)[0]
