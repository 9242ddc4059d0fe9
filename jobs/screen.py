"""spark-submit entry point: screen the composition space into `candidates`, `funnel`, `funnel_by_set`, `runs`.

    spark-submit --jars "$(lisearch jars)" jobs/screen.py [--profile local] [--elements O,S,P] [--run-id ID]

Same options as `lisearch screen`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["screen", *sys.argv[1:]]))
