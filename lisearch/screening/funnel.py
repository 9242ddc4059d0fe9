"""The screen's funnel: the stages a composition passes (:data:`FUNNEL_STAGES`), whole-space counts from the
per-set counts of the kernel, and the shares between stages (the paper's Fig. 4 numbers)."""

from __future__ import annotations

import pandas as pd

from lisearch.schema import STAT_COLUMNS

FUNNEL_STAGES = (
    ("total", "all compositions"),
    ("conductive", "predicted conductive (score > 0)"),
    ("neutral", "charge-neutral"),
    ("neutral_conductive", "charge-neutral and predicted conductive"),
    ("cost_ok", "... and cost within the limit"),
    ("survivors", "... and mean atomic mass within the limit"),
    ("plausible", "... and chemically plausible (screen.plausible_only)"),
)
#: Why a stage can be missing (None): not computed for the run's model or setting.
NOT_COMPUTED = {
    "conductive": "not computed: the model has no closed form",
    "plausible": "not applied",
}
#: The stage each stage is a fraction of ("neutral" is a fraction of all, not of the conductive ones).
PARENT = {
    "conductive": "total",
    "neutral": "total",
    "neutral_conductive": "neutral",
    "cost_ok": "neutral_conductive",
    "survivors": "cost_ok",
    "plausible": "survivors",
}


def funnel_frame(totals: dict[str, int | None]) -> pd.DataFrame:
    """One row per stage: stage, description, count, share of all, share of the previous stage."""
    rows = []
    for i, (stage, text) in enumerate(FUNNEL_STAGES):
        n = totals[stage]
        base = totals[PARENT[stage]] if stage in PARENT else None
        rows.append(
            {
                "stage_order": i,
                "stage": stage,
                "description": text if n is not None else f"{text} - {NOT_COMPUTED.get(stage, 'not computed')}",
                "count": n,
                "fraction_of_total": None if n is None else (n / totals["total"] if totals["total"] else 0.0),
                "fraction_of_previous": (n / base) if base and n is not None else None,
            }
        )
    return pd.DataFrame(rows).astype(
        {"count": "Int64", "fraction_of_total": "Float64", "fraction_of_previous": "Float64"}
    )


def stage_totals(stats: pd.DataFrame) -> dict[str, int | None]:
    """Whole-space counts per stage from per-set counts; a stage reported as -1 (not computed) becomes None."""
    return {c: None if (stats[c] < 0).any() else int(stats[c].sum()) for c in STAT_COLUMNS}


def rows_written(totals: dict[str, int | None]) -> int:
    """Rows a run writes to `candidates`: the plausible survivors when the plausibility rules were applied, every
    survivor otherwise."""
    plausible = totals.get("plausible")
    return int(totals["survivors"] or 0) if plausible is None else int(plausible)
