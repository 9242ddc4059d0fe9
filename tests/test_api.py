"""The Python API (`import lisearch`): listed by help(), Spark-free on import, and equal to the command line on a
small screen, its narrowing and a prediction (the CLI runs in this process, on the same Spark session)."""

from __future__ import annotations

import io
import pydoc
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import lisearch
from lisearch import cli
from lisearch.errors import ConfigError, InputError
from tests.conftest import repo_jars_dir, save_small_esml

API = ("settings", "featurize", "label", "train", "predict", "screen", "narrow", "shortlist", "find_materials",
       "predict_structure", "paper_study", "table")  # fmt: skip


def test_help_lists_the_api_and_import_starts_no_spark():
    text = pydoc.render_doc(lisearch, renderer=pydoc.plaintext)
    for name in API:
        assert f"\n    {name}(" in text, name
        assert getattr(lisearch, name).__doc__
    code = "import sys, lisearch; print('pyspark' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_predict_structure_and_find_materials_errors(tmp_path: Path):
    from lisearch.errors import InputError

    frame = lisearch.predict_structure(["LiPu3"], settings=lisearch.settings(home=tmp_path))
    assert frame["status"].tolist() == ["no_template"] and frame["cif"].isna().all()
    with pytest.raises(InputError, match="need run_id=NAME"):
        lisearch.find_materials(formulas=["LiCl"], settings=lisearch.settings(home=tmp_path))


def test_settings_keywords_and_errors(tmp_path: Path):
    s = lisearch.settings(home=tmp_path, screen__step=5, narrow__stability=False)
    assert s.paths.home == tmp_path.resolve() and s.screen.step == 5 and s.narrow.stability is False
    assert lisearch.settings("paper").screen.oxidation_list == "pymatgen_all"
    with pytest.raises(ConfigError, match=r"Unknown setting screen\.stepp"):
        lisearch.settings(screen__stepp=5)


def test_predict_and_featurize_without_spark(tmp_path: Path):
    save_small_esml(tmp_path / "artifacts")
    s = lisearch.settings(home=tmp_path)
    frame = lisearch.predict(["Li3PO4", "Li1e400O", "Xx2O"], models=["esml"], settings=s)
    assert frame["error"].isna().tolist() == [True, False, False]
    # the small test model (conftest.save_small_esml) scores Li3PO4 below 0: a negative, as in its training data
    assert frame.loc[0, "neutral_pymatgen_common"] and frame.loc[0, "esml_label"] == 0
    assert frame.loc[0, "esml_score"] == pytest.approx(-0.60801105, abs=1e-6)
    with pytest.raises(InputError, match="atom2vec"):
        lisearch.predict(["Li3PO4"], models=["atom2vec"], settings=s)
    from pymatgen.core import Lattice, Structure

    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.0), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    feats = lisearch.featurize([rocksalt])
    # rock-salt LiF at a = 4.0 A: Sendek's model calls it a poor conductor (pinned from the published coefficients)
    assert feats.loc[0, "status"] == "ok" and feats.loc[0, "label"] == 0
    assert feats.loc[0, "p_superionic"] == pytest.approx(0.054295, abs=1e-5)


@pytest.mark.spark
def test_api_screen_narrow_and_predict_equal_the_cli(spark, tmp_path: Path, capsys):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    save_small_esml(home / "artifacts")
    overrides = [f"paths.home={home}", f"paths.jars={repo_jars_dir()}", "screen.sets_per_block=20"]
    s = lisearch.settings(**{k.replace(".", "__", 1): v for k, v in (o.split("=", 1) for o in overrides)})
    flags = [f"--set={o}" for o in overrides]

    run = lisearch.screen(["N", "O", "Na", "Mg", "P", "K"], step=5, limits=(40.0, 30.0), run_id="api", settings=s,
                          spark=spark)  # fmt: skip
    assert cli.main(["screen", "--elements", "N,O,Na,Mg,P,K", "--step", "5", "--max-cost", "40", "--max-mass", "30",
                     "--run-id", "cli", *flags]) == 0  # fmt: skip
    assert run["funnel"]["total"] == 6 * 5 // 2 * 171 + 20 * 969  # C(6,2) C(19,2) + C(6,3) C(19,3)

    def rows(name: str, run_id: str) -> pd.DataFrame:
        frame = lisearch.table(name, run_id=run_id, settings=s, spark=spark).drop(columns="run_id")
        return frame.sort_values(list(frame.columns)).reset_index(drop=True)

    for name in ("candidates", "funnel", "funnel_by_set"):
        pd.testing.assert_frame_equal(rows(name, "api"), rows(name, "cli"))
    assert len(rows("candidates", "api")) == run["funnel"]["survivors"] > 0

    narrowed = lisearch.narrow("api", stability=False, max_formula_atoms=10, settings=s, spark=spark)
    assert cli.main(["narrow", "--run-id", "cli", "--set=narrow.stability=false", "--set=narrow.max_formula_atoms=10",
                     *flags]) == 0  # fmt: skip
    pd.testing.assert_frame_equal(rows("stable_oxides", "api"), rows("stable_oxides", "cli"))
    assert narrowed["stable"] == rows("stable_oxides", "api")["formula"].nunique() > 0
    assert set(narrowed["table_iii"].query("found")["formula"]) <= set(rows("stable_oxides", "api")["formula"])

    capsys.readouterr()
    assert cli.main(["predict", "Li3PO4", "Li5Na2O3", "--models", "esml", "--format", "csv", *flags]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    mine = lisearch.predict(["Li3PO4", "Li5Na2O3"], models=["esml"], settings=s)
    pd.testing.assert_frame_equal(printed, mine.astype(printed.dtypes.to_dict()), check_dtype=False)
