from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from lisearch.datasets import obelix_cif
from lisearch.structure.labelling import OUTPUT_DDL, label_cif_files, label_cifs, parse_cif
from lisearch.structure.ordering import majority_ordering, sample_orderings


def _split_site_structure() -> Structure:
    """Li split over two sites 0.5 Å apart (occupancy 0.5 each), a mixed Ge/P site, ordered O."""
    lattice = Lattice.cubic(5.0)
    species = [{"Li": 0.5}, {"Li": 0.5}, {"Ge": 0.4, "P": 0.6}, "O", "O"]
    coords = [[0, 0, 0], [0.1, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0]]
    return Structure(lattice, species, coords)


def test_majority_ordering_keeps_one_of_split_sites_and_majority_species():
    ordered = majority_ordering(_split_site_structure())
    assert ordered.is_ordered
    assert ordered.composition.as_dict() == {"Li": 1.0, "P": 1.0, "O": 2.0}


def test_sampled_orderings_respect_exclusion_and_occupancies():
    samples = sample_orderings(_split_site_structure(), n_samples=400, seed=1)
    li = np.array([s.composition["Li"] for s in samples])
    assert li.max() <= 1  # split partners are never both occupied
    p_share = np.mean([s.composition["P"] for s in samples])
    assert 0.5 < p_share < 0.7  # P drawn with probability 0.6
    assert all(s.is_ordered for s in samples)
    # Seeded: the same call gives the same orderings.
    again = sample_orderings(_split_site_structure(), n_samples=400, seed=1)
    assert [s.composition for s in again] == [s.composition for s in samples]


def test_ordered_structures_pass_through():
    s = Structure(Lattice.cubic(4.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert majority_ordering(s) is s and sample_orderings(s) == [s]


@pytest.mark.parametrize("rule", ["sample", "majority"])
def test_experimental_cif_with_partial_occupancy_is_labelled(rule: str):
    out = label_cifs(pd.DataFrame({"material_id": ["nip"], "cif": [obelix_cif("nip")]}), partial_occupancy=rule)
    row = out.iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert row["ordering"].startswith(rule)
    assert row["label"] == 1  # Li10SnP2S12-type, a known superionic conductor


def test_label_cifs_rows_statuses_and_schema(cif_folder: Path):
    texts = {p.stem: p.read_text() for p in sorted(cif_folder.glob("*.cif"))}
    batch = pd.DataFrame({"material_id": list(texts), "cif": list(texts.values())})
    out = label_cifs(batch)
    assert list(out.columns) == [c.split()[0] for c in OUTPUT_DDL.split(", ")]
    assert list(out["material_id"]) == list(texts)
    by_id = out.set_index("material_id")
    assert by_id.loc["broken", "status"] == "error" and "unparsable CIF" in by_id.loc["broken", "reason"]
    assert by_id.loc["broken", "label"] == -1
    assert by_id.loc["mp-736", "formula"] == "Li3P" and by_id.loc["mp-736", "label"] == 1
    assert by_id.loc["mp-736", "elements"] == ["Li", "P"]
    assert by_id.loc["mp-736", "fractions"] == pytest.approx([0.75, 0.25])


def test_parse_cif_rejects_empty():
    with pytest.raises(ValueError, match="unparsable CIF"):
        parse_cif("")


def test_an_unreadable_file_is_an_error_row(tmp_path: Path, cif_folder: Path):
    good = sorted(cif_folder.glob("*.cif"))[0]
    batch = pd.DataFrame({"material_id": ["a", "b"], "path": [str(good), str(tmp_path / "gone.cif")]})
    rows = label_cif_files(batch)
    assert (
        rows.loc[1, "status"] == "error"
        and "cannot read" in rows.loc[1, "reason"]
        and "gone.cif" in rows.loc[1, "reason"]
    )
    assert rows.loc[0, "material_id"] == "a" and rows.loc[0, "reason"] != rows.loc[1, "reason"]
