"""spark-submit entry point: narrow a screen run to stable oxides (`stable_oxides`) and compare with Table III.

    spark-submit --jars "$(lisearch jars)" jobs/narrow.py [--profile local] [--run-id default]

Same options as `lisearch narrow`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["narrow", *sys.argv[1:]]))
