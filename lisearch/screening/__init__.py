"""The composition screen without Spark: the space and its blocks (:mod:`.space`), the kernel (:mod:`.kernels`) and
its exact decisions (:mod:`.exact`), the driver's plan (:mod:`.plan`), the funnel (:mod:`.funnel`) and the files
the executor tasks write (:mod:`.files`). :mod:`lisearch.spark.screen` runs it on Spark."""
