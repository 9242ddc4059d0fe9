"""Typed records of the screen: a staged run's manifest and a run's summary (plain dicts, as they are written to JSON
and returned by :func:`lisearch.screen`, with their keys and types spelt out once)."""

from __future__ import annotations

from typing import Any, TypedDict


class Manifest(TypedDict):
    """A staged run's ``manifest.json``: the plan's fingerprint (plan, run id, model, code), the run's file token,
    the block ids of every partition and when it was created (UTC)."""

    fingerprint: str
    token: str
    partitions: list[list[int]]
    created: str


class ScreenSummary(TypedDict, total=False):
    """What a screen run returns and records: its id, the space's size, the funnel (stage -> exact count, None where
    not computed) and its shares beside the paper's, the oxidation-state list, whether candidates had to be
    plausible, the limits (USD/kg, g/mol), the model (path, sha256), blocks and partitions, timings (s), rows
    written and expected, and how many partitions were resumed or screened."""

    job: str
    run_id: str
    compositions: int
    funnel: dict[str, int | None]
    fractions: dict[str, float | None]
    paper: dict[str, float]
    oxidation_list: str
    plausible_only: bool
    limits: dict[str, float]
    model: dict[str, str]
    blocks: int
    partitions: int
    wall_seconds: float
    kernel_stage_seconds: float
    compositions_per_second: float
    resumed_partitions: int
    screened_partitions: int
    candidate_rows: dict[str, Any]
    timings: dict[str, float]
    job_seconds_with_final_record: float


__all__ = ["Manifest", "ScreenSummary"]
