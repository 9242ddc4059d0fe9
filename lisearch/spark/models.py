"""Spark glue of the model commands: read the sML labels from the `structures` table into pandas."""

from __future__ import annotations

import pandas as pd

from lisearch.config import Settings
from lisearch.spark.catalog import read_table
from lisearch.spark.session import get_session


def read_structures(settings: Settings) -> pd.DataFrame:
    """material_id, formula, elements, fractions, label, status of every row of `structures`."""
    spark = get_session(settings)
    frame = read_table(spark, settings.paths.warehouse_dir, "structures")
    return frame.select("material_id", "formula", "elements", "fractions", "label", "status").toPandas()
