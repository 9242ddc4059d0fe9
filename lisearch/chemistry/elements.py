"""Element data: elemental descriptors (with every gap filled and recorded), masses, prices, oxidation states.

Sources, in order of precedence (see ``docs/science.md``):

* the bundled mendeleev 1.3.0 table (``data/elements``) for every descriptor, atomic weight and price;
* pymatgen's element data for gaps in group (lanthanides and actinides: group 3), Pauling electronegativity
  (Kr, Pm, Eu, Tb, Yb, Rn), boiling point and melting point;
* He, Ne, Ar have no Pauling electronegativity anywhere: it is imputed from their Allen electronegativity by
  a linear fit of Pauling on Allen over the elements that have both;
* a missing electron affinity means the anion is unbound: 0 eV;
* boiling points of At, Fr, Pa (nowhere here): from the group neighbour above (I, Cs) or, for Pa, the mean of
  Th and U.

:func:`descriptor_fills` lists every filled value with its source. Tables are built once per process
(``functools.lru_cache``).
"""

from __future__ import annotations

import functools
import hashlib
import warnings

import numpy as np
import pandas as pd

from lisearch.datasets import DATA_DIR, elements_table
from lisearch.errors import InputError

MAX_Z = 94
#: The nine elemental descriptors of Cubuk et al. 2019, in this order.
DESCRIPTORS: tuple[str, ...] = (
    "atomic_number",
    "group",
    "period",
    "electronegativity",
    "electron_affinity",
    "boiling_point",
    "melting_point",
    "density",
    "ionization_energy",
)
_MENDELEEV_COLUMNS = {
    "atomic_number": "atomic_number",
    "group": "group_id",
    "period": "period",
    "electronegativity": "en_pauling",
    "electron_affinity": "electron_affinity",
    "boiling_point": "boiling_point_K",
    "melting_point": "melting_point_K",
    "density": "density",
    "ionization_energy": "ionization_energy_1_eV",
}
_PYMATGEN_FALLBACK = {
    "group": "group",
    "electronegativity": "X",
    "boiling_point": "boiling_point",
    "melting_point": "melting_point",
}

OXIDATION_LISTS = ("pymatgen_common", "pymatgen_icsd", "pymatgen_all", "smact_icsd24")


@functools.lru_cache(maxsize=1)
def _raw() -> pd.DataFrame:
    table = elements_table()
    return table[table["atomic_number"] <= MAX_Z].set_index("symbol")


def symbols() -> tuple[str, ...]:
    """Element symbols with Z <= 94, by atomic number: ``symbols()[Z - 1]`` is element Z."""
    return tuple(_raw().index)


#: Atomic number of lithium, the element every composition lisearch screens contains.
LI_Z = 3


def n_elements() -> int:
    """How many elements lisearch knows (Z = 1..94): the width of a fraction matrix, whose column Z - 1 is element Z."""
    return MAX_Z


def atomic_number(symbol: str) -> int:
    """Z of an element symbol (KeyError naming the symbol when lisearch does not know it)."""
    return atomic_numbers()[symbol]


@functools.lru_cache(maxsize=1)
def atomic_numbers() -> dict[str, int]:
    """The element index, once: symbol -> atomic number Z (1..94). A fraction matrix's column of an element is
    Z - 1; tables of per-element values indexed by Z keep row 0 for "no element"."""
    return {s: z for z, s in enumerate(symbols(), start=1)}


def default_elements() -> tuple[str, ...]:
    """Li's partners in the default composition space: every element with Z <= 94 except Li (93)."""
    return tuple(s for s in symbols() if s != "Li")


@functools.lru_cache(maxsize=1)
def _descriptors_and_fills() -> tuple[pd.DataFrame, pd.DataFrame]:
    from pymatgen.core import Element  # noqa: PLC0415 (slow import, needed here only)

    raw = _raw()
    table = pd.DataFrame({name: raw[col].astype(float) for name, col in _MENDELEEV_COLUMNS.items()})
    fills = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, attr in _PYMATGEN_FALLBACK.items():
            for sym in table.index[table[name].isna()]:
                value = getattr(Element(sym), attr)
                if value is not None and np.isfinite(float(value)):
                    table.loc[sym, name] = float(value)
                    fills.append((sym, name, float(value), f"pymatgen Element.{attr}"))
    missing_x = table.index[table["electronegativity"].isna()]
    allen = raw["en_allen"].astype(float)
    both = table["electronegativity"].notna() & allen.notna()
    slope, intercept = np.polyfit(allen[both], table.loc[both, "electronegativity"], 1)
    for sym in missing_x:
        value = float(slope * allen[sym] + intercept)
        table.loc[sym, "electronegativity"] = value
        fills.append((sym, "electronegativity", value, f"Allen EN {allen[sym]:.2f} via linear fit on Pauling"))
    # Boiling points known nowhere here (At, Fr, Pa, all radioactive): the group neighbour above (At <- I,
    # Fr <- Cs), or the mean of the row neighbours for the actinide Pa (Th, U).
    for sym, donors in {"At": ["I"], "Fr": ["Cs"], "Pa": ["Th", "U"]}.items():
        if sym in table.index and np.isnan(table.loc[sym, "boiling_point"]):
            value = float(table.loc[donors, "boiling_point"].mean())
            table.loc[sym, "boiling_point"] = value
            fills.append((sym, "boiling_point", value, f"imputed from {' and '.join(donors)}"))
    for sym in table.index[table["electron_affinity"].isna()]:
        table.loc[sym, "electron_affinity"] = 0.0
        fills.append((sym, "electron_affinity", 0.0, "no bound anion: 0 eV"))
    if table.isna().any().any():  # pragma: no cover - guarded by tests
        raise RuntimeError(f"descriptor gaps left: {table.columns[table.isna().any()].tolist()}")
    return table, pd.DataFrame(fills, columns=["symbol", "descriptor", "value", "source"])


def descriptor_table() -> pd.DataFrame:
    """The 9 descriptors (columns, :data:`DESCRIPTORS` order) for the 94 elements (rows, by Z); no gaps."""
    return _descriptors_and_fills()[0].copy()


def descriptor_fills() -> pd.DataFrame:
    """Every value not taken from the mendeleev table: symbol, descriptor, value, source."""
    return _descriptors_and_fills()[1].copy()


def descriptor_table_hash() -> str:
    """sha256 of the descriptor table (stored in model artifacts to detect a changed table)."""
    table = descriptor_table()
    return hashlib.sha256(table.to_csv(float_format="%.10g").encode()).hexdigest()


def atomic_masses() -> pd.Series:
    """Standard atomic weight (g/mol) by symbol."""
    return _raw()["atomic_weight"].astype(float)


def prices_per_kg() -> pd.Series:
    """Element price (USD/kg, lower bound of Wikipedia ranges, via mendeleev); NaN where unknown (At, Rn, Fr, Ra,
    Pa): such elements fail any cost limit."""
    return _raw()["price_per_kg"].astype(float)


@functools.cache
def oxidation_states(list_name: str) -> dict[str, tuple[int, ...]]:
    """Oxidation states per element for one of :data:`OXIDATION_LISTS` (Li is always (+1,)).

    ``pymatgen_common`` / ``pymatgen_icsd`` / ``pymatgen_all``: pymatgen's ``common_oxidation_states``,
    ``icsd_oxidation_states`` and ``oxidation_states``; ``smact_icsd24``: SMACT's ICSD 2024 list (shipped).
    Elements without states get an empty tuple (they can never be charge-neutral partners).
    """
    if list_name not in OXIDATION_LISTS:
        raise InputError(f"Unknown oxidation-state list {list_name!r}; use one of {', '.join(OXIDATION_LISTS)}.")
    out: dict[str, tuple[int, ...]] = {}
    if list_name == "smact_icsd24":
        for line in (DATA_DIR / "oxidation" / "smact_icsd24_filtered.txt").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                sym, *states = line.split()
                out[sym] = tuple(sorted(int(s) for s in states))
    else:
        from pymatgen.core import Element  # noqa: PLC0415 (slow import, needed here only)

        attr = {
            "pymatgen_common": "common_oxidation_states",
            "pymatgen_icsd": "icsd_oxidation_states",
            "pymatgen_all": "oxidation_states",
        }[list_name]
        for sym in symbols():
            out[sym] = tuple(sorted(int(s) for s in getattr(Element(sym), attr)))
    out = {sym: out.get(sym, ()) for sym in symbols()}
    out["Li"] = (1,)
    return out
