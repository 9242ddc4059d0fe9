"""matplotlib for lisearch's figures, in one place: the non-interactive backend outside notebooks, and the import
of matplotlib (slow, ~0.5 s) only when a figure is drawn."""

from __future__ import annotations

import sys
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot``, with the file-only Agg backend unless running in a notebook kernel."""
    import matplotlib  # noqa: PLC0415 (imported when a figure is drawn, not with every command)

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")  # files only, outside notebooks
    import matplotlib.pyplot as plt  # noqa: PLC0415 (imported when a figure is drawn, not with every command)

    return plt


__all__ = ["pyplot"]
