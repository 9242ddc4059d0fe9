"""The screen's output files, written by the kernel tasks themselves, and the staging that makes a run resumable.

`candidates` rows are written where they are computed: each Spark task turns its survivors (:func:`screen_sets`
frames) into Arrow columns and writes one Parquet file per partition straight into the Delta table's folder for its
run (``<table>/run_id=<id>/``), with the Delta statistics of the columns users filter on; the driver then adds those
files to the table in one Delta commit. Until that commit no reader sees them (Delta reads only committed files).
Writing with pyarrow costs about a seventh of Spark's own Parquet writer for the same rows (``make bench``).

A run's staging folder (``<home>/tmp/screen-<run id>/``, shared storage on a cluster) records what is finished:

* ``manifest.json``: the plan's fingerprint, the run's file token and the partitions (block ids of each);
* ``stats/part-NNNNN.parquet``: the per-set counts of partition NNNNN;
* ``done/part-NNNNN.json``: written last, the partition's candidate file (Delta ``add`` action fields) or none.

A stopped run resumes from it (``screen.resume``): finished partitions are not screened again, and the retried or
resumed task of a partition writes the same file names (atomic renames), so no row is written twice. No pyspark
here: this runs inside the kernel tasks and in tests without Spark.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lisearch.chemistry.elements import symbols
from lisearch.errors import InputError
from lisearch.run_ids import partition_folder, partition_uri
from lisearch.schema import candidate_columns, derived_columns, numpy_type, partner_of
from lisearch.screening.records import Manifest


def candidate_table(survivors: pd.DataFrame, columns: int) -> Any:
    """Kernel survivors (n rows, :func:`lisearch.schema.survivor_dtypes`) -> a ``pyarrow.Table`` of n `candidates`
    rows (:func:`lisearch.schema.candidate_columns`, in their types): element symbols (dictionary-encoded), atomic
    numbers, percents and oxidation states of the partners that are present (null for an absent one: z = 0),
    ``n_elements`` (Li included), ``max_z``, score, cost (USD/kg) and mean atomic mass (g/mol per atom)."""
    z = {j: survivors[f"z{j}"].to_numpy() for j in range(1, columns + 1)}
    absent = {j: values <= 0 for j, values in z.items()}
    derived = derived_columns(survivors, columns)
    names = pa.array(["", *symbols()], pa.string())
    arrays: dict[str, Any] = {}
    for column, kind in candidate_columns(columns).items():
        j = partner_of(column)
        mask = None if j is None else absent[j]
        if kind == "string" and j is not None:  # the partner's symbol, dictionary-encoded from its atomic number
            arrays[column] = pa.DictionaryArray.from_arrays(pa.array(z[j].astype(np.int16), mask=mask), names)
            continue
        values = survivors[column].to_numpy() if column in survivors else derived[column]
        arrays[column] = pa.array(np.asarray(values, numpy_type(kind)), mask=mask)
    return pa.table(arrays)


def _json_number(value: Any) -> Any:
    return value.as_py() if hasattr(value, "as_py") else value


def file_stats(tables: Iterable[Any], columns: Iterable[str]) -> dict[str, Any]:
    """Delta file statistics of the rows of ``tables`` (``pyarrow.Table``): ``numRecords`` and, for each of
    ``columns``, ``nullCount`` and (when a value is present) ``minValues`` / ``maxValues``, as Spark's Delta writer
    records them for data skipping."""
    columns = list(columns)
    rows, nulls = 0, dict.fromkeys(columns, 0)
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    for table in tables:
        rows += table.num_rows
        for c in columns:
            if c not in table.column_names:
                continue
            col = table.column(c)
            nulls[c] += col.null_count
            mm = pc.min_max(col)
            low, high = _json_number(mm["min"]), _json_number(mm["max"])
            if low is not None:
                lows[c] = low if c not in lows else min(lows[c], low)
                highs[c] = high if c not in highs else max(highs[c], high)
    return {"numRecords": rows, "minValues": lows, "maxValues": highs, "nullCount": nulls}


#: Rows per Parquet row group of a candidate file (the survivors of several blocks are gathered up to it).
ROW_GROUP_ROWS = 1 << 20


class CandidateFile:
    """One partition's candidate rows as one Parquet file in run ``run_id``'s partition folder of the table
    (:func:`lisearch.run_ids.partition_folder`): :meth:`write` the survivors of each block, then :meth:`close`, which
    renames the finished file into place and returns the fields of its Delta ``add`` action (or None when no row was
    written; the action's path is URI-encoded as the Delta protocol says, :func:`lisearch.run_ids.partition_uri`)."""

    def __init__(self, table_dir: str, run_id: str, name: str, columns: int, stats_columns: Iterable[str]):
        self.table_dir, self.relative = table_dir, f"{partition_uri(run_id)}/{quote(name)}"
        self.columns, self.stats_columns = columns, [c for c in stats_columns if c in candidate_columns(columns)]
        self.final = os.path.join(table_dir, partition_folder(run_id), name)
        self.tmp = os.path.join(table_dir, partition_folder(run_id), f".{name}.{uuid.uuid4().hex}.tmp")
        self.pending: list[Any] = []
        self.written: list[Any] = []
        self.writer: Any = None

    def write(self, survivors: pd.DataFrame) -> None:
        """Add a block's survivors (rows of :func:`candidate_table`)."""
        if len(survivors):
            self.pending.append(candidate_table(survivors, self.columns))
            if sum(t.num_rows for t in self.pending) >= ROW_GROUP_ROWS:
                self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        if self.writer is None:
            os.makedirs(os.path.dirname(self.tmp), exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="snappy", store_schema=False)
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.written.append(table.select(self.stats_columns))
        self.pending = []

    def close(self) -> dict[str, Any] | None:
        """Finish the file: the fields of its Delta ``add`` action (path relative to the table, size in bytes,
        modification time in ms, statistics), or None when there were no rows."""
        self._flush()
        if self.writer is None:
            return None
        self.writer.close()
        os.replace(self.tmp, self.final)  # a retried task replaces the same name with the same rows
        st = os.stat(self.final)
        return {
            "path": self.relative,
            "size": st.st_size,
            "modificationTime": int(st.st_mtime * 1000),
            "dataChange": True,
            "stats": json.dumps(file_stats(self.written, self.stats_columns), separators=(",", ":")),
        }

    def abort(self) -> None:
        """Remove the unfinished file (a task that failed)."""
        if self.writer is not None:
            self.writer.close()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def _write_atomic(path: str, write: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")  # hidden
    write(tmp)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Staging:
    """A screen run's staging folder (see the module text); ``root`` must be storage every worker can write.
    ``token``: the staged run's file token (from its manifest); records and counts are named with it, so a worker of
    an earlier, stopped run of the same id that finishes late cannot mix its partitions into a new run's."""

    root: str
    token: str = ""

    def manifest_path(self) -> Path:
        """The run's manifest (fingerprint, file token, partitions)."""
        return Path(self.root) / "manifest.json"

    def stats_path(self, part: int) -> str:
        """Partition ``part``'s per-set counts (Parquet)."""
        return os.path.join(self.root, "stats", f"part-{part:05d}-{self.token}.parquet")

    def done_path(self, part: int) -> str:
        """Partition ``part``'s record of a finished partition (JSON)."""
        return os.path.join(self.root, "done", f"part-{part:05d}-{self.token}.json")

    def current(self) -> Staging | None:
        """This folder with the token of its manifest (None without a manifest)."""
        manifest = self.read_manifest()
        return None if manifest is None else Staging(self.root, str(manifest["token"]))

    def read_manifest(self) -> Manifest | None:
        """The manifest, or None when there is no readable one (no staged run, or one stopped while starting)."""
        try:
            return cast(Manifest, json.loads(self.manifest_path().read_text()))
        except (OSError, ValueError):
            return None

    def start(self, fingerprint: str, partitions: list[list[int]]) -> Manifest:
        """A new staged run (an older staging folder is removed first): its manifest with a new file token (the
        records of the run are then those of ``Staging(root, manifest["token"])``)."""
        self.remove()
        manifest: Manifest = {"fingerprint": fingerprint, "token": uuid.uuid4().hex, "partitions": partitions,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        _write_atomic(str(self.manifest_path()), lambda tmp: Path(tmp).write_text(json.dumps(manifest)))
        return manifest

    def remove(self) -> None:
        """Delete the staging folder (the run is committed, or starts over)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def finish_partition(self, part: int, stats: pd.DataFrame, add: dict[str, Any] | None) -> None:
        """Record a finished partition: its per-set counts, then (last: the mark of a finished partition) its
        candidate file's ``add`` fields."""
        table = pa.Table.from_pandas(stats, preserve_index=False)
        _write_atomic(self.stats_path(part), lambda tmp: pq.write_table(table, tmp))
        done = json.dumps({"partition": part, "add": add})
        _write_atomic(self.done_path(part), lambda tmp: Path(tmp).write_text(done))

    def done(self) -> dict[int, dict[str, Any] | None]:
        """Finished partitions -> their candidate file's ``add`` fields (None: no rows)."""
        folder = Path(self.root) / "done"
        out: dict[int, dict[str, Any] | None] = {}
        for f in sorted(folder.glob(f"part-*-{self.token}.json")) if folder.is_dir() and self.token else []:
            record = json.loads(f.read_text())
            out[int(record["partition"])] = record["add"]
        return out

    def read_stats(self, n_partitions: int) -> pd.DataFrame:
        """Per-set counts of every partition; raises when a partition has not finished (the run is incomplete)."""
        done = self.done()
        missing = [p for p in range(n_partitions) if p not in done]
        if missing:
            raise RuntimeError(f"{len(missing)} of {n_partitions} partitions have not reported their counts in "
                               f"{self.root} (first: {missing[0]})")  # fmt: skip
        return pd.concat([pd.read_parquet(self.stats_path(p)) for p in range(n_partitions)], ignore_index=True)


def code_sha256(root: Path | None = None) -> str:
    """sha256 of the Python sources of the lisearch package (``root``: its folder by default), names and bytes in
    name order: a resumed run must be finished by the code that screened its first partitions, and a version
    number does not change while the code is edited."""
    root = root or Path(__file__).resolve().parents[1]  # lisearch/, above this subpackage
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def plan_fingerprint(plan_data: dict[str, Any], *extra: Any) -> str:
    """sha256 of a plan in plain form and ``extra`` values (run id, model hash, code hash): a staged run resumes
    only under the same fingerprint."""
    text = json.dumps([plan_data, *extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def resume_error(run_id: str, why: str) -> InputError:
    """The error of a resume that cannot go on, with what to do instead."""
    return InputError(f"screen.resume: run {run_id!r} cannot be resumed: {why}. Run it again without --resume "
                      "(screen.resume=false) to screen it from the start.")  # fmt: skip


def partition_file_name(part: int, token: str) -> str:
    """Name of partition ``part``'s candidate file in a run with file token ``token`` (Spark's naming)."""
    return f"part-{part:05d}-{token}.c000.snappy.parquet"


def remove_uncommitted(table_dir: str, run_id: str, token: str, committed: set[str]) -> list[str]:
    """Delete the candidate files of an abandoned staged run (file token ``token``) that no Delta commit refers to
    (``committed``: file names of the run's rows); returns their names."""
    folder = Path(table_dir) / partition_folder(run_id)
    gone = []
    for f in folder.glob(f"*{token}*") if folder.is_dir() else []:
        if f.name not in committed:
            f.unlink(missing_ok=True)
            gone.append(f.name)
    return gone
