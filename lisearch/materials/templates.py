"""Known Li-containing structures as prototypes for ionic substitution, and the structures of known phases.

The prototypes are the shipped Materials Project Li structures (``data/mp2025_li``, 21,755, CC BY 4.0) and the
ordered Li structures among OBELiX's experimental CIFs that MP does not already hold (``data/prototypes/obelix.csv``,
:func:`obelix_prototypes`; ids ``obelix-<OBELiX ID>``; a partially occupied CIF is not a prototype: any ordering of
it changes its stoichiometry or picks one arrangement of many). Each is indexed by its reduced formula, the most
likely neutral ionic assignment of its elements (the plausibility rules' assignment,
:func:`lisearch.chemistry.plausibility.plausibility`, the same one the shortlist gives a candidate; a formula without
one cannot be an ionic prototype and is left out) and its *pattern*: the Li amount and the sorted amounts of the
other elements of the reduced formula, so that Li3PO4 and Li3AsO4 share (3, (1, 4)).

Structures are read from the shipped archives by id (:func:`read_structures`): one pass over an archive per call,
keeping only the members asked for.
"""

from __future__ import annotations

import functools
import tarfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.chemistry.elements import LI_Z, symbols
from lisearch.chemistry.plausibility import PlausibilityRules, formula_arrays, plausibility
from lisearch.datasets import (
    MP2025_ARCHIVE,
    MP2025_INDEX,
    MP_PHASES_ARCHIVE,
    MP_PHASES_INDEX,
    OBELIX_CIFS,
    OBELIX_PROTOTYPES,
)
from lisearch.errors import InputError

#: The prototypes' plausibility rules: any state seen in >= 1 % of an element's ICSD reports, no size limit (a
#: prototype only has to be ionic, not simple).
TEMPLATE_RULES = PlausibilityRules(min_state_frequency=0.01, max_formula_atoms=10_000)


def pattern_of(z: np.ndarray, amounts: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """(Li amount, sorted amounts of the other elements) of a reduced integer formula (``z`` (k,) atomic numbers,
    0 = empty, ``amounts`` (k,)); None without Li."""
    keep = z > 0
    z, amounts = z[keep], amounts[keep]
    g = int(np.gcd.reduce(amounts)) if len(amounts) else 1
    amounts = amounts // max(g, 1)
    li = amounts[z == LI_Z]
    if not len(li):
        return None
    return int(li[0]), tuple(sorted(int(a) for a in amounts[z != LI_Z]))


def ionic_formulas(formulas: list[str], rules: PlausibilityRules = TEMPLATE_RULES) -> pd.DataFrame:
    """Per formula: ``elements`` (tuple of symbols), ``amounts`` (reduced integers), ``states`` (the most likely
    neutral ionic assignment; empty when there is none), ``pattern`` (:func:`pattern_of`), ``reason`` (why there is
    no assignment, None otherwise)."""
    z, amounts, errors = formula_arrays(formulas)
    valid = np.array([e is None for e in errors], dtype=bool)
    checks = pd.DataFrame({"plausible": False, "reason": None}, index=range(len(formulas)))
    for j in range(z.shape[1]):
        checks[f"state_{j + 1}"] = 0
    if valid.any():  # rows that failed to parse have no elements: the rules are not asked about them
        checks.loc[np.flatnonzero(valid)] = plausibility(z[valid], amounts[valid], rules).set_index(
            np.flatnonzero(valid)
        )[checks.columns]
    syms = ("", *symbols())
    rows = []
    for i in range(len(formulas)):
        present = z[i] > 0
        g = int(np.gcd.reduce(amounts[i][present])) if present.any() else 1
        states = tuple(int(checks.at[i, f"state_{j + 1}"]) for j in np.flatnonzero(present))
        ok = errors[i] is None and bool(checks.at[i, "plausible"])
        rows.append({
            "elements": tuple(syms[v] for v in z[i][present]),
            "amounts": tuple(int(a) // max(g, 1) for a in amounts[i][present]),
            "states": states if ok else (),
            "pattern": pattern_of(z[i], amounts[i]),
            "reason": None if ok else (errors[i] or str(checks.at[i, "reason"])),
        })  # fmt: skip
    return pd.DataFrame(rows, index=range(len(formulas)))


#: The prefix of an OBELiX prototype's id (``obelix-<OBELiX ID>``), telling it from an MP id in `materials`.
OBELIX_PREFIX = "obelix-"


@functools.cache
def template_index() -> pd.DataFrame:
    """The prototypes: id, formula, source (``mp2025_li`` | ``obelix``), elements, amounts, states, pattern (one row
    per shipped structure with an ionic assignment). Cached per process."""
    mp = pd.read_csv(MP2025_INDEX)[["material_id", "formula"]].assign(source="mp2025_li")
    extra = pd.read_csv(OBELIX_PROTOTYPES, dtype=str)
    extra = extra.loc[extra["duplicate_of"].isna(), ["material_id", "formula"]].assign(source="obelix")
    index = pd.concat([mp, extra], ignore_index=True)
    ionic = ionic_formulas(index["formula"].tolist())
    frame = pd.concat([index.rename(columns={"material_id": "id"}), ionic], axis=1)
    return frame[frame["reason"].isna() & frame["pattern"].notna()].drop(columns="reason").reset_index(drop=True)


def obelix_prototypes(cifs: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """The OBELiX prototype index from (OBELiX ID, CIF text) pairs: one row per ordered structure with Li:
    material_id (``obelix-<ID>``), formula (reduced), nsites, duplicate_of (the MP Li structure of the same reduced
    formula that pymatgen's ``StructureMatcher`` (default tolerances) matches, else empty: only those rows become
    prototypes). Unparsable and partially occupied CIFs are skipped. Seconds: run by ``python -m
    tools.obelix_prototypes``, which writes ``data/prototypes/obelix.csv``."""
    from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: PLC0415 (slow import)
    from pymatgen.core import Composition, Structure  # noqa: PLC0415

    mp = pd.read_csv(MP2025_INDEX)
    mp["reduced"] = [Composition(f).reduced_formula for f in mp["formula"]]
    ordered = {}
    for key, text in cifs:
        with warnings.catch_warnings():  # OBELiX's CIFs round a few coordinates; pymatgen says so each time
            warnings.simplefilter("ignore")
            try:
                structure = Structure.from_str(text, fmt="cif")
            except Exception:  # pymatgen's CIF parser fails in many ways; such a CIF is no prototype
                continue
        if structure.is_ordered and "Li" in structure.composition:
            ordered[key] = structure
    by_formula = mp.groupby("reduced")["material_id"].agg(list)
    same = {k: by_formula.get(s.composition.reduced_formula, []) for k, s in ordered.items()}
    known = read_structures({"mp2025_li": {i for ids in same.values() for i in ids}})  # one pass over the archive
    matcher, rows = StructureMatcher(), []
    for key, structure in ordered.items():
        match = next((i for i in same[key] if i in known and matcher.fit(structure, known[i])), None)
        rows.append({"material_id": f"{OBELIX_PREFIX}{key}", "formula": structure.composition.reduced_formula,
                     "nsites": len(structure), "duplicate_of": match})  # fmt: skip
    return pd.DataFrame(rows, columns=["material_id", "formula", "nsites", "duplicate_of"])


@functools.cache
def phase_index() -> pd.DataFrame:
    """Every shipped Materials Project phase (the Li ones and the non-Li ones of up to four elements): id, formula,
    elements (frozenset of symbols), source (``mp2025_li`` | ``mp_phases``). Cached per process."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    li = pd.read_csv(MP2025_INDEX)[["material_id", "formula"]].assign(source="mp2025_li")
    other = pd.read_csv(MP_PHASES_INDEX)[["material_id", "formula"]].assign(source="mp_phases")
    frame = pd.concat([li, other], ignore_index=True).rename(columns={"material_id": "id"})
    frame["elements"] = [frozenset(str(e) for e in Composition(f).elements) for f in frame["formula"]]
    return frame


def archive_of(source: str) -> Path:
    """The shipped archive of a structure source (``mp2025_li``, ``mp_phases`` or ``obelix``)."""
    archives = {"mp2025_li": MP2025_ARCHIVE, "mp_phases": MP_PHASES_ARCHIVE, "obelix": OBELIX_CIFS}
    if source not in archives:
        raise InputError(f"Unknown structure source {source!r}; use one of {', '.join(archives)}.")
    return archives[source]


def read_cifs(archive: Path, ids: Iterable[str]) -> dict[str, str]:
    """CIF texts of the members ``cif/<id>.cif`` of a shipped archive (one pass over it); ids not found are
    missing from the result."""
    wanted = set(ids)
    out: dict[str, str] = {}
    if not wanted:
        return out
    with tarfile.open(archive) as tar:
        for member in tar:
            name = Path(member.name).stem
            if member.isfile() and name in wanted:
                fh = tar.extractfile(member)
                if fh is not None:
                    out[name] = fh.read().decode("utf-8", errors="replace")
                    if len(out) == len(wanted):
                        break
    return out


def read_structures(ids_by_source: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """pymatgen Structures by id of shipped MP phases, ``{source: ids}`` (see :func:`archive_of`); a structure
    written as a supercell is kept as written (its energy per atom is the same). An id whose CIF is missing or that
    pymatgen cannot parse is left out (a few MP CIFs are: their phase then gets a row that says so)."""
    from pymatgen.core import Structure  # noqa: PLC0415 (slow import, needed here only)

    out = {}
    for source, ids in ids_by_source.items():
        prefix = OBELIX_PREFIX if source == "obelix" else ""  # OBELiX's members are named by its bare IDs
        for key, text in read_cifs(archive_of(source), [str(i).removeprefix(prefix) for i in ids]).items():
            with warnings.catch_warnings():  # pymatgen warns about CIF details MP's writer leaves out
                warnings.simplefilter("ignore")
                try:
                    out[prefix + key] = Structure.from_str(text, fmt="cif")
                except Exception:  # pymatgen's CIF parser fails in many ways; the id is then missing
                    continue
    return out


__all__ = [
    "OBELIX_PREFIX", "TEMPLATE_RULES", "ionic_formulas", "obelix_prototypes", "pattern_of", "phase_index",
    "read_structures", "template_index",
]  # fmt: skip
