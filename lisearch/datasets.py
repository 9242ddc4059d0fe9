"""Loaders for the data shipped inside the package (``lisearch/data``, provenance in ``PROVENANCE.md``).

Nothing here touches the network. Tables are read with pandas; CIF archives are streamed with
:mod:`tarfile` so the 21,755-structure archive never has to be unpacked to disk.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.errors import InputError

DATA_DIR = Path(__file__).resolve().parent / "data"

MP2025_ARCHIVE = DATA_DIR / "mp2025_li" / "mp2025_li_cifs.tar.xz"
MP2025_INDEX = DATA_DIR / "mp2025_li" / "index.csv"
MP_PHASES_ARCHIVE = DATA_DIR / "mp_phases" / "mp_phases_nonli_cifs.tar.xz"
MP_PHASES_INDEX = DATA_DIR / "mp_phases" / "index.csv"
MP_KNOWN = DATA_DIR / "mp_known" / "mp_li_ehull_gap_ionnet.csv"
#: Derived from OBELiX's CIFs (``python -m tools.obelix_prototypes``): the ordered Li structures that serve as
#: prototypes beside MP's (:func:`lisearch.materials.templates.obelix_prototypes`).
OBELIX_PROTOTYPES = DATA_DIR / "prototypes" / "obelix.csv"
EXP40_DIR = DATA_DIR / "exp40"
_REQUIRED = (
    MP2025_ARCHIVE,
    MP2025_INDEX,
    MP_PHASES_ARCHIVE,
    MP_PHASES_INDEX,
    EXP40_DIR / "exp40.csv",
    EXP40_DIR / "exp40_structure_candidates.csv",
    DATA_DIR / "dft" / "dft_random20.csv",
    DATA_DIR / "dft" / "sendek2017_candidates21.csv",
    DATA_DIR / "sendek2017_reference" / "mp_descriptors_sample400.csv",
    MP_KNOWN,
    DATA_DIR / "elements" / "mendeleev_elements.csv",
    DATA_DIR / "obelix" / "all.csv",
    DATA_DIR / "obelix" / "all_cifs.tar.gz",
    DATA_DIR / "obelix" / "train_idx.csv",
    DATA_DIR / "obelix" / "test_idx.csv",
    OBELIX_PROTOTYPES,
)


def check_bundled_data() -> str:
    """A one-line summary of the bundled data; raises :class:`InputError` when a file is missing."""
    missing = [str(p.relative_to(DATA_DIR)) for p in _REQUIRED if not p.is_file()]
    if missing:
        raise InputError(
            f"Bundled data files are missing from {DATA_DIR}: {', '.join(missing)}. Reinstall lisearch from a "
            "complete checkout (`git status` shows deleted files; `make setup` reinstalls)."
        )
    return f"{len(_REQUIRED)} files in {DATA_DIR}"


def exp40(expand: bool = True) -> pd.DataFrame:
    """The experimental materials of Sendek 2017: formula, reduced_formula, sigma_rt_S_per_cm, superionic.

    The paper's table prints 39 formulas and counts Li14ZnGe4O16 twice (two structures, ``n_structures``);
    ``expand=True`` repeats rows by ``n_structures`` to give the paper's 40 rows (11 superionic).
    """
    frame = pd.read_csv(EXP40_DIR / "exp40.csv")
    if expand:
        frame = frame.loc[frame.index.repeat(frame["n_structures"])].reset_index(drop=True)
    return frame


def exp40_structure_candidates() -> pd.DataFrame:
    """reduced_formula, source (``obelix`` | ``mp2025``), id, icsd_id, note."""
    return pd.read_csv(EXP40_DIR / "exp40_structure_candidates.csv", dtype={"icsd_id": "string"})


def obelix_cif(cif_id: str) -> str:
    """The CIF text of one OBELiX structure by its id; InputError when there is none."""
    path = EXP40_DIR / "obelix_cifs" / f"{cif_id}.cif"
    if not path.is_file():
        raise InputError(f"No bundled OBELiX CIF {cif_id!r} (looked for {path}).")
    return path.read_text()


def dft_random20() -> pd.DataFrame:
    """material_id, formula, dft_superionic (20 randomly chosen MP compounds, Sendek et al. 2019)."""
    return pd.read_csv(DATA_DIR / "dft" / "dft_random20.csv")


def sendek2017_candidates21() -> pd.DataFrame:
    """material_id, formula, sendek2017_p_superionic, dft_md_verdict (yes/marginal/no), in_mp2025_set."""
    return pd.read_csv(DATA_DIR / "dft" / "sendek2017_candidates21.csv")


def sendek_reference400() -> pd.DataFrame:
    """The 2017 authors' structural descriptors for 400 MP ids (LLB_..., SBI_..., AFC_..., LASD_..., LLSD_...)."""
    return pd.read_csv(DATA_DIR / "sendek2017_reference" / "mp_descriptors_sample400.csv")


def mp_known() -> pd.DataFrame:
    """Known MP Li compounds (E_hull < 0.1 eV/atom, gap >= 0.5 eV).

    Columns: material_id, formula, e_above_hull_ev, band_gap_ev.
    """
    frame = pd.read_csv(MP_KNOWN, encoding="utf-8-sig")
    return frame.rename(
        columns={
            "MP ID": "material_id",
            "Formula": "formula",
            "Energy Above Hull (eV)": "e_above_hull_ev",
            "Band Gap (eV)": "band_gap_ev",
        }
    )


def elements_table() -> pd.DataFrame:
    """The mendeleev 1.3.0 element table (118 rows), see ``data/elements``."""
    return pd.read_csv(DATA_DIR / "elements" / "mendeleev_elements.csv")


# ------------------------------------------------------------------------------------------ CIF collections
CIF_SUFFIXES = (".cif",)
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")


def resolve_source(source: str) -> Path:
    """``"bundled"`` -> the MP 2025 archive; otherwise a checked folder or archive path.

    Raises:
        InputError: the path does not exist, is not readable, or is neither a folder nor a tar archive.
    """
    if source == "bundled":
        return MP2025_ARCHIVE
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(
            f"The structure source {path} does not exist. Give a folder of .cif files or a .tar(.gz|.xz) of them."
        )
    if path.is_dir():
        try:
            next(iter(path.iterdir()), None)
        except PermissionError as exc:
            raise InputError(f"The folder {path} cannot be read ({exc.strerror}). Fix its permissions.") from exc
        return path
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise InputError(f"{path} is neither a folder nor a tar archive (.tar, .tar.gz, .tar.xz) of CIF files.")
    if not tarfile.is_tarfile(path):
        raise InputError(f"{path} is not a readable tar archive. Check the file (is it complete?).")
    return path


def iter_cifs(source: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(structure_id, cif_text)`` for every ``.cif`` in a folder (recursively) or a tar archive.

    The id is the file name without ``.cif``; files that cannot be decoded as text are yielded with their raw
    replacement-decoded text so the featurizer records them as errors instead of the reader stopping.
    """
    if source.is_dir():
        for path in sorted(source.rglob("*.cif")):
            yield path.stem, path.read_bytes().decode("utf-8", errors="replace")
        return
    with tarfile.open(source) as tar:
        for member in tar:
            if member.isfile() and member.name.lower().endswith(CIF_SUFFIXES):
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                yield Path(member.name).stem, fh.read().decode("utf-8", errors="replace")


#: The manifest of an unpacked archive (JSON): the member names as written in the archive, the relative path each was
#: extracted to, and the members refused with the reason.
ARCHIVE_MANIFEST = ".lisearch-members.json"


def _safe_member(member: tarfile.TarInfo, staging: Path) -> tuple[tarfile.TarInfo | None, str | None]:
    """(the member as it will be extracted, None) or (None, why it is refused): only regular ``.cif`` files whose
    name has no control characters and that :func:`tarfile.data_filter` keeps inside the folder."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in member.name):
        return None, f"archive member {member.name!r} refused: its name contains control characters"
    try:
        safe = tarfile.data_filter(member, str(staging))
    except tarfile.FilterError as exc:
        return None, f"archive member {member.name!r} refused: {exc}"
    if safe is None:
        return None, f"archive member {member.name!r} refused by the data filter"
    return safe, None


def _unpack(source: Path, folder: Path, cache_dir: Path) -> None:
    """Unpack the ``.cif`` members of the tar archive ``source`` into ``folder`` through a staging folder renamed
    into place when complete; on any failure the staging folder is removed, so no half-unpacked folder remains."""
    staging = cache_dir / f".{folder.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        members: list[dict[str, str]] = []
        refused: list[dict[str, str]] = []
        with tarfile.open(source) as tar:
            for member in tar:
                if not (member.isfile() and member.name.lower().endswith(CIF_SUFFIXES)):
                    continue
                safe, why = _safe_member(member, staging)
                if safe is None:
                    refused.append({"name": member.name, "reason": str(why)})
                    continue
                tar.extract(safe, staging, filter="data")
                members.append({"name": member.name, "path": safe.name})
        manifest = {"archive": str(source), "members": members, "refused": refused}
        (staging / ARCHIVE_MANIFEST).write_text(json.dumps(manifest))
        if (folder / ARCHIVE_MANIFEST).is_file():  # another process finished first
            shutil.rmtree(staging)
        else:
            if folder.exists():  # unpacked by an older lisearch, without this manifest
                shutil.rmtree(folder)
            staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def cif_files(source: Path, cache_dir: Path) -> Iterator[tuple[str, Path | None, str | None]]:
    """Yield ``(structure_id, path of the CIF file, None)`` for every ``.cif`` of a folder (recursively, sorted) or of
    a tar archive, in the order of :func:`iter_cifs`, and ``(structure_id, None, reason)`` for an archive member that
    is refused (a name with control characters, an absolute or ``..`` path, a link out of the folder). An archive is
    unpacked once into ``cache_dir`` (a folder under the lisearch home, which every Spark worker can read on a
    cluster's shared storage); the unpacked copy is reused while the archive's size and modification time are
    unchanged, and a half-written copy is never used. Every path yielded lies inside :func:`cif_root`."""
    if source.is_dir():
        for path in sorted(source.rglob("*.cif")):
            yield path.stem, path, None
        return
    folder = cif_root(source, cache_dir)
    if not (folder / ARCHIVE_MANIFEST).is_file():
        _unpack(source, folder, cache_dir)
    try:
        manifest = json.loads((folder / ARCHIVE_MANIFEST).read_text())
        members, refused = manifest["members"], manifest["refused"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"The unpacked copy of {source} in {folder} is damaged ({exc}). Delete that folder and run again."
        ) from None
    for entry in members:
        yield Path(entry["name"]).stem, folder / entry["path"], None
    for entry in refused:
        yield Path(entry["name"]).stem, None, entry["reason"]


def cif_root(source: Path, cache_dir: Path) -> Path:
    """The folder every CIF path of ``source`` must resolve inside: the folder itself, or an archive's unpacked copy
    under ``cache_dir`` (named by the archive's name, size and modification time)."""
    if source.is_dir():
        return source
    stat = source.stat()
    return cache_dir / f"{source.name}-{stat.st_size}-{stat.st_mtime_ns}"


# ------------------------------------------------------------------------------------------------- OBELiX
OBELIX_DIR = DATA_DIR / "obelix"
OBELIX_CIFS = OBELIX_DIR / "all_cifs.tar.gz"
OBELIX_COLUMNS = {
    "ID": "id",
    "Reduced Composition": "formula",
    "True Composition": "composition",
    "Ionic conductivity (S cm-1)": "sigma_raw",
    "Space group #": "space_group_number",
    "Family": "family",
    "DOI": "doi",
    "Cif ID": "cif_status",
}


def parse_conductivities(values: Sequence[Any], ids: Sequence[str], source: str = "OBELiX") -> tuple[Any, Any]:
    """Measured conductivities as written in OBELiX -> (sigma (n,) float64 S/cm, censored (n,) bool).

    A number is a measurement; ``"<1E-10"`` is an upper bound: ``sigma`` holds the bound and ``censored`` is True.
    Raises :class:`InputError` naming the row and the value when one is neither (or not positive).
    """
    sigma = np.empty(len(values))
    censored = np.zeros(len(values), dtype=bool)
    for i, (value, row_id) in enumerate(zip(values, ids, strict=True)):
        text = str(value).strip()
        bound = text.startswith("<")
        try:
            number = float(text[1:] if bound else text)
        except ValueError:
            number = float("nan")
        if not np.isfinite(number) or number <= 0:
            raise InputError(
                f"{source}: the conductivity {value!r} of row {row_id!r} is not a positive number in S/cm nor an "
                "upper bound such as '<1E-10'. Fix or remove that row."
            )
        sigma[i], censored[i] = number, bound
    return sigma, censored


def obelix(path: Path | None = None) -> pd.DataFrame:
    """The OBELiX measured set (599 Li solid electrolytes; provenance in ``data/obelix/SOURCE.txt``).

    Columns: id, formula (reduced, as written), composition (true composition), sigma_s_per_cm (float, S/cm; the
    bound for censored rows), censored (True for upper bounds such as "<1E-10"), log10_sigma, family,
    space_group_number, doi, split ("train" / "test": the official OBELiX split), cif_id (the id of the bundled CIF
    in ``all_cifs.tar.gz``, or None).

    ``path``: another CSV with OBELiX's columns (at least ID, Reduced Composition and Ionic conductivity);
    its rows get the split "none" unless their ids are in the official split files.
    """
    source = Path(path) if path is not None else OBELIX_DIR / "all.csv"
    if not source.is_file():
        raise InputError(f"No OBELiX table at {source}. Give an existing CSV with OBELiX's columns.")
    try:
        raw = pd.read_csv(source, dtype={"ID": str, "Ionic conductivity (S cm-1)": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{source} is not a readable CSV ({exc}).") from None
    missing = [c for c in ("ID", "Reduced Composition", "Ionic conductivity (S cm-1)") if c not in raw.columns]
    if missing:
        raise InputError(f"{source} lacks the OBELiX column(s) {', '.join(missing)}; columns: {list(raw.columns)}.")
    frame = raw.rename(columns=OBELIX_COLUMNS)
    for column in OBELIX_COLUMNS.values():
        if column not in frame.columns:
            frame[column] = None
    frame["composition"] = frame["composition"].fillna(frame["formula"])
    sigma, censored = parse_conductivities(frame["sigma_raw"].tolist(), frame["id"].tolist(), str(source))
    frame["sigma_s_per_cm"], frame["censored"] = sigma, censored
    frame["log10_sigma"] = np.log10(sigma)
    train = set(pd.read_csv(OBELIX_DIR / "train_idx.csv", dtype=str)["ID"])
    test = set(pd.read_csv(OBELIX_DIR / "test_idx.csv", dtype=str)["ID"])
    frame["split"] = [("train" if i in train else "test" if i in test else "none") for i in frame["id"]]
    frame["cif_id"] = [i if s == "done" else None for i, s in zip(frame["id"], frame["cif_status"], strict=True)]
    keep = ["id", "formula", "composition", "sigma_s_per_cm", "censored", "log10_sigma", "family"]
    return frame[[*keep, "space_group_number", "doi", "split", "cif_id"]].reset_index(drop=True)
