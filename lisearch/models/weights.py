"""lisearch's class-weight vocabulary (``balanced``, ``none``, ``1:w``) in scikit-learn's terms, beside the models that
take it; the settings check it with the same function (no lisearch import here)."""

from __future__ import annotations


def class_weight_value(text: str) -> str | dict[int, float] | None:
    """``balanced`` -> "balanced", ``none`` -> None, ``1:w`` -> {0: 1, 1: w} (weight w > 0 on the superionic class).
    Raises ValueError for anything else."""
    if text in ("balanced", "none"):
        return None if text == "none" else text
    one, _, weight = text.partition(":")
    if one != "1" or not weight or not float(weight) > 0:  # float() raises ValueError for non-numbers
        raise ValueError(f"class weight {text!r}")
    return {0: 1.0, 1: float(weight)}


__all__ = ["class_weight_value"]
