"""Candidate files and run staging (no Spark): Arrow rows against a row-by-row oracle, Delta statistics against
pandas, atomic files, and the staging records a resumed run relies on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lisearch.chemistry.elements import symbols
from lisearch.schema import candidate_columns, survivor_dtypes
from lisearch.screening.files import (
    CandidateFile,
    Staging,
    candidate_table,
    code_sha256,
    file_stats,
    plan_fingerprint,
    remove_uncommitted,
)


def _survivors(n: int, columns: int, seed: int = 0) -> pd.DataFrame:
    """Random kernel survivors: partners 1..k present (z > 0), the others absent (z = 0)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, columns + 1, n)
    frame = {}
    for j in range(1, columns + 1):
        present = j <= k
        frame[f"z{j}"] = np.where(present, rng.integers(4, 95, n), 0)
        frame[f"pct_{j}"] = np.where(present, rng.integers(1, 30, n), 0)
        frame[f"ox_{j}"] = np.where(present, rng.integers(-3, 6, n), 0)
    frame["pct_li"] = 100 - sum(frame[f"pct_{j}"] for j in range(1, columns + 1))
    for c in ("score", "cost_per_kg", "mean_atomic_mass"):
        frame[c] = rng.normal(10, 5, n)
    return pd.DataFrame(frame).astype(survivor_dtypes(columns))


def _oracle_row(row: dict, columns: int) -> dict:
    """One `candidates` row built by hand from one survivor row."""
    js = range(1, columns + 1)
    present = {j: row[f"z{j}"] > 0 for j in js}
    out: dict = {"n_elements": 1 + sum(present.values())}
    for j in js:
        out[f"element_{j}"] = symbols()[row[f"z{j}"] - 1] if present[j] else None
        out[f"z{j}"] = row[f"z{j}"] if present[j] else None
    out["max_z"] = max(row[f"z{j}"] for j in js)
    out["pct_li"] = row["pct_li"]
    for name in ("pct", "ox"):
        for j in js:
            out[f"{name}_{j}"] = row[f"{name}_{j}"] if present[j] else None
    for c in ("score", "cost_per_kg", "mean_atomic_mass"):
        out[c] = row[c]
    return out


@pytest.mark.parametrize("columns", [3, 4])
def test_candidate_table_equals_a_row_by_row_oracle(columns: int):
    survivors = _survivors(300, columns, seed=columns)
    table = candidate_table(survivors, columns)
    assert table.column_names == list(candidate_columns(columns))
    got = table.to_pylist()
    want = [_oracle_row(r, columns) for r in survivors.to_dict("records")]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for c in g:
            assert g[c] == (w[c] if w[c] is None or isinstance(w[c], str) else pytest.approx(w[c], rel=1e-6)), c


def test_file_stats_equal_pandas_over_several_tables():
    frames = [_survivors(200, 4, seed=s) for s in (1, 2)]
    tables = [candidate_table(f, 4) for f in frames]
    frames[1]["z4"] = 0  # a table without any fourth partner: z4 all null there
    tables[1] = candidate_table(frames[1], 4)
    whole = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    cols = ["n_elements", "z3", "z4", "max_z", "score"]
    stats = file_stats(tables, cols)
    assert stats["numRecords"] == 400
    for c in cols:
        assert stats["nullCount"][c] == whole[c].isna().sum()
        assert stats["minValues"][c] == pytest.approx(whole[c].min()) and stats["maxValues"][c] == pytest.approx(
            whole[c].max()
        )
    only_null = file_stats([tables[1]], ["z4"])
    assert only_null["nullCount"] == {"z4": 200} and only_null["minValues"] == {} == only_null["maxValues"]


def test_candidate_file_is_written_whole_or_not_at_all(tmp_path: Path):
    survivors = _survivors(500, 3)
    f = CandidateFile(str(tmp_path), "r", "part-00000-x.c000.snappy.parquet", 3, ["z1", "score", "z4"])
    f.write(survivors.iloc[:200])
    f.write(survivors.iloc[:0])
    f.write(survivors.iloc[200:])
    assert not (tmp_path / "run_id=r" / "part-00000-x.c000.snappy.parquet").exists()  # not before close()
    add = f.close()
    assert add is not None and add["path"] == "run_id=r/part-00000-x.c000.snappy.parquet" and add["dataChange"]
    path = tmp_path / add["path"]
    assert add["size"] == path.stat().st_size
    stats = json.loads(add["stats"])
    assert stats["numRecords"] == 500 and set(stats["nullCount"]) == {"z1", "score"}  # z4: no such column
    back = pq.read_table(path).to_pandas()
    want = candidate_table(survivors, 3).to_pandas()
    assert back["z1"].tolist() == want["z1"].tolist() and back["element_2"].tolist() == want["element_2"].tolist()
    assert [p.name for p in (tmp_path / "run_id=r").iterdir()] == [path.name]  # no temporary file left

    empty = CandidateFile(str(tmp_path), "r", "part-00001-x.c000.snappy.parquet", 3, ["z1"])
    empty.write(survivors.iloc[:0])
    assert empty.close() is None and not (tmp_path / "run_id=r" / "part-00001-x.c000.snappy.parquet").exists()

    failed = CandidateFile(str(tmp_path), "r", "part-00002-x.c000.snappy.parquet", 3, ["z1"])
    failed.write(survivors)
    failed._flush()
    failed.abort()
    assert [p.name for p in (tmp_path / "run_id=r").iterdir()] == [path.name]


def test_staging_records_finished_partitions(tmp_path: Path):
    folder = Staging(str(tmp_path / "screen-r"))
    assert folder.read_manifest() is None and folder.current() is None
    manifest = folder.start("abc", [[0, 1], [2]])
    assert folder.read_manifest() == manifest and manifest["partitions"] == [[0, 1], [2]]
    staging = folder.current()
    assert staging == Staging(folder.root, manifest["token"]) and staging.done() == {}
    stats = pd.DataFrame({"z1": [8, 9], "total": [10, 20]})
    staging.finish_partition(1, stats, {"path": "run_id=r/x.parquet"})
    assert staging.done() == {1: {"path": "run_id=r/x.parquet"}}
    with pytest.raises(RuntimeError, match="1 of 2 partitions have not reported"):
        staging.read_stats(2)
    Staging(folder.root, "an-earlier-run").finish_partition(0, stats, None)  # a late worker of a stopped run
    assert staging.done() == {1: {"path": "run_id=r/x.parquet"}}  # ... is not one of this run's partitions
    staging.finish_partition(0, stats.iloc[:1], None)
    assert staging.read_stats(2)["total"].tolist() == [10, 10, 20]
    again = folder.start("abc", [[0], [1, 2]])  # a new run: the old records are gone, a new token
    assert Staging(folder.root, again["token"]).done() == {} and again["token"] != manifest["token"]
    folder.remove()
    assert not (tmp_path / "screen-r").exists()


def test_code_hash_follows_the_sources_only(tmp_path: Path):
    """A resumed run needs the same code: the hash changes with a source file's bytes or name, not with caches."""
    package = tmp_path / "lisearch"
    (package / "spark").mkdir(parents=True)
    (package / "kernels.py").write_text("X = 1\n")
    (package / "spark" / "screen.py").write_text("Y = 2\n")
    first = code_sha256(package)
    assert len(first) == 64 and code_sha256(package) == first
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "kernels.cpython-311.pyc").write_bytes(b"compiled")
    assert code_sha256(package) == first
    (package / "kernels.py").write_text("X = 2\n")
    assert code_sha256(package) != first
    (package / "kernels.py").write_text("X = 1\n")
    (package / "spark" / "screen.py").rename(package / "spark" / "other.py")
    assert code_sha256(package) != first
    assert code_sha256() == code_sha256(Path(__file__).parents[1] / "lisearch")  # the installed package is this one


def test_fingerprint_and_uncommitted_files(tmp_path: Path):
    assert plan_fingerprint({"a": 1, "b": [2]}, "r") == plan_fingerprint({"b": [2], "a": 1}, "r")
    assert plan_fingerprint({"a": 1}, "r") != plan_fingerprint({"a": 1}, "s")
    folder = tmp_path / "run_id=r"
    folder.mkdir()
    for name in ("part-00000-tok.c000.snappy.parquet", "part-00001-tok.c000.snappy.parquet", ".part-2-tok.tmp",
                 "part-00000-other.c000.snappy.parquet"):  # fmt: skip
        (folder / name).write_text("x")
    gone = remove_uncommitted(str(tmp_path), "r", "tok", {"part-00001-tok.c000.snappy.parquet"})
    assert sorted(gone) == [".part-2-tok.tmp", "part-00000-tok.c000.snappy.parquet"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "part-00000-other.c000.snappy.parquet", "part-00001-tok.c000.snappy.parquet",
    ]  # fmt: skip
