"""The batch kernel of the labelling job: CIF texts in, one row of features, P and label per structure out.

:func:`label_cifs` is what each Spark task runs inside ``mapInPandas``; it is plain pandas/pymatgen and is
tested without Spark. A CIF that cannot be parsed becomes a row with status ``error``; a structure the model is
not defined for (no Li, an element without a Pauling electronegativity, ...) becomes ``excluded``; both carry
a reason and the job goes on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from lisearch.structure.featurizer import FEATURE_NAMES, FeaturizationError, SendekFeaturizer
from lisearch.structure.ordering import RULES, majority_ordering, sample_orderings
from lisearch.structure.sendek import SendekModel

STATUS_OK, STATUS_EXCLUDED, STATUS_ERROR = "ok", "excluded", "error"

#: Output columns of :func:`label_cifs`, in order; :data:`OUTPUT_DDL` is the same as a Spark schema string.
OUTPUT_COLUMNS = ("material_id", "formula", "elements", "fractions", "nsites", *FEATURE_NAMES)
OUTPUT_DDL = (
    "material_id string, formula string, elements array<string>, fractions array<double>, nsites int, "
    + ", ".join(f"{n} double" for n in FEATURE_NAMES)
    + ", p_superionic double, label int, status string, reason string, ordering string"
)


def parse_cif(text: str) -> Structure:
    """One structure from CIF text (the first block), raising ``ValueError`` with a short reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:  # pymatgen raises many kinds for broken CIFs
            raise ValueError(f"unparsable CIF: {type(exc).__name__}: {str(exc).strip()[:200]}") from exc
    if len(structure) == 0:
        raise ValueError("unparsable CIF: no atom sites")
    return structure


def featurize_structure(
    structure: Structure, featurizer: SendekFeaturizer, partial_occupancy: str = "sample"
) -> tuple[np.ndarray, str]:
    """Features (5,) of a possibly disordered structure and the name of the ordering used."""
    if structure.is_ordered:
        return featurizer.featurize(structure), "ordered"
    if partial_occupancy == "majority":
        return featurizer.featurize(majority_ordering(structure)), "majority"
    if partial_occupancy == "sample":
        samples = sample_orderings(structure)
        feats, reasons = featurizer.featurize_many(samples)
        good = ~np.isnan(feats).any(axis=1)
        if not good.any():
            raise FeaturizationError(f"no random ordering could be featurized: {reasons[0]}")
        return feats[good].mean(axis=0), f"sample:{int(good.sum())}"
    raise ValueError(f"unknown partial_occupancy rule {partial_occupancy!r}; use one of {', '.join(RULES)}")


def label_cifs(
    batch: pd.DataFrame,
    model: SendekModel | None = None,
    featurizer: SendekFeaturizer | None = None,
    partial_occupancy: str = "sample",
) -> pd.DataFrame:
    """Label a batch of CIFs.

    Parameters:
        batch: columns ``material_id`` (str) and ``cif`` (str, CIF text).
    Returns:
        DataFrame with :data:`OUTPUT_DDL` columns, one row per input row: formula (reduced), elements and
        their atomic fractions (alphabetical), nsites, the five features, p_superionic, label (1 superionic,
        0 not, -1 not labelled), status (ok | excluded | error), reason, ordering.
    """
    model = model or SendekModel.published()
    featurizer = featurizer or SendekFeaturizer()
    rows = []
    for material_id, cif in zip(batch["material_id"], batch["cif"], strict=True):
        row: dict[str, object] = {"material_id": str(material_id), "formula": None, "elements": None, "fractions": None}
        row.update(nsites=None, status=STATUS_OK, reason=None, ordering=None)
        feats = np.full(len(FEATURE_NAMES), np.nan)
        try:
            structure = parse_cif(cif)
            comp = structure.composition
            amounts = comp.get_el_amt_dict()
            total = sum(amounts.values())
            els = sorted(amounts)
            row.update(
                formula=comp.reduced_formula,
                elements=els,
                fractions=[amounts[e] / total for e in els],
                nsites=len(structure),
            )
            feats, row["ordering"] = featurize_structure(structure, featurizer, partial_occupancy)
        except FeaturizationError as exc:
            row.update(status=STATUS_EXCLUDED, reason=str(exc))
        except ValueError as exc:
            row.update(status=STATUS_ERROR, reason=str(exc))
        row.update(zip(FEATURE_NAMES, feats.tolist(), strict=True))
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*OUTPUT_COLUMNS, "status", "reason", "ordering"])
    X = out[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    out["p_superionic"] = model.p_superionic(X)
    out["label"] = model.predict(X).astype(np.int32)
    out["nsites"] = out["nsites"].astype("Int32")
    return out[[c.split()[0] for c in OUTPUT_DDL.split(", ")]]


def read_cif_files(paths: list[str], root: str | None = None) -> tuple[list[str], list[str | None]]:
    """Texts of CIF files (undecodable bytes replaced) and, per file, None or why it could not be read. With
    ``root``, a path that does not resolve inside that folder (an absolute path, ``..``, a link leading out) is not
    read: its problem says so."""
    texts: list[str] = []
    problems: list[str | None] = []
    base = Path(root).resolve() if root is not None else None
    for path in paths:
        if base is not None and not _inside(Path(path), base):
            texts.append("")
            problems.append(f"refused: {path!r} does not lie inside the source folder {base}")
            continue
        try:
            texts.append(Path(path).read_bytes().decode("utf-8", errors="replace"))
            problems.append(None)
        except OSError as exc:
            texts.append("")
            problems.append(f"cannot read {path}: {exc.strerror or exc}")
    return texts, problems


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return False


def label_cif_files(batch: pd.DataFrame, partial_occupancy: str = "sample", root: str | None = None) -> pd.DataFrame:
    """:func:`label_cifs` for a batch of ``material_id`` and ``path`` (a CIF file every worker can read, e.g. on
    shared storage): the files are read where the batch runs, so no CIF text travels with the task. A file that
    cannot be read, or (with ``root``) does not resolve inside ``root``, is an ``error`` row naming the file and the
    reason. An optional ``refused`` column (None or a reason) makes that row an ``error`` row without reading."""
    paths = ["" if p is None else str(p) for p in batch["path"].tolist()]
    refused = batch["refused"].tolist() if "refused" in batch.columns else [None] * len(batch)
    readable = [i for i, r in enumerate(refused) if r is None or r != r]  # None or NaN: no refusal
    texts = [""] * len(batch)
    problems: list[str | None] = [str(r) for r in refused]
    read_texts, read_problems = read_cif_files([paths[i] for i in readable], root)
    for i, text, problem in zip(readable, read_texts, read_problems, strict=True):
        texts[i], problems[i] = text, problem
    out = label_cifs(
        pd.DataFrame({"material_id": batch["material_id"], "cif": texts}), partial_occupancy=partial_occupancy
    )
    failed = np.array([p is not None for p in problems])
    if failed.any():
        out.loc[failed, "status"] = STATUS_ERROR
        out.loc[failed, "reason"] = [p for p in problems if p is not None]
    return out
