"""spark-submit entry point: the shortlist of a screen run (`shortlist` table and report files).

    spark-submit --jars "$(lisearch jars)" jobs/shortlist.py [--profile local] [--run-id default]

Same options as `lisearch shortlist`.
"""

import sys

from lisearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["shortlist", *sys.argv[1:]]))
