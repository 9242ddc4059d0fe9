"""Training, Table I and `lisearch predict` end to end on a labelled sample of the MP set (no Spark)."""

from __future__ import annotations

import json
import subprocess
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest

from lisearch.datasets import MP2025_ARCHIVE, iter_cifs
from lisearch.models.training import train_all
from lisearch.report import table_one, to_markdown, write_report
from lisearch.structure.labelling import label_cifs
from tests.conftest import cli_env, lisearch_cmd


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    home = tmp_path_factory.mktemp("models-home")
    cifs = pd.DataFrame(list(islice(iter_cifs(MP2025_ARCHIVE), 800)), columns=["material_id", "cif"])
    structures = label_cifs(cifs)
    train_all(structures, home / "artifacts")
    return home, structures


def test_train_all_writes_artifacts_and_table_one(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    home, structures = trained
    for name in ("eml.json", "esml.json", "eml_subsets.csv"):
        assert (home / "artifacts" / name).is_file()
    report = table_one(structures, home / "artifacts")
    table = report["table"]
    assert set(table) == {"sML", "eML", "esML"}
    assert table["esML"]["mp"]["labels_match_training"] is True
    assert table["esML"]["mp"]["n"] == pytest.approx(0.2 * (structures["status"] == "ok").sum(), abs=1)
    assert table["sML"]["mp"] is None and report["paper"]["eML"]["exp40"] == 97.5
    md = to_markdown(report)
    assert md.startswith("| model |") and "| esML |" in md
    paths = write_report(report, tmp_path)
    assert json.loads(paths["json"].read_text())["table"]["eML"]["exp40"]["n"] == 40
    assert paths["figure"].stat().st_size > 10_000


def test_table_one_is_saved_and_reused_until_a_model_changes(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    """`lisearch report`'s path: the first call computes Table I and saves it beside the artifacts; the next one
    reads it (the structures are not even loaded) and writes identical files; a changed model file recomputes."""
    from lisearch.report import table_one_saved

    home, structures = trained
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for name in ("eml.json", "esml.json"):
        (artifacts / name).write_bytes((home / "artifacts" / name).read_bytes())
    loads: list[int] = []

    def load() -> pd.DataFrame:
        loads.append(1)
        return structures

    first, reused = table_one_saved(load, artifacts, tmp_path / "warehouse")
    assert not reused and loads == [1] and (artifacts / "metrics" / "table1.json").is_file()
    again, reused = table_one_saved(load, artifacts, tmp_path / "warehouse")
    assert reused and loads == [1]
    a, b = write_report(first, tmp_path / "a"), write_report(again, tmp_path / "b")
    assert a["json"].read_bytes() == b["json"].read_bytes() and a["markdown"].read_text() == b["markdown"].read_text()
    (artifacts / "eml.json").write_text((artifacts / "eml.json").read_text() + "\n")  # another file: another digest
    _, reused = table_one_saved(load, artifacts, tmp_path / "warehouse")
    assert not reused and loads == [1, 1]
    _, reused = table_one_saved(load, artifacts, tmp_path / "warehouse", reuse=False)  # --retrain
    assert not reused and loads == [1, 1, 1]


def test_saved_metrics_round_trip_arrays_frames_and_refuse_another_key(tmp_path: Path):
    import numpy as np

    from lisearch.saved_metrics import load_metrics, metrics_key, save_metrics

    model = tmp_path / "m.json"
    model.write_text("{}")
    key = metrics_key([model], settings={"a": 1})
    report = {"x": np.arange(3.0), "rows": [{"n": np.int64(4)}], "frame": pd.DataFrame({"f": ["Li3N"], "p": [0.5]})}
    save_metrics(tmp_path / "metrics", "demo", key, report)
    back = load_metrics(tmp_path / "metrics", "demo", key)
    assert back is not None
    assert back["x"].dtype == np.float64 and back["x"].tolist() == [0.0, 1.0, 2.0] and back["rows"] == [{"n": 4}]
    pd.testing.assert_frame_equal(back["frame"], report["frame"])
    assert load_metrics(tmp_path / "metrics", "demo", metrics_key([model], settings={"a": 2})) is None
    model.write_text("{ }")
    assert load_metrics(tmp_path / "metrics", "demo", metrics_key([model], settings={"a": 1})) is None


def test_the_measured_validation_key_holds_obelixs_files_not_the_derived_prototype_index(tmp_path: Path):
    """The saved measured validation is keyed by OBELiX's own files; the prototype index lisearch derives from its
    CIFs (no measured number depends on it) is not part of the key, so regenerating it keeps saved reports."""
    from lisearch.config import load_settings
    from lisearch.datasets import OBELIX_PROTOTYPES
    from lisearch.measured.validation import _validation_key

    files = _validation_key(load_settings(overrides=[f"paths.home={tmp_path}"]), True)["files"]
    assert {"all.csv", "all_cifs.tar.gz", "train_idx.csv", "test_idx.csv"} <= set(files)
    assert OBELIX_PROTOTYPES.name not in files


def _predict(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lisearch_cmd("predict", *args), env=cli_env(home), capture_output=True, text=True, timeout=300
    )


def test_predict_formulas_and_csv(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    home, _ = trained
    out = _predict(home, "Li7La3Zr2O12", "LiPO3", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["formula"] for r in rows] == ["Li7La3Zr2O12", "LiPO3"]
    assert rows[0]["neutral_pymatgen_common"] is True and rows[1]["neutral_pymatgen_common"] is True
    assert rows[0]["esml_label"] == int(rows[0]["esml_score"] > 0)
    # LLZO from the element tables: 24 atoms, 839.7 g/mol -> 34.99 g/mol per atom; 14.87 USD/kg
    assert rows[0]["cost_per_kg"] == pytest.approx(14.8729, abs=1e-3)
    assert rows[0]["mean_atomic_mass"] == pytest.approx(34.98885, abs=1e-4)

    csv = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["LiPO3", "Li2O)", "NaCl", "LiXx", "Li3PS4"]}).to_csv(csv, index=False)
    result = tmp_path / "out.csv"
    out = _predict(home, "--csv", str(csv), "--output", str(result))
    assert out.returncode == 0, out.stderr
    frame = pd.read_csv(result)
    assert frame["error"].isna().tolist() == [True, False, False, False, True]
    assert "contains no Li" in frame.loc[2, "error"] and "unknown element Xx" in frame.loc[3, "error"]
    assert frame.loc[[0, 4], "esml_score"].notna().all()


def test_predict_refuses_corrupted_artifact(trained: tuple[Path, pd.DataFrame], tmp_path: Path):
    home, _ = trained
    broken = tmp_path / "home"
    (broken / "artifacts").mkdir(parents=True)
    for name in ("eml.json", "esml.json"):
        text = (home / "artifacts" / name).read_text()
        (broken / "artifacts" / name).write_text(text if name == "eml.json" else text[: len(text) // 2])
    out = _predict(broken, "LiPO3")
    assert out.returncode == 2 and "truncated or corrupted" in out.stderr and "Traceback" not in out.stderr
    missing = _predict(tmp_path / "nothing", "LiPO3")
    assert missing.returncode == 2 and "lisearch train" in missing.stderr
