"""spark-submit entry point: score a screen run's `candidates` with the measured-conductivity models into
`measured_candidates`.

    spark-submit --jars "$(lisearch jars)" jobs/score_measured.py [--profile local] [--run-id default]

Same options as `lisearch score-measured`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["score-measured", *sys.argv[1:]]))
