"""Agreement of the featurizer with the 2017 authors' own feature values for 400 Materials Project ids.

The reference (``data/sendek2017_reference``) was computed on 2017 MP structures; the bundled structures are
from the 2025 database, re-relaxed since (mostly with r2SCAN, whose lattices are about 1-2 % smaller than
PBE's), so distances are expected to differ by about that much while counts mostly agree exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lisearch.datasets import MP2025_ARCHIVE, iter_cifs, sendek_reference400
from lisearch.structure.featurizer import FEATURE_NAMES
from lisearch.structure.labelling import label_cifs
from lisearch.structure.sendek import SendekModel

REFERENCE_COLUMNS = {
    "llb": "LLB_li_li_bonds_per_li",
    "sbi": "SBI_sublattice_bond_ionicity",
    "afc": "AFC_anion_framework_coordination",
    "lasd": "LASD_min_li_anion_sep",
    "llsd": "LLSD_min_li_li_sep",
}


def reference_frame(partial_occupancy: str = "sample") -> pd.DataFrame:
    """One row per reference id: our features (``llb``...), the 2017 ones (``ref_llb``...), both P and labels."""
    ref = sendek_reference400()
    wanted = set(ref["material_id"])
    cifs = pd.DataFrame(
        [(mid, text) for mid, text in iter_cifs(MP2025_ARCHIVE) if mid in wanted], columns=["material_id", "cif"]
    )
    ours = label_cifs(cifs, partial_occupancy=partial_occupancy)
    theirs = ref[["material_id", *REFERENCE_COLUMNS.values()]].rename(
        columns={v: f"ref_{k}" for k, v in REFERENCE_COLUMNS.items()}
    )
    merged = ours.merge(theirs, on="material_id", how="right")
    ref_x = merged[[f"ref_{n}" for n in FEATURE_NAMES]].to_numpy()
    model = SendekModel.published()
    merged["ref_p_superionic"] = model.p_superionic(ref_x)
    merged["ref_label"] = model.predict(ref_x)
    return merged


def compare_with_reference(partial_occupancy: str = "sample") -> dict[str, Any]:
    """Per-feature median absolute / relative differences, share within 1 % and label agreement."""
    frame = reference_frame(partial_occupancy)
    ok = frame["status"] == "ok"
    features: dict[str, Any] = {}
    for name in FEATURE_NAMES:
        ours, theirs = frame.loc[ok, name], frame.loc[ok, f"ref_{name}"]
        diff = (ours - theirs).abs()
        rel = diff / theirs.abs().where(theirs.abs() > 0, np.nan)
        features[name] = {
            "median_abs_diff": float(diff.median()),
            "median_rel_diff": float(rel.median()),
            "mean_signed_rel_diff": float(((ours - theirs) / theirs.abs().where(theirs.abs() > 0)).mean()),
            "share_within_1pct": float(((diff <= 0.01 * theirs.abs()) | (diff < 1e-6)).mean()),
        }
    agree = frame.loc[ok, "label"] == frame.loc[ok, "ref_label"]
    disagree = frame.loc[ok & (frame["label"] != frame["ref_label"]), ["material_id", "formula"]]
    return {
        "reference_ids": len(frame),
        "featurized": int(ok.sum()),
        "not_featurized": frame.loc[~ok, ["material_id", "status", "reason"]].to_dict("records"),
        "label_agreement": float(agree.mean()),
        "superionic_share_ours": float((frame.loc[ok, "label"] == 1).mean()),
        "superionic_share_reference": float((frame.loc[ok, "ref_label"] == 1).mean()),
        "features": features,
        "label_disagreements": disagree.to_dict("records"),
    }


def format_comparison(report: dict[str, Any]) -> str:
    """The comparison with Sendek's 2017 values as printed lines."""
    lines = [
        f"Sendek 2017 reference: {report['featurized']} of {report['reference_ids']} ids featurized",
        f"label agreement: {100 * report['label_agreement']:.1f} %  (superionic: ours "
        f"{100 * report['superionic_share_ours']:.1f} %, 2017 {100 * report['superionic_share_reference']:.1f} %)",
        "",
        "feature  median|diff|  median rel  mean signed rel  within 1 %",
    ]
    for name, s in report["features"].items():
        lines.append(
            f"{name:7s}  {s['median_abs_diff']:11.4f}  {100 * s['median_rel_diff']:9.2f} %  "
            f"{100 * s['mean_signed_rel_diff']:13.2f} %  {100 * s['share_within_1pct']:8.1f} %"
        )
    for row in report["label_disagreements"]:
        lines.append(f"  label differs: {row['material_id']} {row['formula']}")
    for row in report["not_featurized"]:
        lines.append(f"  not featurized: {row['material_id']} ({row['status']}: {row['reason']})")
    return "\n".join(lines)
