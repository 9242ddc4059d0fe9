"""Write ``lisearch/data/prototypes/obelix.csv``: OBELiX's ordered Li structures as substitution prototypes.

``python -m tools.obelix_prototypes`` (about 10 s: every ordered CIF is compared with the MP Li structures of the
same reduced formula). Run it again only when the shipped OBELiX CIFs or MP structures change; the test suite checks
the shipped file against a sample of recomputed rows.
"""

from __future__ import annotations

from lisearch.datasets import OBELIX_CIFS, OBELIX_PROTOTYPES, iter_cifs
from lisearch.materials.templates import obelix_prototypes


def main() -> None:
    frame = obelix_prototypes(iter_cifs(OBELIX_CIFS))
    frame.to_csv(OBELIX_PROTOTYPES, index=False)
    print(f"{OBELIX_PROTOTYPES}: {len(frame)} ordered Li structures, {int(frame['duplicate_of'].isna().sum())} new")


if __name__ == "__main__":
    main()
