"""What one Spark task of the screen does, on the executor (no pyspark): rebuild the plan's inputs from plain data,
screen its blocks, write their survivors as one candidate file into the run's partition of `candidates` and their
per-set counts into the staging folder. (The driver's side, the plan itself and the row estimate, is
:mod:`lisearch.screening.plan`.)

The driver sends every task the same broadcast: the plan in plain form (:func:`lisearch.screening.plan.plan_to_dict`)
and an :class:`OutputSpec` (where to write) under the key ``"output"``, both plain data (:mod:`lisearch.plain`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lisearch.plain import from_plain, to_plain
from lisearch.screening.files import CandidateFile, Staging, partition_file_name
from lisearch.screening.kernels import ScreenInputs, screen_sets
from lisearch.screening.space import Block, CompositionSpace


@dataclass(frozen=True)
class OutputSpec:
    """Where a run's tasks write: ``staging`` (the run's staging folder), ``table`` (the `candidates` table folder),
    ``run_id`` (its partition), ``token`` (the staged run's file token), ``stats_columns`` (columns with Delta
    statistics), ``partitions`` (the block ids of every partition) and ``todo`` (the partitions still to screen)."""

    staging: str
    table: str
    run_id: str
    token: str
    stats_columns: tuple[str, ...]
    partitions: tuple[tuple[int, ...], ...]
    todo: tuple[int, ...]


def task_payload(plan_data: dict[str, Any], output: OutputSpec) -> dict[str, Any]:
    """The plain data every task of a run gets (the broadcast): the plan's plain form with ``output`` added."""
    return {**plan_data, "output": to_plain(output)}


def output_of(payload: dict[str, Any]) -> OutputSpec:
    """The :class:`OutputSpec` of a task payload."""
    return from_plain(OutputSpec, payload["output"])


def inputs_from_dict(data: dict[str, Any]) -> ScreenInputs:
    """Kernel inputs from :func:`lisearch.screening.plan.plan_to_dict` output."""
    return from_plain(ScreenInputs, data["inputs"])


def space_from_dict(data: dict[str, Any]) -> CompositionSpace:
    """The composition space from :func:`lisearch.screening.plan.plan_to_dict` output."""
    return from_plain(CompositionSpace, data["space"])


def run_blocks(
    data: dict[str, Any],
    block_ids: list[int],
    inputs: ScreenInputs | None = None,
    space: CompositionSpace | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stats and survivors of some blocks of a plan in plain form (what one Spark task does); ``inputs`` and
    ``space``, when given, save rebuilding them from ``data`` for each call."""
    inputs = inputs or inputs_from_dict(data)
    space = space or space_from_dict(data)
    stats, survivors = [], []
    for bid in block_ids:
        s, v = screen_sets(inputs, space.element_sets(from_plain(Block, data["blocks"][bid])))
        stats.append(s)
        survivors.append(v)
    return pd.concat(stats, ignore_index=True), pd.concat(survivors, ignore_index=True)


def screen_partition(
    payload: dict[str, Any], part: int, inputs: ScreenInputs | None = None, space: CompositionSpace | None = None,
    output: OutputSpec | None = None,
) -> int:  # fmt: skip
    """Screen partition ``part`` of a task payload (:func:`task_payload`): its blocks' survivors as one candidate
    file, their per-set counts in the staging folder, the partition's record last; returns the rows written.
    ``inputs``, ``space`` and ``output``, when given, save rebuilding them from the payload for each partition."""
    out = output or output_of(payload)
    inputs = inputs or inputs_from_dict(payload)
    space = space or space_from_dict(payload)
    name = partition_file_name(part, out.token)
    file = CandidateFile(out.table, out.run_id, name, inputs.columns, out.stats_columns)
    counts = []
    try:
        for block_id in out.partitions[part]:
            stats, survivors = run_blocks(payload, [block_id], inputs, space)
            counts.append(stats)
            file.write(survivors)
        add = file.close()
    except BaseException:
        file.abort()
        raise
    Staging(out.staging, out.token).finish_partition(part, pd.concat(counts, ignore_index=True), add)
    return 0 if add is None else int(json.loads(str(add["stats"]))["numRecords"])


__all__ = [
    "OutputSpec", "inputs_from_dict", "output_of", "run_blocks", "screen_partition", "space_from_dict", "task_payload",
]  # fmt: skip
