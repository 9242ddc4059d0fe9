"""One logger for lisearch's driver-side progress messages (stderr, timestamped)."""

from __future__ import annotations

import logging
import sys

_CONFIGURED = False


def get_logger(name: str = "lisearch") -> logging.Logger:
    """The named lisearch logger (one stderr handler, time and name, level from the settings)."""
    global _CONFIGURED
    logger = logging.getLogger(name if name.startswith("lisearch") else f"lisearch.{name}")
    if not _CONFIGURED:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("lisearch")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        _CONFIGURED = True
    return logger
