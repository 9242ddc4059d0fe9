"""spark-submit entry point: label crystal structures with the Sendek model into the Delta table `structures`.

    spark-submit --jars "$(lisearch jars)" jobs/label_structures.py [--profile local] [--source PATH] [--force]

Same options as `lisearch label-structures`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["label-structures", *sys.argv[1:]]))
