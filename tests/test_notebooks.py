"""The notebooks run headless against a small warehouse built here (labels, models, screen, narrowing, atom2vec
reports) and produce their figures. Outputs are not kept."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from lisearch.config import SOURCE_ROOT
from tests.conftest import SHORT_JVM_OPTS, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.spark]

NOTEBOOKS = sorted((SOURCE_ROOT / "notebooks").glob("*.ipynb"))
FAST = {"steps": 150, "learning_rate": 0.03}


@pytest.fixture(scope="module")
def small_home(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from lisearch.models.atom2vec_train import Atom2VecConfig, dim_sweep, element_contributions, train_atom2vec
    from lisearch.models.training import train_all
    from lisearch.spark.label import run_label_job
    from lisearch.spark.models import read_structures
    from lisearch.spark.narrow import run_narrow
    from lisearch.spark.screen import run_screen

    home = tmp_path_factory.mktemp("nb-home")
    settings = settings_for(
        home,
        "label.limit=500",
        "run.id=default",
        "screen.elements=B,N,O,Na,Mg,Al,Si,P,S,Cl,K,Ca",
        "screen.step=5",
        "screen.sets_per_block=50",
        "run.id=default",
        "run.id=default",
    )
    run_label_job(settings, spark=spark)
    structures = read_structures(settings)
    train_all(structures, settings.paths.artifacts_dir)
    cfg = Atom2VecConfig(**FAST)  # type: ignore[arg-type]
    train_atom2vec(structures, settings.paths.artifacts_dir, cfg, seeds=1)
    run_screen(settings, spark=spark)
    run_narrow(settings, spark=spark)
    from lisearch.spark.shortlist import run_shortlist

    run_shortlist(settings, spark=spark)
    reports = home / "reports"
    reports.mkdir(exist_ok=True)
    dim_sweep(structures, (1, 2, 3), seeds=1, cfg=cfg).to_csv(reports / "atom2vec_dim_sweep.csv", index=False)
    element_contributions(structures, 2, cfg)[1].to_csv(reports / "atom2vec_contributions.csv", index=False)
    from lisearch.measured.models import load_transfer
    from lisearch.measured.validation import measured_set, validate, write_validation
    from lisearch.models.loading import load_models

    transfer = load_transfer(settings.paths.artifacts_dir)
    fixed = {"eML": load_models(settings.paths.artifacts_dir)["eml"], "esML": transfer.esml}
    params = {"threshold": 1e-4, "n_trees": 10, "seed": 0, "ad_quantile": 0.95}
    write_validation(validate(measured_set(), fixed, transfer, params, folds=3), reports)
    from lisearch.chemistry.elements import DESCRIPTORS
    from lisearch.downstream.study import StudyChoices, run_study, write_study
    from lisearch.models.training import mp_set

    choices = StudyChoices(class_weight=("balanced", "none"), C=(1.0,), reductions=(("mean",),),
                           limits=((30.0, 30.0),), max_formula_atoms=(0, 10))  # fmt: skip
    eml = tuple(load_models(settings.paths.artifacts_dir)["eml"].descriptors)
    study = run_study(mp_set(structures), {"all": DESCRIPTORS, "eml": eml}, 20_000, choices=choices, min_holdout=0.0)
    write_study(study, reports)
    return home


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5


@pytest.fixture(scope="module")
def kernel(small_home: Path) -> Iterator[KernelManager]:
    """One Jupyter kernel for all the notebooks, started with LISEARCH_HOME = the small home: its Spark session
    (a JVM, ~20 s to start) serves every notebook; each notebook starts from an empty namespace (%reset)."""
    saved = {k: os.environ.get(k) for k in ("LISEARCH_HOME", "PYTHONPATH", "SPARK_SUBMIT_OPTS")}
    os.environ["LISEARCH_HOME"] = str(small_home)
    os.environ["PYTHONPATH"] = str(SOURCE_ROOT) + os.pathsep + (saved["PYTHONPATH"] or "")
    os.environ["SPARK_SUBMIT_OPTS"] = SHORT_JVM_OPTS
    km = KernelManager(kernel_name="python3")
    try:
        km.start_kernel(cwd=str(SOURCE_ROOT / "notebooks"))
        yield km
    finally:
        km.shutdown_kernel(now=True)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless(kernel: KernelManager, path: Path):
    book = nbformat.read(path, as_version=4)
    book.cells.insert(0, nbformat.v4.new_code_cell("%reset -f"))  # nothing left from the notebook before
    NotebookClient(book, km=kernel, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
    del book.cells[0]
    images = [
        o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert images, f"{path.name} produced no figure"
    for cell in (c for c in book.cells if c.cell_type == "code"):
        shown = sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        last = cell.source.strip().splitlines()[-1]
        displays_a_figure = last == "figure" or last.startswith("nb.plot")
        assert shown == int(displays_a_figure), f"{path.name}: {shown} figures from the cell ending {last!r}"
    source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert "def " not in source and "class " not in source  # notebooks hold no logic of their own
