"""The Python API: every step of lisearch as a function, for notebooks and scripts (re-exported by :mod:`lisearch`).

The command line and the jobs call the same library functions; these add keyword arguments in place of
``--set section.key=value`` strings. Every function takes ``settings`` (default: :func:`settings` with no profile,
i.e. ``conf/local.toml`` and ``LISEARCH_HOME``); keyword arguments left at None keep the value of ``settings``.
Functions that run Spark take ``spark`` (default: the session for ``settings``, created once per process); importing
:mod:`lisearch` never imports pyspark.

Example (a small screen on a laptop)::

    import lisearch
    s = lisearch.settings(home="/tmp/ls")               # a fresh home folder
    lisearch.label(limit=500, settings=s)               # sML labels of 500 bundled MP structures
    lisearch.train(settings=s)                          # eML and esML into /tmp/ls/artifacts
    run = lisearch.screen(["O", "P", "S", "Na"], step=5, run_id="small", settings=s)
    run["funnel"]                                       # the funnel as a DataFrame
    lisearch.table("candidates", run_id="small", settings=s).head()
    lisearch.predict(["Li3PO4", "Li7La3Zr2O12"], settings=s)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lisearch.config import Settings, load_settings
from lisearch.screening.records import ScreenSummary


def settings(profile: str | None = None, home: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings of a profile (``local`` by default, ``paper``, a .toml path) with ``home`` (the folder of tables,
    artifacts and reports) and ``overrides`` as ``{"section.key": value}`` keywords written with ``__``, e.g.
    ``settings(screen__step=5, spark__master="local[4]")``. Unknown keys and bad values raise ``ConfigError``."""
    items = [f"{k.replace('__', '.', 1)}={v}" for k, v in overrides.items()]
    if home is not None:
        items.append(f"paths.home={Path(home).expanduser().resolve()}")
    return load_settings(profile, items)


def _with(base: Settings | None, section: str, **values: Any) -> Settings:
    """``base`` (default: the local profile) with the non-None ``values`` set in ``section`` (checked as usual)."""
    base = base or load_settings()
    current = getattr(base, section)
    given = {k: v for k, v in values.items() if v is not None}
    return dataclasses.replace(base, **{section: dataclasses.replace(current, **given)}) if given else base


def _joined(items: str | Sequence[Any] | None) -> str | None:
    return items if items is None or isinstance(items, str) else ",".join(str(i) for i in items)


def featurize(structures: Sequence[Any], partial_occupancy: str = "sample") -> pd.DataFrame:
    """sML's five Sendek features of pymatgen ``Structure`` objects or CIF texts, with sML's probability and label.

    Returns one row per structure: the five features (Angstrom, or dimensionless for ionicity and coordination),
    ``p_superionic`` (0..1), ``label`` (1, 0, or -1 when not labelled), ``status`` and ``reason`` (why a structure
    could not be featurized). Disordered structures are ordered as in ``lisearch label-structures``.
    """
    from lisearch.structure.labelling import label_cifs

    cifs = [s if isinstance(s, str) else s.to(fmt="cif") for s in structures]
    batch = pd.DataFrame({"material_id": [str(i) for i in range(len(cifs))], "cif": cifs})
    return label_cifs(batch, partial_occupancy=partial_occupancy).drop(columns="material_id")


def predict(
    formulas: Sequence[str], models: Sequence[str] | None = None, settings: Settings | None = None
) -> pd.DataFrame:
    """Scores of formulas (e.g. ``["Li3PO4"]``) by the trained models (``esml``, ``eml``, ``atom2vec``,
    ``measured``; default every trained one), with charge neutrality per oxidation-state list, cost (USD/kg) and
    mean atomic mass (g/mol per atom); a bad formula is an ``error`` for its row. Same as ``lisearch predict``."""
    from lisearch.prediction import predict_with_artifacts

    s = settings or load_settings()
    return predict_with_artifacts(list(formulas), s.paths.artifacts_dir, models)


def label(
    source: str | Path | None = None, limit: int | None = None, force: bool | None = None,
    settings: Settings | None = None, spark: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Label crystal structures with sML into the Delta table ``structures`` (Spark; incremental: ids already there
    are skipped unless ``force``). ``source``: ``"bundled"`` (the MP 2025 archive), a folder or a tar of CIFs.
    Returns the job summary (counts, timings). Same as ``lisearch label-structures``."""
    from lisearch.spark.label import run_label_job

    s = _with(settings, "label", source=None if source is None else str(source), limit=limit, force=force)
    return run_label_job(s, spark=spark)


def train(
    class_weight: str | None = None, C: float | None = None, descriptors: str | None = None,
    esml_name: str | None = None, seed: int = 0, settings: Settings | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train eML (exp40) and esML (the sML labels of ``structures``) into the artifacts folder (Spark reads the
    table). ``class_weight``: ``balanced``, ``none`` or ``1:w``; ``descriptors``: ``all``, ``eml`` or names;
    ``esml_name``: the artifact's name (``esml``). Returns the training summary. Same as ``lisearch train``."""
    from lisearch.models.training import train_all
    from lisearch.spark.models import read_structures

    s = _with(settings, "train", class_weight=class_weight, C=C, descriptors=descriptors, esml_name=esml_name)
    return train_all(read_structures(s), s.paths.artifacts_dir, seed=seed, esml=s.train)


def screen(
    elements: str | Sequence[str] | None = None, step: int | None = None, model: str | None = None,
    oxidation_list: str | None = None, limits: tuple[float, float] | None = None,
    sizes: Sequence[int] | None = None, exclude: str | Sequence[str] | None = None, run_id: str | None = None,
    settings: Settings | None = None, spark: Any = None,
) -> ScreenSummary:  # fmt: skip
    """Screen the composition space on Spark into ``candidates``, ``funnel``, ``funnel_by_set`` and ``runs``.

    ``elements``: partners of Li (``"all"`` or symbols); ``step``: percent; ``model``: artifact name or path;
    ``oxidation_list``: one of :data:`lisearch.chemistry.elements.OXIDATION_LISTS`; ``limits``: (USD/kg, g/mol per
    atom); ``sizes``: partner counts (2, 3, and 4 for quinaries, whose runs write only the plausible survivors:
    ``screen.plausible_only``); ``run_id`` (``run.id``): re-using one replaces that run, none mints a new one. A run
    predicted to write more rows than ``screen.max_candidate_rows`` stops before Spark starts. Returns the run's
    summary with ``run_id``, ``funnel`` (a dict: stage -> exact count, None where not computed) and
    ``candidate_rows`` (written, and as predicted). Same as ``lisearch screen``.
    """
    from lisearch.spark.screen import run_screen

    cost, mass = limits if limits is not None else (None, None)
    s = _with(
        settings, "screen", elements=_joined(elements), step=step, model=model, oxidation_list=oxidation_list,
        max_cost_per_kg=cost, max_mean_atomic_mass=mass, sizes=_joined(sizes), exclude=_joined(exclude),
    )  # fmt: skip
    return run_screen(
        _with(s, "run", id=run_id), spark=spark
    )  # plans first: bad input stops there, before Spark starts


def narrow(
    run_id: str | None = None, anion: str | None = None, max_z: int | None = None, stability: bool | None = None,
    max_formula_atoms: int | None = None, settings: Settings | None = None, spark: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Narrow a screen run to stable oxides (``stable_oxides``): Z <= ``max_z``, the ``anion`` present, the stability
    proxies when ``stability``, at most ``max_formula_atoms`` atoms (0: any). Returns ``stable`` (distinct
    compositions), ``top`` and ``table_iii`` (the first stage that removes each Table III composition). ``run_id``
    (``run.id``): the screen run, by default the last that succeeded. Same as ``lisearch narrow``."""
    from lisearch.spark.narrow import run_narrow

    values = {"anion": anion, "max_z": max_z, "stability": stability, "max_formula_atoms": max_formula_atoms}
    return run_narrow(_with(_with(settings, "narrow", **values), "run", id=run_id), spark=spark)


def shortlist(
    run_id: str | None = None, top_per_family: int | None = None, max_rows: int | None = None,
    settings: Settings | None = None, spark: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """The plausible candidates of a screen run, best per chemical family with their reasons (the ``shortlist``
    table and ``<home>/reports/shortlist_<run>.{csv,md,html}``). Returns ``shortlist`` (a DataFrame) and ``funnel``.
    ``run_id`` (``run.id``): the screen run, by default the last that succeeded. Same as ``lisearch shortlist``."""
    from lisearch.spark.shortlist import run_shortlist

    s = _with(settings, "shortlist", top_per_family=top_per_family, max_rows=max_rows)
    return run_shortlist(_with(s, "run", id=run_id), spark=spark)


def find_materials(
    run_id: str | None = None, top: int | None = None, formulas: Sequence[str] | None = None, restart: bool = False,
    settings: Settings | None = None, spark: Any = None,
) -> pd.DataFrame:  # fmt: skip
    """Predicted materials (candidate structures relaxed by the potential, energy above the hull) for the ``top``
    (``materials.top``) rows of a run's shortlist, or for ``formulas`` (then ``run_id`` names their rows). Returns the
    run's `materials` rows; a stopped run resumes unless ``restart``. Same as ``lisearch materials`` (Spark)."""
    from lisearch.errors import InputError
    from lisearch.spark.materials import materials_frame, run_materials
    from lisearch.spark.session import get_session

    if formulas is not None and not run_id:
        raise InputError("Formulas given directly need run_id=NAME: the `materials` rows are stored under it.")
    s = _with(_with(settings, "materials", top=top), "run", id=run_id)
    summary = run_materials(s, s.materials.top, list(formulas) if formulas is not None else None, restart, spark)
    return materials_frame(spark or get_session(s), s, summary["run_id"])


def predict_structure(formulas: Sequence[str], settings: Settings | None = None) -> pd.DataFrame:
    """Candidate structures of a few formulas relaxed by the potential, with their energy above the hull, in this
    process (no Spark): one row per (formula, candidate), the relaxed structure as CIF text. Same as ``lisearch
    predict-structure``."""
    from lisearch.materials.pipeline import predict_materials

    s = settings or load_settings()
    return predict_materials(list(formulas), s.paths.warehouse_dir, s.materials, mobility=s.mobility)


def paper_study(
    sample: int = 400_000, seed: int = 0, output: str | Path | None = None, settings: Settings | None = None
) -> Any:
    """The sweep of the paper's open choices (:mod:`lisearch.downstream.study`) on a fixed sample of ``sample``
    compositions; writes ``paper_study.{md,json,csv,png}`` to ``output`` (default ``<home>/reports``) and returns the
    :class:`~lisearch.downstream.study.StudyResult` (``.paths`` added). Same as ``lisearch paper-study``."""
    from lisearch.chemistry.elements import DESCRIPTORS
    from lisearch.downstream.study import run_study, write_study
    from lisearch.errors import InputError
    from lisearch.models.artifact import load_artifact
    from lisearch.models.training import mp_set
    from lisearch.spark.models import read_structures

    s = settings or load_settings()
    eml_path = s.paths.artifacts_dir / "eml.json"
    if not eml_path.is_file():
        raise InputError(f"paper-study needs eML's descriptor subset from {eml_path}: run `lisearch train` first.")
    if sample < 1000:
        raise InputError(f"sample is {sample}: use at least 1000 compositions (default 400000).")
    eml = tuple(load_artifact(eml_path)["payload"]["descriptors"])
    result = run_study(mp_set(read_structures(s)), {"all": tuple(DESCRIPTORS), "eml": eml}, n=sample, seed=seed)
    paths = write_study(result, Path(output) if output is not None else s.paths.home / "reports")
    return dataclasses.replace(result, paths=paths)


def table(name: str, run_id: str | None = None, settings: Settings | None = None, spark: Any = None) -> pd.DataFrame:
    """A result table (``candidates``, ``funnel``, ``stable_oxides``, ``shortlist``, ...) as pandas, optionally one
    run's rows; integer columns in pandas' nullable integer types (a null does not turn them into floats). A missing
    table, or a run id that breaks the run-id rule, is an ``InputError`` that says what to do."""
    from pyspark.sql import functions as F

    from lisearch.run_ids import check_run_id
    from lisearch.spark.catalog import read_table
    from lisearch.spark.session import get_session
    from lisearch.spark.sql import to_pandas_exact

    s = settings or load_settings()
    if run_id is not None:
        check_run_id(run_id, "run_id")
    frame = read_table(spark or get_session(s), s.paths.warehouse_dir, name)
    return to_pandas_exact(frame.filter(F.col("run_id") == run_id) if run_id is not None else frame)


__all__ = [
    "featurize",
    "find_materials",
    "label",
    "narrow",
    "paper_study",
    "predict",
    "predict_structure",
    "screen",
    "settings",
    "shortlist",
    "table",
    "train",
]
