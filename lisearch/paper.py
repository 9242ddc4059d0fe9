"""The numbers of Cubuk, Sendek & Reed, J. Chem. Phys. 150, 214701 (2019) that lisearch compares with, in one place.

Sources: the paper's Table I and Table III and the text on the screen's funnel (docs/science.md quotes them with the
presentation of the paper).
"""

from __future__ import annotations

#: Table I (accuracy, %): model -> data set -> value (None: not reported).
TABLE_I: dict[str, dict[str, float | None]] = {
    "sML": {"exp40": 90.0, "mp": None, "dft": 90.5},
    "eML": {"exp40": 97.5, "mp": 13.0, "dft": 52.4},
    "esML": {"exp40": 87.5, "mp": 92.0, "dft": 85.7},
    "atom2vec-esML": {"exp40": 87.5, "mp": 95.4, "dft": 85.7},
}

#: The screen's funnel: shares of the space predicted conductive and charge-neutral, and of the neutral ones the
#: share predicted conductive ("about 60 %", "about 10 %", "about 7 %").
FUNNEL = {"conductive": 0.60, "neutral": 0.10, "neutral_conductive": 0.07}

#: Table III: the 11 compositions that passed every filter of the paper's screen.
TABLE_III = (
    "LiN5P3O", "Li5Na2O3", "Li3Na4O3", "Li4NaGaO4", "LiPO3", "Li2MgO2",
    "LiMg3K2O4", "Li5K2O3", "LiNaMg3O5", "Li5Na2NO2", "Li2K3GaO4",
)  # fmt: skip

#: esML's agreement with sML on the hold-out part of the MP set (accuracy).
ESML_HOLDOUT_ACCURACY = 0.92

__all__ = ["ESML_HOLDOUT_ACCURACY", "FUNNEL", "TABLE_I", "TABLE_III"]
