"""Typed, frozen settings built from embedded defaults, a ``conf/`` profile and command-line overrides.

Order of precedence (later wins): the defaults below, the profile file (``conf/<profile>.toml`` or a path; a
profile may start with ``extends = "<profile>"`` to build on another), then ``--set section.key=value`` overrides.
Unknown sections or keys are errors, so a typo never silently falls back to a default.

Folders: ``paths.home`` (default: ``$LISEARCH_HOME``, else ``var/`` in a source checkout, else
``~/.lisearch``) holds ``warehouse/`` and ``artifacts/`` unless those are set explicitly; relative paths in a
profile are resolved against the home folder. The Delta jars belong to the installation, not to a home
(:func:`default_jars_dir`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lisearch.chemistry.elements import (
    OXIDATION_LISTS,  # lazily: elements reads the data tables
    default_elements,
    symbols,
)
from lisearch.errors import ConfigError
from lisearch.measured.calibration import CALIBRATIONS, CUT_RULES, P_FAST_SOURCES
from lisearch.models.weights import class_weight_value
from lisearch.run_ids import check_run_id

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent
DEFAULT_PROFILE = "local"


def _default_home() -> Path:
    env = os.environ.get("LISEARCH_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if (SOURCE_ROOT / "pyproject.toml").is_file():
        return SOURCE_ROOT / "var"
    return Path.home() / ".lisearch"


def default_jars_dir() -> Path:
    """Where the Delta jars of this installation live: ``$LISEARCH_JARS``, else ``var/jars`` of the source checkout
    (where `make setup` puts them), else ``~/.cache/lisearch/jars``. Not under the home folder: the jars belong to
    the installation, the home to the data, so ``LISEARCH_HOME`` can point anywhere without fetching them again."""
    env = os.environ.get("LISEARCH_JARS")
    if env:
        return Path(env).expanduser().resolve()
    if (SOURCE_ROOT / "pyproject.toml").is_file():
        return SOURCE_ROOT / "var" / "jars"
    return Path.home() / ".cache" / "lisearch" / "jars"


def default_conf_dir() -> Path:
    """``$LISEARCH_CONF_DIR``, else ``conf/`` of the source checkout."""
    env = os.environ.get("LISEARCH_CONF_DIR")
    return Path(env).expanduser().resolve() if env else SOURCE_ROOT / "conf"


@dataclass(frozen=True)
class SparkSettings:
    """How to build the Spark session.

    ``delta_source``: ``"jars"`` passes the jar files fetched by ``make setup`` (works offline);
    ``"packages"`` asks Spark to resolve them from a repository (clusters); ``"provided"`` assumes
    spark-submit already put them on the class path (``--jars`` / ``--packages``).
    """

    master: str | None = "local[2]"
    app_name: str = "lisearch"
    delta_source: str = "jars"
    ui: bool = False
    log_level: str = "WARN"
    conf: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        allowed = ("jars", "packages", "provided")
        if self.delta_source not in allowed:
            raise ConfigError(f"spark.delta_source is {self.delta_source!r}; use one of {', '.join(allowed)}.")


@dataclass(frozen=True)
class PathSettings:
    """Folders lisearch reads and writes; ``None`` means "under ``home``"."""

    home: Path = field(default_factory=_default_home)
    jars: Path | None = None
    warehouse: Path | None = None
    artifacts: Path | None = None

    def __post_init__(self) -> None:
        for name in ("home", "warehouse", "artifacts"):
            folder = getattr(self, name)
            if folder is not None and folder.exists() and not folder.is_dir():
                where = "paths.home (LISEARCH_HOME)" if name == "home" else f"paths.{name}"
                raise ConfigError(
                    f"{where} is {folder}, which is a file, not a folder. Point it at a folder (it is created when "
                    "missing), e.g. export LISEARCH_HOME=$HOME/lisearch."
                )

    @property
    def jars_dir(self) -> Path:
        """Folder of the Delta jars (``paths.jars``, else the installation's)."""
        return self.jars or default_jars_dir()

    @property
    def warehouse_dir(self) -> Path:
        """Folder of the Delta tables (``paths.warehouse``, else ``<home>/warehouse``)."""
        return self.warehouse or self.home / "warehouse"

    @property
    def artifacts_dir(self) -> Path:
        """Folder of the model artifacts (``paths.artifacts``, else ``<home>/artifacts``)."""
        return self.artifacts or self.home / "artifacts"


@dataclass(frozen=True)
class LabelSettings:
    """The structure-labelling job (``lisearch label-structures``).

    ``source``: ``"bundled"`` for the shipped Materials Project archive, or a path to a folder of CIF files
    or a ``.tar``/``.tar.gz``/``.tar.xz`` archive of them. ``batch_size``: CIFs per Arrow batch inside
    ``mapInPandas``. ``partitions``: Spark partitions (0 = two per core). ``force``: recompute ids
    already in the table. ``partial_occupancy``: how disordered CIFs are made ordered (``sample`` or
    ``majority``, see :mod:`lisearch.structure.ordering`). ``limit``: label only the first N structures
    (0 = all). ``commit_every``: structures per Delta commit (what a crash can lose at most).
    """

    source: str = "bundled"
    batch_size: int = 64
    partitions: int = 0
    force: bool = False
    partial_occupancy: str = "sample"
    limit: int = 0
    commit_every: int = 4000

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"label.batch_size is {self.batch_size}; use a positive integer such as 64.")
        if self.commit_every < 1:
            raise ConfigError(f"label.commit_every is {self.commit_every}; use a positive integer such as 4000.")
        if self.partial_occupancy not in ("sample", "majority"):
            raise ConfigError(f"label.partial_occupancy is {self.partial_occupancy!r}; use 'sample' or 'majority'.")
        if self.partitions < 0:
            raise ConfigError(f"label.partitions is {self.partitions}; use 0 (automatic) or a positive integer.")


@dataclass(frozen=True)
class ScreenSettings:
    """The composition screen (``lisearch screen``).

    ``elements``: ``"all"`` (Z <= 94 except Li) or comma-separated symbols; ``exclude``: symbols to drop; ``step``:
    percent (divides 100); ``sizes``: ``"2,3"`` (ternaries and quaternaries); ``model``: a model name in the
    artifacts folder (``esml``) or a path to an artifact; ``oxidation_list``: one of
    :data:`lisearch.chemistry.elements.OXIDATION_LISTS`; ``max_cost_per_kg`` (USD/kg) and ``max_mean_atomic_mass``
    (g/mol per atom): limits for the candidates, 0 for no limit (NaN and infinity are refused); ``sets_per_block``:
    element sets per kernel call (a block, the unit of the per-set counts); ``partitions``: Spark partitions, each a
    balanced share of the blocks (0: two per core of the session); ``emit``: write candidates; ``plausible_only``:
    ``"auto"`` (for runs with quinaries), ``"true"`` or ``"false"``: candidates must also pass the plausibility
    rules (thresholds from ``[shortlist]``); ``max_candidate_rows``: a run whose predicted row count (from a sample
    of element sets) exceeds it stops before Spark work (0: no limit); ``resume``: go on with a stopped run of the
    same ``run.id`` (same settings and model) from the partitions it finished, instead of screening it from the
    start.
    """

    elements: str = "all"
    exclude: str = ""
    step: int = 1
    sizes: str = "2,3"
    model: str = "esml"
    oxidation_list: str = "pymatgen_icsd"
    max_cost_per_kg: float = 30.0
    max_mean_atomic_mass: float = 30.0
    sets_per_block: int = 1000
    partitions: int = 0
    emit: bool = True
    plausible_only: str = "auto"
    max_candidate_rows: int = 200_000_000
    resume: bool = False

    def __post_init__(self) -> None:
        if self.plausible_only not in ("auto", "true", "false"):
            raise ConfigError(
                f"screen.plausible_only is {self.plausible_only!r}; use auto (for quinary runs), true or false."
            )
        if self.max_candidate_rows < 0:
            raise ConfigError(
                f"screen.max_candidate_rows is {self.max_candidate_rows}; use a row count, or 0 for no limit."
            )

        self.partners  # noqa: B018 - parses elements, exclude and sizes now: a bad value stops at load time
        self.size_tuple  # noqa: B018
        if self.oxidation_list not in OXIDATION_LISTS:
            raise ConfigError(
                f"screen.oxidation_list is {self.oxidation_list!r}; use one of {', '.join(OXIDATION_LISTS)}."
            )
        if self.sets_per_block < 1:
            raise ConfigError(f"screen.sets_per_block is {self.sets_per_block}; use a positive integer such as 1000.")
        if self.partitions < 0:
            raise ConfigError(f"screen.partitions is {self.partitions}; use 0 (two per core) or a positive integer.")
        for name in ("max_cost_per_kg", "max_mean_atomic_mass"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:  # NaN fails too
                raise ConfigError(f"screen.{name} is {value!r}; give a positive, finite limit (e.g. 30) or 0 for none.")

    @property
    def cost_limit(self) -> float:
        """``max_cost_per_kg`` as the kernel's limit (USD/kg): infinity when it is 0 (no limit)."""
        return limit_value(self.max_cost_per_kg)

    @property
    def mass_limit(self) -> float:
        """``max_mean_atomic_mass`` as the kernel's limit (g/mol per atom): infinity when it is 0 (no limit)."""
        return limit_value(self.max_mean_atomic_mass)

    @functools.cached_property
    def partners(self) -> tuple[str, ...]:
        """The partner elements of Li: ``elements`` ("all": Z <= 94 except Li) without ``exclude``, as written."""
        chosen = default_elements() if self.elements.strip().lower() == "all" else _symbols(self.elements, "elements")
        excluded = set(_symbols(self.exclude, "exclude"))
        return tuple(e for e in chosen if e not in excluded)

    @property
    def plausibility_applies(self) -> bool:
        """Whether candidates must pass the plausibility rules: ``plausible_only``, where ``"auto"`` means for runs
        with quinaries (sizes 4), whose survivors are too many to write all."""
        return self.plausible_only == "true" or (self.plausible_only == "auto" and 4 in self.size_tuple)

    @functools.cached_property
    def size_tuple(self) -> tuple[int, ...]:
        """``sizes`` as numbers of partner elements, e.g. (2, 3)."""
        try:
            return tuple(int(s) for s in self.sizes.split(",") if s.strip())
        except ValueError:
            raise ConfigError(
                f"screen.sizes is {self.sizes!r}: use comma-separated partner counts, e.g. 2,3."
            ) from None


def limit_value(value: float) -> float:
    """A limit setting as a number to compare with: 0 (the settings' "no limit") becomes infinity."""
    return math.inf if value == 0 else float(value)


def limit_text(value: float) -> str:
    """A limit as a setting's text: infinity (no limit) becomes "0", the settings' spelling of no limit."""
    return "0" if math.isinf(value) else f"{value:g}"


def _symbols(text: str, what: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in items if s not in symbols()]
    if unknown:
        raise ConfigError(f"screen.{what} names unknown element(s) {', '.join(unknown)}; use symbols of Z = 1..94.")
    return items


@dataclass(frozen=True)
class TrainSettings:
    """How ``lisearch train`` fits esML: ``esml_name`` (artifact name in the artifacts folder, e.g. ``esml``),
    ``class_weight`` (``balanced``, ``none`` or ``1:w``: weight w on the superionic class), ``C`` (inverse
    regularisation of the linear SVM), ``descriptors`` (``all`` nine, ``eml``: the subset eML chose on exp40, or
    comma-separated names). The screen needs mean descriptors, which esML always uses."""

    esml_name: str = "esml"
    class_weight: str = "balanced"
    C: float = 1.0
    descriptors: str = "all"

    def __post_init__(self) -> None:
        if not self.esml_name or "/" in self.esml_name or self.esml_name.endswith(".json"):
            raise ConfigError(f"train.esml_name is {self.esml_name!r}; use a plain name such as esml or esml_paper.")
        if not self.C > 0:
            raise ConfigError(f"train.C is {self.C}; use a positive number such as 1.0.")
        try:
            class_weight_value(self.class_weight)
        except ValueError:
            raise ConfigError(
                f"train.class_weight is {self.class_weight!r}; use balanced, none or 1:w with w > 0 (e.g. 1:10)."
            ) from None


@dataclass(frozen=True)
class NarrowSettings:
    """Narrowing a screen run (``run.id``) to stable oxides (``lisearch narrow``): ``anion`` that
    must be present (``O``: oxides), ``max_z`` (36: the first four rows), ``top`` rows to print, ``stability``:
    also require the three stability proxies (common states, single anion, electronegativity order; the paper's
    narrowing is only the first two filters), ``max_formula_atoms``: atoms in the reduced formula (0: no limit),
    ``hull``: instead of the stability proxies, keep the compositions whose best predicted structure (the run's
    `materials` rows, ``lisearch materials``) lies within ``materials.hull_window`` of the convex hull."""

    anion: str = "O"
    max_z: int = 36
    top: int = 25
    stability: bool = True
    max_formula_atoms: int = 0
    hull: bool = False

    def __post_init__(self) -> None:
        if self.max_formula_atoms < 0 or self.max_formula_atoms == 1:
            raise ConfigError(
                f"narrow.max_formula_atoms is {self.max_formula_atoms}; use 0 (no limit) or at least 2 (e.g. 10)."
            )


@dataclass(frozen=True)
class MeasuredSettings:
    """Models of measured conductivity (OBELiX) and their validation (``lisearch validate``).

    ``threshold``: conductivity (S/cm) from which a material counts as a fast conductor (label 1);
    ``n_trees``: trees per extremely randomised forest; ``cv_folds``: folds of the leave-chemical-system-out
    cross-validation; ``group_min_fraction``: an element belongs to a composition's chemical system when its
    atomic fraction is at least this (dopants below it do not make a new system); ``ad_quantile``: a composition is
    outside the applicability domain when its distance to the nearest training composition exceeds this quantile of
    the training compositions' own nearest-neighbour distances; ``seed``: forests and folds; ``run_id``: the screen
    run whose candidates ``lisearch score-measured`` scores; ``regressor_aggregate``: the regressor's prediction is
    the ``"mean"`` (default, scikit-learn's) or the ``"median"`` of its trees (see docs/science.md: the median was
    better in grouped CV inside the official training part, worse on the test split and in the CV over all of
    OBELiX); ``calibration``: how P(fast) is recalibrated on out-of-group predictions (``"none"``, the default: see
    docs/science.md, ``"linear"``, ``"sigmoid"`` or ``"isotonic"``, :mod:`lisearch.measured.calibration`);
    ``cut_rule``: the label's cut-off (``"balanced"`` or ``"search"``, ``calibration.CUT_RULES``);
    ``calibration_folds``: the group folds that make the out-of-group predictions; ``coverage``: the share of
    materials the conformal interval of log10 sigma should hold; ``p_fast``: the classifier's forest, ``"balanced"``
    (a class-balanced classification forest, the default) or ``"votes"`` (the share of a regression forest's trees
    predicting >= ``threshold``), ``calibration.P_FAST_SOURCES`` (see docs/science.md).
    """

    threshold: float = 1e-4
    n_trees: int = 300
    cv_folds: int = 10
    group_min_fraction: float = 0.05
    ad_quantile: float = 0.95
    seed: int = 0
    regressor_aggregate: str = "mean"
    calibration: str = "none"
    cut_rule: str = "balanced"
    coverage: float = 0.8
    calibration_folds: int = 5
    p_fast: str = "balanced"

    def __post_init__(self) -> None:
        if self.p_fast not in P_FAST_SOURCES:
            raise ConfigError(f"measured.p_fast is {self.p_fast!r}; use one of {', '.join(P_FAST_SOURCES)}.")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"measured.calibration is {self.calibration!r}; use one of {', '.join(CALIBRATIONS)}.")
        if self.cut_rule not in CUT_RULES:
            raise ConfigError(f"measured.cut_rule is {self.cut_rule!r}; use one of {', '.join(CUT_RULES)}.")
        if not 0 < self.coverage < 1:
            raise ConfigError(
                f"measured.coverage is {self.coverage}; give the intervals' coverage in (0, 1), e.g. 0.8."
            )
        if self.calibration_folds < 2:
            raise ConfigError(f"measured.calibration_folds is {self.calibration_folds}; it must be at least 2.")
        if self.regressor_aggregate not in ("mean", "median"):
            raise ConfigError(f'measured.regressor_aggregate is {self.regressor_aggregate!r}; use "mean" or "median".')
        if not self.threshold > 0:
            raise ConfigError(f"measured.threshold is {self.threshold}; give a conductivity in S/cm such as 1e-4.")
        if self.n_trees < 1 or self.cv_folds < 2:
            raise ConfigError("measured.n_trees must be at least 1 and measured.cv_folds at least 2.")
        if not 0 < self.group_min_fraction < 1 or not 0 < self.ad_quantile <= 1:
            raise ConfigError("measured.group_min_fraction must be in (0, 1) and measured.ad_quantile in (0, 1].")


@dataclass(frozen=True)
class ShortlistSettings:
    """The shortlist (``lisearch shortlist``) of the screen run ``run.id``: ``min_state_frequency`` (an oxidation
    state counts when it is at least this share of the element's non-zero ICSD reports) and ``max_formula_atoms``
    (atoms in the reduced formula): the plausibility rules of :mod:`lisearch.chemistry.plausibility`; ``top_per_family``
    (rows per chemical family), ``max_rows`` (rows in all), ``in_domain_only`` (with the measured models, keep only
    rows inside their applicability domain), ``rank_by`` (with the measured models: ``"log10_sigma"``, the predicted
    conductivity, or ``"lower_bound"``, the low end of its conformal interval, so that confident candidates come
    first), ``show`` (rows printed)."""

    min_state_frequency: float = 0.05
    max_formula_atoms: int = 30
    top_per_family: int = 3
    max_rows: int = 200
    in_domain_only: bool = True
    rank_by: str = "log10_sigma"
    show: int = 15

    def __post_init__(self) -> None:
        if self.rank_by not in ("log10_sigma", "lower_bound"):
            raise ConfigError(f'shortlist.rank_by is {self.rank_by!r}; use "log10_sigma" or "lower_bound".')
        if not 0 <= self.min_state_frequency < 1:
            raise ConfigError(
                f"shortlist.min_state_frequency is {self.min_state_frequency}; use a share in [0, 1), e.g. 0.05."
            )
        if self.max_formula_atoms < 2:
            raise ConfigError(f"shortlist.max_formula_atoms is {self.max_formula_atoms}; use at least 2 (e.g. 30).")
        if self.top_per_family < 1 or self.max_rows < 1:
            raise ConfigError("shortlist.top_per_family and shortlist.max_rows must be at least 1.")


@dataclass(frozen=True)
class RunSettings:
    """The run a job works on, one setting for every job (``--run-id`` of each command): ``id``. The screen writes the
    run ``id`` (empty: a new id from :func:`lisearch.run_ids.new_run_id`; an existing id is replaced); the jobs that
    read a screen run (narrow, shortlist, score-measured) take run ``id`` (empty: the last screen run that succeeded).
    ``lisearch run`` uses ``default`` unless the profile names a run. The old per-section keys (``screen.run_id``,
    ``narrow.run_id``, ``measured.run_id``, ``shortlist.run_id``) still set it."""

    id: str = ""

    def __post_init__(self) -> None:
        if self.id:
            check_run_id(self.id, "run.id", ConfigError)


@dataclass(frozen=True)
class MaterialsSettings:
    """The materials stage (``lisearch predict-structure``): ``candidates`` (structures per composition, by ionic
    substitution on known Li prototypes), ``fmax`` (eV/A: a relaxation converges when every force is below it) and
    ``steps`` (its step limit), ``device`` (``cpu``, or ``cuda`` where a GPU is present), ``relax_phases`` (the
    competing phases relaxed by the potential too; false: static energies on their Materials Project geometry),
    ``hull_window`` (eV/atom: a structure this close to the hull counts as near it), ``top`` (shortlist rows that
    ``lisearch materials`` and ``lisearch run`` turn into materials)."""

    top: int = 10
    candidates: int = 5
    fmax: float = 0.1
    steps: int = 300
    device: str = "cpu"
    relax_phases: bool = False
    hull_window: float = 0.1

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.steps < 1 or self.top < 1:
            raise ConfigError(
                f"materials.candidates ({self.candidates}), materials.steps ({self.steps}) and materials.top "
                f"({self.top}) must be at least 1."
            )
        if not self.fmax > 0 or not self.hull_window >= 0:
            raise ConfigError(
                f"materials.fmax ({self.fmax}) must be > 0 eV/A and materials.hull_window ({self.hull_window}) >= 0."
            )
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ConfigError(f'materials.device is {self.device!r}; use "cpu", "cuda" or "cuda:N".')


#: Recorded frames an MD run needs at least (the diffusivity is fitted over a part of their lags).
MIN_MD_FRAMES = 10


@dataclass(frozen=True)
class MobilitySettings:
    """Does Li move (``lisearch mobility``, and the structure columns of ``materials``): ``structure_descriptors``
    (sML and BVSE of every relaxed structure in `materials`), ``bvse_resolution`` (A, grid spacing of the
    bond-valence site-energy map; coarsened for cells that would need more than ``bvse_max_points`` grid points),
    ``bvse_encut`` (eV: a path needing more is reported as none), ``top`` (materials that ``lisearch mobility``
    simulates), ``temperatures`` (K, one or more, comma separated: more than one gives an Arrhenius fit),
    ``md_ps`` (simulated picoseconds per temperature after ``equilibration_ps``), ``timestep_fs``, ``sample_fs``
    (how often Li positions are recorded), ``min_cell_length`` (A: the simulation cell is a supercell at least this
    long in every direction), ``melt_msd`` (A^2: a framework (non-Li) mean squared displacement above it at the end
    marks the run as melted or amorphised), ``seed`` (initial velocities and thermostat)."""

    structure_descriptors: bool = True
    bvse_resolution: float = 0.2
    bvse_encut: float = 5.0
    bvse_max_points: int = 400_000
    top: int = 3
    temperatures: str = "1000"
    md_ps: float = 5.0
    equilibration_ps: float = 0.5
    timestep_fs: float = 2.0
    sample_fs: float = 20.0
    min_cell_length: float = 9.0
    melt_msd: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        positive = {"bvse_resolution": self.bvse_resolution, "bvse_encut": self.bvse_encut, "md_ps": self.md_ps,
                    "timestep_fs": self.timestep_fs, "sample_fs": self.sample_fs, "melt_msd": self.melt_msd,
                    "bvse_max_points": self.bvse_max_points, "top": self.top}  # fmt: skip
        bad = [f"mobility.{k} = {v}" for k, v in positive.items() if not v > 0]
        if bad or self.equilibration_ps < 0 or self.min_cell_length < 0:
            raise ConfigError(f"{', '.join(bad) or 'mobility.equilibration_ps or mobility.min_cell_length'}: must be "
                              "> 0 (equilibration_ps and min_cell_length >= 0).")  # fmt: skip
        if self.sample_fs < self.timestep_fs:
            raise ConfigError(f"mobility.sample_fs ({self.sample_fs}) must be at least mobility.timestep_fs "
                              f"({self.timestep_fs}): positions are recorded every few steps.")  # fmt: skip
        if self.md_ps * 1000 / self.sample_fs < MIN_MD_FRAMES:
            raise ConfigError(f"mobility.md_ps ({self.md_ps}) records only {self.md_ps * 1000 / self.sample_fs:g} "
                              f"frames every {self.sample_fs} fs; a diffusivity needs >= {MIN_MD_FRAMES}: lengthen "
                              "md_ps or shorten sample_fs.")  # fmt: skip
        self.temperature_list  # noqa: B018 (validates the text)

    @property
    def temperature_list(self) -> tuple[float, ...]:
        """The MD temperatures (K), from ``temperatures`` ("1000" or "1000, 750, 600" or a TOML list)."""
        parts = [p.strip() for p in self.temperatures.strip("[]() ").split(",") if p.strip()]
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            values = ()
        if not values or not all(math.isfinite(t) and t > 0 for t in values) or len(set(values)) != len(values):
            raise ConfigError(f"mobility.temperatures is {self.temperatures!r}; give distinct temperatures in K, "
                              'e.g. "1000" or "1000, 750, 600, 500".')  # fmt: skip
        return values


#: Addresses that only this machine reaches; any other bind address needs a secret (``lisearch serve``).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ServeSettings:
    """The SQL endpoint of ``lisearch serve``: ``host`` (bind address; loopback by default, any other needs a secret),
    ``thrift_port`` (HiveServer2 protocol: beeline, JDBC/ODBC clients), ``connect_port`` (Spark Connect),
    ``secret_env`` (environment variable holding the password/token) or ``secret_file`` (a file holding it, readable
    by its owner only), ``allow_writes`` (false: statements that write or drop are refused), ``refresh`` (seconds
    between looks for tables that jobs created since), ``start_timeout`` (seconds to wait for the endpoint)."""

    host: str = "127.0.0.1"
    thrift_port: int = 10000
    connect_port: int = 15002
    secret_env: str = "LISEARCH_SERVE_SECRET"
    secret_file: str = ""
    allow_writes: bool = False
    refresh: float = 2.0
    start_timeout: float = 180.0

    def __post_init__(self) -> None:
        for key in ("thrift_port", "connect_port"):
            port = getattr(self, key)
            if not 1 <= port <= 65535:
                raise ConfigError(f"serve.{key} is {port}; give a TCP port between 1 and 65535 (e.g. 10000, 15002).")
        if self.thrift_port == self.connect_port:
            raise ConfigError(f"serve.thrift_port and serve.connect_port are both {self.thrift_port}; give two ports.")
        if not self.host.strip():
            raise ConfigError('serve.host is empty; give an address to bind, e.g. "127.0.0.1".')
        if not self.refresh > 0 or not self.start_timeout > 0:
            raise ConfigError(
                f"serve.refresh ({self.refresh}) and serve.start_timeout ({self.start_timeout}) must be > 0 seconds."
            )

    @property
    def loopback(self) -> bool:
        """True when only this machine can reach the endpoint."""
        return self.host in LOOPBACK_HOSTS


@dataclass(frozen=True)
class Settings:
    """All settings of one lisearch process. Build with :func:`load_settings`."""

    profile: str = DEFAULT_PROFILE
    spark: SparkSettings = field(default_factory=SparkSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    screen: ScreenSettings = field(default_factory=ScreenSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    narrow: NarrowSettings = field(default_factory=NarrowSettings)
    measured: MeasuredSettings = field(default_factory=MeasuredSettings)
    shortlist: ShortlistSettings = field(default_factory=ShortlistSettings)
    materials: MaterialsSettings = field(default_factory=MaterialsSettings)
    mobility: MobilitySettings = field(default_factory=MobilitySettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (recorded next to job outputs)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, tuple) and all(isinstance(v, tuple) for v in value):
                return {k: v for k, v in value}
            return value

        out: dict[str, Any] = {"profile": self.profile}
        for section in _SECTIONS:
            obj = getattr(self, section)
            out[section] = {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        out["paths"].update(
            jars_dir=str(self.paths.jars_dir),
            warehouse_dir=str(self.paths.warehouse_dir),
            artifacts_dir=str(self.paths.artifacts_dir),
        )
        return out


_SECTIONS: dict[str, type] = {
    "spark": SparkSettings,
    "paths": PathSettings,
    "label": LabelSettings,
    "screen": ScreenSettings,
    "train": TrainSettings,
    "narrow": NarrowSettings,
    "measured": MeasuredSettings,
    "shortlist": ShortlistSettings,
    "materials": MaterialsSettings,
    "mobility": MobilitySettings,
    "serve": ServeSettings,
    "run": RunSettings,
}
#: Keys of earlier lisearch versions that now set ``run.id`` (one run id for every job).
_RUN_ID_ALIASES = {("screen", "run_id"), ("narrow", "run_id"), ("measured", "run_id"), ("shortlist", "run_id")}


def available_profiles(conf_dir: Path | None = None) -> list[str]:
    """Names of the profiles in ``conf_dir`` (default: :func:`default_conf_dir`)."""
    conf_dir = conf_dir or default_conf_dir()
    return sorted(p.stem for p in conf_dir.glob("*.toml")) if conf_dir.is_dir() else []


def _read_profile(profile: str, conf_dir: Path) -> tuple[str, dict[str, Any]]:
    path = Path(profile)
    if path.suffix == ".toml" or os.sep in profile:
        name = path.stem
    else:
        name, path = profile, conf_dir / f"{profile}.toml"
    if not path.is_file():
        known = ", ".join(available_profiles(conf_dir)) or "none found"
        raise ConfigError(
            f"Unknown profile {profile!r}: there is no {path}. Use one of the profiles in {conf_dir} ({known}), "
            "or pass the path of a .toml file."
        )
    try:
        with path.open("rb") as fh:
            return name, tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The profile file {path} is not valid TOML ({exc}). Fix the file and run again.") from exc


def _profile_chain(profile: str, conf_dir: Path) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """A profile and the profiles it extends (top-level ``extends = "local"``), base first."""
    chain: list[tuple[str, dict[str, Any]]] = []
    name: str | None = None
    current: str | None = profile
    while current is not None:
        link, raw = _read_profile(current, conf_dir)
        name = name or link
        if any(link == seen for seen, _ in chain):
            raise ConfigError(f"Profile {name!r} extends itself through {link!r}; remove the cycle of `extends`.")
        parent = raw.pop("extends", None)
        if parent is not None and not isinstance(parent, str):
            raise ConfigError(f'`extends` in profile {link!r} must be a profile name, e.g. extends = "local".')
        chain.insert(0, (link, raw))
        current = parent
    return str(name), chain


def _coerce(section: str, key: str, value: Any, annotation: Any) -> Any:
    where = f"{section}.{key}"
    text = str(annotation)
    if key == "conf":
        if not isinstance(value, dict):
            raise ConfigError(f'{where} must be a table of Spark settings, e.g. [spark.conf] with key = "value".')
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if value is None:
        return None
    if "Path" in text:
        path = Path(str(value)).expanduser()
        return path
    if "bool" in text:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{where} must be true or false, not {value!r}.")
    if "int" in text and "str" not in text:
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} must be an integer, not {value!r}.") from exc
    if "float" in text:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} must be a number, not {value!r}.") from exc
        if not math.isfinite(number):
            raise ConfigError(f"{where} is {value!r}: give a finite number (for a limit, 0 means no limit).")
        return number
    return str(value)


def _apply(raw: dict[str, Any], source: str, into: dict[str, dict[str, Any]]) -> None:
    for section, values in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"Unknown section [{section}] in {source}; known sections: {', '.join(sorted(_SECTIONS))}."
            )
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] in {source} must be a table of settings.")
        hints = typing.get_type_hints(_SECTIONS[section])
        for key, value in values.items():
            if (section, key) in _RUN_ID_ALIASES:
                into.setdefault("run", {})["id"] = _coerce("run", "id", value, str)
                continue
            if key not in hints:
                raise ConfigError(f"Unknown setting {section}.{key} in {source}; known: {', '.join(sorted(hints))}.")
            into.setdefault(section, {})[key] = _coerce(section, key, value, hints[key])


def parse_override(text: str) -> dict[str, Any]:
    """``"label.batch_size=32"`` -> ``{"label": {"batch_size": "32"}}``; ``spark.conf.KEY=V`` sets one Spark conf."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"Override {text!r} is not of the form section.key=value (e.g. label.batch_size=32).")
    dotted, value = text.split("=", 1)
    section, key = dotted.split(".", 1)
    if section == "spark" and key.startswith("conf."):
        return {"spark": {"conf": {key[len("conf.") :]: value}}}
    return {section: {key: value}}


def load_settings(
    profile: str | None = None, overrides: list[str] | tuple[str, ...] = (), conf_dir: Path | None = None
) -> Settings:
    """Settings for ``profile`` (a name in ``conf/`` or a path to a .toml file) with ``overrides`` applied.

    Raises:
        ConfigError: unknown profile, invalid TOML, unknown section or key, or a value of the wrong type.
    """
    conf_dir = conf_dir or default_conf_dir()
    profile = profile or os.environ.get("LISEARCH_PROFILE") or DEFAULT_PROFILE
    name, chain = _profile_chain(profile, conf_dir)
    merged: dict[str, dict[str, Any]] = {}
    for link, raw in chain:
        _apply(raw, f"profile {link!r}", merged)
    for text in overrides:
        parsed = parse_override(text)
        if parsed.get("spark", {}).get("conf") is not None:
            extra = dict(merged.get("spark", {}).get("conf", ()))
            extra.update(parsed["spark"]["conf"])
            parsed = {"spark": {"conf": extra}}
        _apply(parsed, f"override {text!r}", merged)
    paths = merged.get("paths", {})
    home = paths.get("home")
    if home is not None and not home.is_absolute():
        paths["home"] = (conf_dir.parent / home).resolve()
    base = paths.get("home") or _default_home()
    for key in ("jars", "warehouse", "artifacts"):
        if paths.get(key) is not None and not paths[key].is_absolute():
            paths[key] = (base / paths[key]).resolve()
    try:
        return Settings(
            profile=name,
            spark=SparkSettings(**merged.get("spark", {})),
            paths=PathSettings(**paths),
            label=LabelSettings(**merged.get("label", {})),
            screen=ScreenSettings(**merged.get("screen", {})),
            train=TrainSettings(**merged.get("train", {})),
            narrow=NarrowSettings(**merged.get("narrow", {})),
            measured=MeasuredSettings(**merged.get("measured", {})),
            shortlist=ShortlistSettings(**merged.get("shortlist", {})),
            materials=MaterialsSettings(**merged.get("materials", {})),
            mobility=MobilitySettings(**merged.get("mobility", {})),
            serve=ServeSettings(**merged.get("serve", {})),
            run=RunSettings(**merged.get("run", {})),
        )
    except TypeError as exc:  # pragma: no cover - keys were checked above
        raise ConfigError(f"Invalid settings: {exc}") from exc
