"""spark-submit entry point: molecular dynamics of a run's best materials into `mobility` (one simulation per task),
and the run's combined ranking of its materials into `ranking`.

    spark-submit --jars "$(lisearch jars)" jobs/mobility.py [--profile local] [--run-id default] [--top 3]

Same options as `lisearch mobility`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["mobility", *sys.argv[1:]]))
