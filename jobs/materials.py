"""spark-submit entry point: the top of a run's shortlist to predicted crystal structures, relaxed by the potential,
with their energy above the convex hull, into `materials` (and the competing phases' energies into `phases`).

    spark-submit --jars "$(lisearch jars)" jobs/materials.py [--profile local] [--run-id default] [--top 10]

Same options as `lisearch materials`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["materials", *sys.argv[1:]]))
