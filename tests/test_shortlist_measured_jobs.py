"""`lisearch score-measured` and `lisearch shortlist` on Spark against the same kernels run in pandas, on a tiny
screen run; their errors stop before Spark work and leave the tables as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lisearch.chemistry.elements import symbols
from lisearch.chemistry.plausibility import plausibility
from lisearch.downstream.shortlisting import shortlist_batch
from lisearch.errors import InputError
from lisearch.measured.models import check_pair, load_measured
from lisearch.measured.scoring import score_candidates
from lisearch.measured.training import train_measured
from lisearch.models.artifact import save_artifact
from lisearch.models.atom2vec import KIND as ATOM2VEC_KIND
from lisearch.models.atom2vec import Atom2VecModel
from lisearch.schema import decode_candidates
from tests.conftest import save_small_esml, small_screen_settings

KEYS = ["z1", "z2", "z3", "pct_li", "pct_1", "pct_2", "pct_3"]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """esML-like and atom2vec-like models made here, and measured models (12 trees) trained on them."""
    folder = tmp_path_factory.mktemp("artifacts")
    save_small_esml(folder)
    rng = np.random.default_rng(1)
    layers = [(rng.normal(size=(6, 4)), rng.normal(size=4)), (rng.normal(size=(4, 1)), rng.normal(size=1))]
    atom2vec = Atom2VecModel(list(symbols()), rng.normal(size=(94, 3)), layers)
    save_artifact(folder / "atom2vec.json", ATOM2VEC_KIND, atom2vec.to_payload())
    train_measured(folder, {"threshold": 1e-4, "n_trees": 12, "seed": 0, "ad_quantile": 0.95})
    return folder


@pytest.fixture(scope="module")
def run_home(spark, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from lisearch.spark.screen import run_screen

    home = tmp_path_factory.mktemp("jobs-home")
    run_screen(_settings(home, artifacts), spark=spark)
    return home


def _settings(home: Path, artifacts: Path, *extra: str):  # type: ignore[no-untyped-def]
    run = ("run.id=j1",)
    return small_screen_settings(home, artifacts, "screen.elements=N,O,Na,Mg,P,S,Cl,K", *run, *extra)


def _candidates(spark, home: Path) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    frame = spark.read.format("delta").load(str(home / "warehouse" / "candidates")).toPandas()
    return frame[frame["run_id"] == "j1"].sort_values(KEYS).reset_index(drop=True)


@pytest.mark.spark
def test_score_measured_equals_the_pandas_kernel(spark, run_home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.measured import run_score_measured

    summary = run_score_measured(_settings(run_home, artifacts), spark=spark)
    cand = _candidates(spark, run_home)
    table = spark.read.format("delta").load(str(run_home / "warehouse" / "measured_candidates")).toPandas()
    table = table.sort_values(KEYS).reset_index(drop=True)
    assert summary["rows"] == len(cand) == len(table) > 100
    classifier, regressor = check_pair(load_measured(artifacts, required=True), "test")
    expected = score_candidates(cand, classifier, regressor)
    for column in ("measured_p_fast", "measured_log10_sigma", "measured_ad_distance"):
        np.testing.assert_allclose(table[column].to_numpy(), expected[column].to_numpy(), rtol=1e-6, atol=1e-6)
    assert table["measured_in_domain"].tolist() == expected["measured_in_domain"].tolist()
    assert (table["measured_label"] == (table["measured_p_fast"] >= 0.5)).all()


@pytest.mark.spark
def test_shortlist_keeps_only_plausible_rows_and_equals_the_pandas_kernel(spark, run_home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.shortlist import format_shortlist, run_shortlist

    settings = _settings(run_home, artifacts, "shortlist.top_per_family=2", "shortlist.max_rows=40")
    summary = run_shortlist(settings, spark=spark)
    shortlist = summary["shortlist"]
    assert 0 < len(shortlist) <= 40 and shortlist["family"].value_counts().max() <= 2
    # every row re-checked on its own: plausible, no element at 0 or in a rare state
    z, amounts = decode_candidates(shortlist)
    recheck = plausibility(z, amounts)
    assert recheck["plausible"].all()
    assert (shortlist[["state_li", "state_1", "state_2"]] != 0).all().all()
    assert shortlist["reasons"].str.contains("charge-balanced as Li+1", regex=False).all()
    assert (np.diff(shortlist["rank_score"].to_numpy()) <= 1e-12).all()  # best first
    # the funnel of the rules equals the pandas kernel over the whole run
    cand = _candidates(spark, run_home)
    measured = load_measured(artifacts, required=True)
    kept, removed = shortlist_batch(cand, settings.shortlist, measured)
    funnel = dict(zip(summary["funnel"]["stage"], summary["funnel"]["count"], strict=True))
    assert funnel["candidates of the run"] == len(cand)
    assert funnel["plausible (and in domain)"] == len(kept)
    assert sum(removed.values()) + len(kept) == len(cand)
    assert funnel["chemical families"] == kept["family"].nunique()
    best = kept.sort_values(["rank_score", "state_probability"], ascending=False).groupby("family").head(2)
    assert set(shortlist["family"]) <= set(best["family"])
    stored = spark.sql("SELECT * FROM shortlist WHERE run_id = 'j1'").toPandas()
    assert len(stored) == len(shortlist)
    for path in summary["paths"].values():
        assert path.is_file() and path.stat().st_size > 100
    assert "<img" in summary["paths"]["html"].read_text() and "shortlist rows" in format_shortlist(summary)


@pytest.mark.spark
def test_jobs_stop_before_spark_on_bad_input(spark, run_home: Path, artifacts: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.measured import run_score_measured
    from lisearch.spark.shortlist import run_shortlist

    with pytest.raises(InputError, match="No model artifact"):
        run_score_measured(_settings(run_home, tmp_path / "no-artifacts"), spark=spark)
    with pytest.raises(InputError, match="'nope' does not exist"):
        run_shortlist(_settings(run_home, artifacts, "run.id=nope"), spark=spark)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("measured_classifier.json", "measured_regressor.json"):
        text = (artifacts / name).read_text()
        (broken / name).write_text(text[: len(text) // 2] if "regressor" in name else text)
    with pytest.raises(InputError, match="truncated or corrupted"):
        run_shortlist(_settings(run_home, broken), spark=spark)


def test_a_batch_where_nothing_survives_still_has_string_columns(run_home: Path, artifacts: Path):
    """On the full default run some Arrow batches have no plausible row: their string columns must stay strings
    (float NaN columns made Arrow fail with 'Cannot convert ChunkedArray to Array')."""
    import pyarrow as pa

    from lisearch.spark.shortlist import _kernel

    settings = _settings(run_home, artifacts).shortlist
    none = pd.array([None], dtype="Int16")
    batch = pd.DataFrame({"run_id": ["x"], "z1": [6], "z2": [35], "z3": none, "pct_li": [20], "pct_1": [40],
                          "pct_2": [40], "pct_3": none, "score": [1.0], "cost_per_kg": [1.0],
                          "mean_atomic_mass": [20.0]})  # fmt: skip
    (out,) = list(_kernel(settings, None, None)(iter([batch])))
    assert out["removed_by"].notna().sum() == 1 and out["family"].isna().all()
    for column in ("family", "formula", "nearest_known", "removed_by"):
        assert isinstance(pa.Array.from_pandas(out[column], type=pa.string()), pa.Array)


@pytest.mark.spark
def test_narrowing_by_the_hull_of_the_predicted_materials(spark, run_home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    """narrow.hull keeps the compositions whose best predicted structure is within materials.hull_window, instead of
    the stability proxies; without the run's materials it says what to run first."""
    from lisearch.schema import MATERIALS_TABLE_COLUMNS
    from lisearch.spark.narrow import run_narrow
    from lisearch.spark.tasks import append_run_rows

    plain = run_narrow(_settings(run_home, artifacts, "narrow.stability=false"), spark=spark)
    found = spark.read.format("delta").load(str(run_home / "warehouse" / "stable_oxides")).toPandas()
    formulas = sorted(found.loc[found["run_id"] == "j1", "formula"].unique())[:3]
    assert plain["stable"] >= 3
    with pytest.raises(InputError, match="run `lisearch materials` first"):
        run_narrow(_settings(run_home, artifacts, "narrow.hull=true"), spark=spark)
    rows = [{"formula": f, "candidate": c, "status": "ok", "e_above_hull": e, "potential": "test"}
            for f, c, e in ((formulas[0], 1, 0.02), (formulas[0], 2, 0.5), (formulas[1], 1, 0.3),
                            (formulas[2], 1, None))]  # fmt: skip
    append_run_rows(spark, run_home / "warehouse" / "materials", rows, MATERIALS_TABLE_COLUMNS, "j1")
    near = run_narrow(_settings(run_home, artifacts, "narrow.hull=true"), spark=spark)
    kept = spark.read.format("delta").load(str(run_home / "warehouse" / "stable_oxides")).toPandas()
    kept = kept[kept["run_id"] == "j1"]
    assert near["stable"] == 1 and set(kept["formula"]) == {formulas[0]}
    assert kept["e_above_hull"].tolist() == pytest.approx([0.02] * len(kept))
