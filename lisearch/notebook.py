"""What the notebooks call: every table and figure in one function each, so the notebooks hold no logic.

Reads the lisearch warehouse through Spark SQL (a local session configured like the jobs'), and the report files
written by the commands. Each function takes optional ``settings`` (default: :func:`load_settings`, which honours
``LISEARCH_HOME``) and raises :class:`lisearch.errors.InputError` naming the command to run when its input is
missing. Figures are matplotlib figures, detached from pyplot, so a notebook shows each exactly once.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from lisearch.chemistry.elements import symbols
from lisearch.config import Settings, load_settings
from lisearch.errors import InputError
from lisearch.run_ids import check_run_id, run_predicate
from lisearch.schema import PARTNERS


def _settings(settings: Settings | None) -> Settings:
    return settings or load_settings()


def _sql(settings: Settings, query: str) -> pd.DataFrame:
    from lisearch.spark.sql import run_sql

    return run_sql(settings, query)


def _pyplot() -> Any:
    from lisearch.figures import pyplot

    return pyplot()


def _once(fig: Any) -> Any:
    """Detach a figure from pyplot before returning it: the inline backend then does not draw it at the end of
    the cell, and the notebook shows it exactly once, where it displays the returned object."""
    _pyplot().close(fig)
    return fig


def _run_exists(settings: Settings, run_id: str) -> None:
    check_run_id(run_id, "run_id")
    from lisearch.spark.narrow import check_run
    from lisearch.spark.session import get_session

    check_run(get_session(settings), settings, run_id)


# ------------------------------------------------------------------------------------------------ Table I
def table_one(settings: Settings | None = None) -> tuple[dict[str, Any], str, Any]:
    """(report, Markdown table, figure) of the paper's Table I recomputed from the `structures` table and the
    trained artifacts (``lisearch train`` / ``train-atom2vec``)."""
    from lisearch.report import plot, to_markdown
    from lisearch.report import table_one as compute
    from lisearch.spark.models import read_structures

    settings = _settings(settings)
    report = compute(read_structures(settings), settings.paths.artifacts_dir, settings.label.partial_occupancy)
    return report, to_markdown(report), _once(plot(report))


# ------------------------------------------------------------------------------------------------- funnel
def funnel(run_id: str = "default", settings: Settings | None = None) -> pd.DataFrame:
    """The funnel of one screen run: stage, description, count, fraction_of_total, fraction_of_previous."""
    settings = _settings(settings)
    _run_exists(settings, run_id)
    return _sql(
        settings,
        "SELECT stage, description, count, fraction_of_total, fraction_of_previous FROM funnel "
        f"WHERE {run_predicate(run_id)} ORDER BY stage_order",
    )


def plot_funnel(frame: pd.DataFrame) -> Any:
    """Bar chart of the stages' counts (log scale)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    shown = frame.dropna(subset=["count"])
    ax.barh(shown["stage"][::-1], shown["count"].astype(float)[::-1])
    ax.set_xscale("log")
    ax.set_xlabel("compositions")
    fig.tight_layout()
    return _once(fig)


PAIR_STAGES = {"conductive": "total", "neutral": "total", "neutral_conductive": "neutral", "survivors": "total"}


def pair_fractions(
    run_id: str = "default", stage: str = "conductive", settings: Settings | None = None
) -> pd.DataFrame:
    """Fraction of ``stage`` per pair of partner elements over every element set holding both (ternaries with
    that pair, quaternaries and quinaries with it plus other elements): a symmetric matrix indexed by symbol (Z
    order); NaN where the stage was not computed (e.g. ``conductive`` for atom2vec runs) or the pair never occurs."""
    if stage not in PAIR_STAGES:
        raise InputError(f"stage {stage!r}: use one of {', '.join(PAIR_STAGES)}.")
    settings = _settings(settings)
    _run_exists(settings, run_id)
    base = PAIR_STAGES[stage]
    present = set(_sql(settings, "SELECT * FROM funnel_by_set LIMIT 0").columns)  # element_4 after quinary runs
    parts = [
        f"SELECT {a} AS a, {b} AS b, {stage} AS num, {base} AS den FROM funnel_by_set "
        f"WHERE {run_predicate(run_id)} AND {b} IS NOT NULL"
        for a, b in itertools.combinations([f"element_{j}" for j in PARTNERS if f"element_{j}" in present], 2)
    ]
    rows = _sql(
        settings,
        f"SELECT a, b, sum(num) / sum(den) AS fraction FROM ({' UNION ALL '.join(parts)}) GROUP BY a, b",
    )
    order = [s for s in symbols() if s in set(rows["a"]) | set(rows["b"])]
    matrix = pd.DataFrame(np.nan, index=order, columns=order)
    for a, b, f in rows.itertuples(index=False):
        matrix.loc[a, b] = matrix.loc[b, a] = np.nan if f is None else float(f)
    return matrix


def plot_pair_heatmap(matrix: pd.DataFrame, title: str = "conductive fraction") -> Any:
    """Heatmap of a pair matrix of :func:`pair_fractions` (one figure, drawn once)."""
    plt = _pyplot()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(max(6, 0.13 * n + 2), max(5, 0.13 * n + 1)))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
    step = 1 if n <= 30 else 3
    ax.set_xticks(range(0, n, step), matrix.columns[::step], rotation=90, fontsize=6)
    ax.set_yticks(range(0, n, step), matrix.index[::step], fontsize=6)
    fig.colorbar(image, ax=ax, label=title)
    ax.set_title(f"{title} by pair of Li's partner elements")
    fig.tight_layout()
    return _once(fig)


# ------------------------------------------------------------------------------------------ stable oxides
def stable_oxides(run_id: str = "default", settings: Settings | None = None, limit: int = 0) -> pd.DataFrame:
    """Rows of `stable_oxides` for one run, best score first (``lisearch narrow`` writes them)."""
    settings = _settings(settings)
    _run_exists(settings, run_id)
    top = f" LIMIT {int(limit)}" if limit else ""
    return _sql(
        settings,
        "SELECT formula, score, cost_per_kg, mean_atomic_mass, known_in_mp, element_1, element_2, element_3, "
        "element_4, pct_li, pct_1, pct_2, pct_3, pct_4 "
        f"FROM stable_oxides WHERE {run_predicate(run_id)} ORDER BY score DESC{top}",
    )


def table_iii(run_id: str = "default", settings: Settings | None = None) -> pd.DataFrame:
    """The paper's Table III against a narrowed run: which are found and which filter removed the others."""
    from lisearch.spark.narrow import table_iii_comparison
    from lisearch.spark.session import get_session

    settings = _settings(settings)
    check_run_id(run_id, "run_id")
    return table_iii_comparison(get_session(settings), settings, run_id)


def plot_stable_oxides(frame: pd.DataFrame) -> Any:
    """Score against cost, coloured by mean atomic mass; known MP compounds ringed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    points = ax.scatter(frame["cost_per_kg"], frame["score"], c=frame["mean_atomic_mass"], s=6, cmap="plasma")
    known = frame[frame["known_in_mp"]]
    ax.scatter(known["cost_per_kg"], known["score"], s=40, facecolors="none", edgecolors="black", label="known in MP")
    fig.colorbar(points, ax=ax, label="mean atomic mass (g/mol)")
    ax.set_xlabel("cost (USD/kg)")
    ax.set_ylabel("model score")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _once(fig)


# ---------------------------------------------------------------------------------------------- shortlist
def shortlist(run_id: str = "default", settings: Settings | None = None) -> pd.DataFrame:
    """The shortlist of one run (``lisearch shortlist`` writes it), best first, with every row's reasons."""
    from lisearch.spark.catalog import is_delta_table, table_path

    settings = _settings(settings)
    _run_exists(settings, run_id)
    if not is_delta_table(table_path(settings.paths.warehouse_dir, "shortlist")):
        raise InputError("There is no `shortlist` table yet: run `lisearch shortlist` (or `make run`) first.")
    return _sql(settings, f"SELECT * FROM shortlist WHERE {run_predicate(run_id)} ORDER BY rank")


def plot_shortlist(frame: pd.DataFrame) -> Any:
    """Rank score against cost (colour: share of atoms differing from the nearest known compound) and the
    families by anion set."""
    from lisearch.downstream.shortlisting import shortlist_figure

    return _once(shortlist_figure(frame))


def table_iii_plausibility(settings: Settings | None = None) -> pd.DataFrame:
    """The paper's Table III under the plausibility rules of the shortlist: the first rule that removes each."""
    from lisearch.downstream.shortlisting import table_iii_plausibility as trace

    return trace(_settings(settings).shortlist)


def paper_study(settings: Settings | None = None) -> tuple[str, pd.DataFrame, Any]:
    """(Markdown summary, every combination (one row each), figure as an image) of ``lisearch paper-study``."""
    from IPython.display import Image

    settings = _settings(settings)
    grid = _report_csv(settings, "paper_study.csv", "paper-study")
    reports = settings.paths.home / "reports"
    return (reports / "paper_study.md").read_text(), grid, Image(filename=str(reports / "paper_study.png"))


# ----------------------------------------------------------------------------------------------- atom2vec
def _report_csv(settings: Settings, name: str, command: str) -> pd.DataFrame:
    path = settings.paths.home / "reports" / name
    if not path.is_file():
        raise InputError(f"No {path}: run `lisearch {command}` first (it writes the CSV and the figure).")
    return pd.read_csv(path)


def atom2vec_sweep(settings: Settings | None = None) -> tuple[pd.DataFrame, Any]:
    """(rows per D_atom and initialisation, figure) from ``lisearch atom2vec-sweep``."""
    from lisearch.report import plot_dim_sweep

    sweep = _report_csv(_settings(settings), "atom2vec_dim_sweep.csv", "atom2vec-sweep")
    return sweep, _once(plot_dim_sweep(sweep))


def atom2vec_contributions(settings: Settings | None = None) -> tuple[pd.DataFrame, Any]:
    """(per-element mean, std and rank, figure) from ``lisearch atom2vec-contributions``."""
    from lisearch.report import plot_contributions

    summary = _report_csv(_settings(settings), "atom2vec_contributions.csv", "atom2vec-contributions")
    return summary, _once(plot_contributions(summary))


# ------------------------------------------------------------------------------------ measured conductivities
def measured_validation(settings: Settings | None = None) -> tuple[pd.DataFrame, str, Any]:
    """(one row per model and scope, Markdown table, figure) from ``lisearch validate`` (``measured.json`` and
    ``measured_predictions.csv``): every model on OBELiX, official split and leave-system-out CV."""
    import json

    from lisearch.measured.validation import to_markdown, validation_figure

    settings = _settings(settings)
    path = settings.paths.home / "reports" / "measured.json"
    if not path.is_file():
        raise InputError(f"No {path}: run `lisearch validate` (or `make run`) first.")
    report = json.loads(path.read_text())
    predictions = _report_csv(settings, "measured_predictions.csv", "validate")
    report["predictions"] = predictions
    return pd.DataFrame(report["rows"]), to_markdown(report), _once(validation_figure(predictions))


def plot_measured_intervals(settings: Settings | None = None, scope: str = "cv") -> Any:
    """Figure: predicted log10 sigma with its conformal interval against the measured value, coloured by
    applicability domain (``scope`` ``"cv"``: leave-system-out CV, ``"test"``: official split), from
    ``lisearch validate``'s ``measured_predictions.csv``."""
    from lisearch.measured.validation import interval_figure

    if scope not in ("cv", "test"):
        raise InputError(f'Unknown scope {scope!r}; use "cv" or "test".')
    return _once(interval_figure(_report_csv(_settings(settings), "measured_predictions.csv", "validate"), scope))


def measured_ablation(rows: pd.DataFrame) -> pd.DataFrame:
    """The measured models with and without the transfer features (columns True / False), per metric and scope."""
    from lisearch.measured.validation import ablation

    return ablation(rows)
