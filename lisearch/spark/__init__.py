"""Spark glue: session building, the table catalog and the mapInPandas wiring.

This is the only subpackage that imports pyspark. Kernels elsewhere in :mod:`lisearch` are plain numpy /
pandas / pymatgen and are called from here inside Spark tasks.
"""
