"""The library and its kernels never import pyspark; only lisearch.spark (and jobs) do."""

import subprocess
import sys

KERNEL_MODULES = [
    "lisearch",
    "lisearch.cli",
    "lisearch.config",
    "lisearch.datasets",
    "lisearch.doctor",
    "lisearch.structure.featurizer",
    "lisearch.structure.labelling",
    "lisearch.structure.ordering",
    "lisearch.structure.sendek",
    "lisearch.structure.reference",
]


def test_kernels_do_not_import_pyspark():
    code = (
        "import importlib, sys\n"
        f"for m in {KERNEL_MODULES!r}: importlib.import_module(m)\n"
        "print('pyspark' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_needs_no_spark():
    out = subprocess.run([sys.executable, "-m", "lisearch.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("lisearch ")
