"""lisearch: screening compositions for solid-state Li-ion conductors.

Re-implements Cubuk, Sendek & Reed, J. Chem. Phys. 150, 214701 (2019): a structure-based model (sML)
labels real crystal structures, composition models learn those labels, and the composition space is
screened on Apache Spark into Delta Lake tables.

The Python API (:mod:`lisearch.api`) is re-exported here: :func:`settings`, :func:`featurize`, :func:`label`,
:func:`train`, :func:`predict`, :func:`screen`, :func:`narrow`, :func:`shortlist`, :func:`find_materials`,
:func:`predict_structure`, :func:`paper_study`, :func:`table`; the command line calls the same library functions.
Example::

    import lisearch
    lisearch.predict(["Li3PO4", "Li10GeP2S12"])                    # every trained model, no Spark
    run = lisearch.screen(["O", "P", "S"], step=5, run_id="mine")   # Spark, into Delta tables
    lisearch.table("candidates", run_id="mine").head()

Importing :mod:`lisearch` or any kernel module never imports pyspark; Spark glue lives in
:mod:`lisearch.spark` and is imported only by jobs and the functions that run Spark, when called.
"""

from lisearch.api import (
    featurize,
    find_materials,
    label,
    narrow,
    paper_study,
    predict,
    predict_structure,
    screen,
    settings,
    shortlist,
    table,
    train,
)
from lisearch.version import __version__

__all__ = [
    "__version__", "featurize", "find_materials", "label", "narrow", "paper_study", "predict", "predict_structure",
    "screen", "settings", "shortlist", "table", "train",
]  # fmt: skip
