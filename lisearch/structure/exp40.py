"""sML on the 40 experimental materials of Sendek 2017 (exp40): choosing a structure per formula, features,
the published model's accuracy and a leave-one-out refit (the paper: 90 %, 4 of 40 misclassified).

Structure choice per formula (the data offer several candidates, and none for 6 formulas):

1. an experimental (OBELiX, ICSD-derived) CIF when there is one, the first listed;
2. else the Materials Project candidate that is in the known-compound list with the lowest energy above hull;
3. else the first Materials Project candidate listed.

Partially occupied experimental CIFs are ordered by the ``partial_occupancy`` rule
(:mod:`lisearch.structure.ordering`). Li14ZnGe4O16 is listed twice in the paper's table and is counted twice.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from lisearch.datasets import MP2025_ARCHIVE, exp40, exp40_structure_candidates, iter_cifs, mp_known, obelix_cif
from lisearch.structure.featurizer import FEATURE_NAMES
from lisearch.structure.labelling import label_cifs
from lisearch.structure.sendek import SendekModel, loocv_accuracy


def choose_structures() -> pd.DataFrame:
    """One row per formula that has a candidate: reduced_formula, source, id, rule (1, 2 or 3 above)."""
    cands = exp40_structure_candidates()
    ehull = mp_known().set_index("material_id")["e_above_hull_ev"]
    rows = []
    for formula, group in cands.groupby("reduced_formula", sort=False):
        obelix = group[group["source"] == "obelix"]
        if len(obelix):
            pick, rule = obelix.iloc[0], 1
        else:
            mp = group[group["source"] == "mp2025"].assign(ehull=lambda g: g["id"].map(ehull))
            known = mp.dropna(subset=["ehull"])
            pick, rule = (known.sort_values("ehull", kind="stable").iloc[0], 2) if len(known) else (mp.iloc[0], 3)
        rows.append({"reduced_formula": formula, "source": pick["source"], "structure_id": pick["id"], "rule": rule})
    return pd.DataFrame(rows)


def exp40_features(partial_occupancy: str = "sample") -> pd.DataFrame:
    """The 40 rows of exp40 with the chosen structure, its features, sML probability and label.

    Columns: formula, reduced_formula, superionic (experimental label), source, structure_id, rule,
    llb..llsd, p_superionic, label (-1 without a structure), status, reason. Deterministic (bundled data, seeded
    orderings), so computed once per process and rule (33 structures featurized: 5-9 s) and copied.
    """
    return _exp40_features(partial_occupancy).copy()


@functools.cache
def _exp40_features(partial_occupancy: str) -> pd.DataFrame:
    table = exp40()
    chosen = choose_structures()
    mp_ids = set(chosen.loc[chosen["source"] == "mp2025", "structure_id"])
    texts = {mid: text for mid, text in iter_cifs(MP2025_ARCHIVE) if mid in mp_ids}
    for row in chosen.itertuples():
        if row.source == "obelix":
            texts[str(row.structure_id)] = obelix_cif(str(row.structure_id))
    batch = pd.DataFrame({"material_id": list(texts), "cif": list(texts.values())})
    labelled = label_cifs(batch, partial_occupancy=partial_occupancy).rename(columns={"material_id": "structure_id"})
    keep = ["structure_id", *FEATURE_NAMES, "p_superionic", "label", "status", "reason"]
    out = table.merge(chosen, on="reduced_formula", how="left").merge(labelled[keep], on="structure_id", how="left")
    out["status"] = out["status"].fillna("no_structure")
    out["label"] = out["label"].fillna(-1).astype(int)
    return out


def evaluate_sml(partial_occupancy: str = "sample", C: float = 1.0) -> dict[str, Any]:
    """Accuracy of the published sML on exp40, and of a leave-one-out refit, on the rows with features."""
    frame = exp40_features(partial_occupancy)
    ok = frame["status"] == "ok"
    X = frame.loc[ok, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    y = frame.loc[ok, "superionic"].to_numpy(dtype=int)
    published = SendekModel.published().predict(X)
    return {
        "rows": len(frame),
        "with_features": int(ok.sum()),
        "without_structure": frame.loc[frame["status"] == "no_structure", "formula"].tolist(),
        "published_accuracy": float(np.mean(published == y)),
        "published_misclassified": frame.loc[ok].loc[published != y, "formula"].tolist(),
        "refit_loocv_accuracy": loocv_accuracy(X, y, C=C),
        "refit_C": C,
        "paper_loocv_accuracy": 0.90,
    }
