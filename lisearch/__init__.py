"""lisearch: screening compositions for solid-state Li-ion conductors.

Re-implements Cubuk, Sendek & Reed, J. Chem. Phys. 150, 214701 (2019): a structure-based model (sML)
labels real crystal structures, composition models learn those labels, and the composition space is
screened on Apache Spark into Delta Lake tables.

Importing :mod:`lisearch` or any kernel module never imports pyspark; Spark glue lives in
:mod:`lisearch.spark` and is imported only by jobs and the commands that run Spark.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lisearch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
