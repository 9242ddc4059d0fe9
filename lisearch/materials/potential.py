"""The universal interatomic potential: CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), pretrained on the
Materials Project trajectories (MPtrj), version 0.3.0 of its weights as the ``chgnet`` 0.4.2 package carries them
(nothing downloads at run time). Why CHGNet: its weights ship inside the PyPI package (as do SevenNet's; MACE,
MatGL, MatterSim and ORB fetch theirs at run time, which cannot work offline), it runs on CPU, and it is one of the
potentials matbench-discovery scores (F1 0.61 for stability classification); see docs/science.md.

The model is loaded once per Python process (:func:`load_potential`, cached), with one torch thread unless told
otherwise, so a Spark Python worker pays for it once, not per row. Every energy is per atom, in eV, from the same
model: never mixed with DFT energies.

:func:`relax` relaxes positions and cell (FIRE, ASE's ``FrechetCellFilter`` through CHGNet's ``StructOptimizer``) and
returns a :class:`Relaxation` whose ``status`` is ``ok``, ``not_converged`` (the step limit reached; the energy is
that of the last step) or ``failed`` with a ``reason``: an element the potential does not cover, a NaN or infinite
energy, exploding forces or a cell that collapsed or blew up. :func:`static_energy` is the energy of a structure as
given.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from lisearch.errors import InputError

#: The potential's name and weights version (stored with every energy so a cache never mixes models).
POTENTIAL = "CHGNet-0.3.0"
#: Elements the potential was trained on: CHGNet's embedding covers Z = 1..94.
MAX_Z = 94
#: A relaxation fails when a force exceeds this (eV/A) or the volume leaves [1/3, 3] x the start.
MAX_FORCE = 1e3
MAX_VOLUME_FACTOR = 3.0


@dataclass
class Relaxation:
    """The result of :func:`relax`: status (``ok`` | ``not_converged`` | ``failed``), reason (None when ok),
    energy_per_atom (eV), steps, volume_per_atom (A^3), space_group (international symbol at symprec 0.1),
    structure (pymatgen, None when failed)."""

    status: str
    reason: str | None = None
    energy_per_atom: float = float("nan")
    steps: int = 0
    volume_per_atom: float = float("nan")
    space_group: str | None = None
    structure: Any = field(default=None, repr=False)


@functools.cache
def load_potential(device: str = "cpu", threads: int = 1) -> Any:
    """CHGNet with its shipped weights on ``device`` (``cpu``, or ``cuda`` / ``cuda:N`` where executors have a GPU),
    torch limited to ``threads`` threads; once per process and device."""
    try:
        import torch  # noqa: PLC0415 (heavy import, needed here only)
        from chgnet.model import CHGNet  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - the dependency is installed by `make`
        raise InputError(f"The potential needs chgnet and torch ({exc}); run `make setup` to install them.") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f'materials.device is {device!r} but torch sees no GPU here; use "cpu".')
    torch.set_num_threads(max(1, threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, threads)))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its size
        warnings.simplefilter("ignore")
        model = CHGNet.load(verbose=False, use_device=device)
    return model


def uncovered_elements(structure: Any) -> list[str]:
    """Symbols of the structure's elements the potential does not cover (Z > :data:`MAX_Z`)."""
    return sorted(str(e) for e in structure.composition.elements if e.Z > MAX_Z)


def static_energy(structure: Any, device: str = "cpu") -> float:
    """Energy per atom (eV) of a structure as given; NaN when an element is not covered."""
    if uncovered_elements(structure):
        return float("nan")
    model = load_potential(device)
    model.graph_converter.set_isolated_atom_response("error")  # as in relax(): the optimizer sets it for the model
    with warnings.catch_warnings():  # torch's notes on CHGNet's internals are not the user's concern
        warnings.simplefilter("ignore")
        prediction = model.predict_structure(structure, task="e")
    return float(prediction["e"])


def _symmetry(structure: Any, symprec: float) -> tuple[str, int] | None:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer  # noqa: PLC0415 (slow import, needed here only)

    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        return str(analyzer.get_space_group_symbol()), int(analyzer.get_space_group_number())
    except Exception:  # spglib's failures are many and none is worth a crash here
        return None


def space_group(structure: Any, symprec: float = 0.1) -> str | None:
    """International symbol of the structure's space group (spglib at ``symprec``), None when spglib fails."""
    found = _symmetry(structure, symprec)
    return None if found is None else found[0]


def space_group_number(structure: Any, symprec: float = 0.1) -> int | None:
    """The number (1-230) of :func:`space_group`, None when spglib fails."""
    found = _symmetry(structure, symprec)
    return None if found is None else found[1]


def relax(structure: Any, fmax: float = 0.1, steps: int = 300, device: str = "cpu") -> Relaxation:
    """Relax positions and cell until every force is below ``fmax`` (eV/A) or ``steps`` steps; never raises for
    a bad structure (a :class:`Relaxation` with status ``failed`` and its reason instead)."""
    missing = uncovered_elements(structure)
    if missing:
        return Relaxation("failed", f"element(s) {', '.join(missing)} not covered by {POTENTIAL} (Z <= {MAX_Z})")
    if len(structure) == 0:
        return Relaxation("failed", "empty structure")
    from chgnet.model import StructOptimizer  # noqa: PLC0415 (heavy import, needed here only)

    model = load_potential(device)
    start_volume = structure.volume
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device
        warnings.simplefilter("ignore")
        optimizer = StructOptimizer(model=model, optimizer_class="FIRE", use_device=device, on_isolated_atoms="error")
        try:
            result = optimizer.relax(structure, fmax=fmax, steps=steps, relax_cell=True, verbose=False)
        except (ValueError, RuntimeError, FloatingPointError, IndexError) as exc:
            return Relaxation("failed", f"the relaxation stopped: {type(exc).__name__}: {str(exc)[:200]}")
    final: Any = result["final_structure"]
    trajectory: Any = result["trajectory"]
    n_steps = len(trajectory.energies)
    forces = trajectory.forces[-1] if len(trajectory.forces) else None
    largest = float(abs(forces).max()) if forces is not None and len(forces) else float("nan")
    try:
        energy = static_energy(final, device)
    except (ValueError, RuntimeError, IndexError) as exc:  # e.g. atoms pushed apart until isolated
        return Relaxation("failed", f"the potential refused the relaxed structure: {str(exc)[:200]}", steps=n_steps)
    ratio = final.volume / start_volume if start_volume > 0 else float("nan")
    if not math.isfinite(energy):
        return Relaxation("failed", "the potential gave a NaN or infinite energy", steps=n_steps)
    if not math.isfinite(largest) or largest > MAX_FORCE:
        return Relaxation("failed", f"exploding forces (largest {largest:.3g} eV/A)", steps=n_steps)
    if not (1 / MAX_VOLUME_FACTOR <= ratio <= MAX_VOLUME_FACTOR):
        return Relaxation("failed", f"the cell volume changed by a factor {ratio:.3g}", steps=n_steps)
    converged = largest <= fmax
    return Relaxation(
        "ok" if converged else "not_converged",
        None if converged else f"not converged in {steps} steps (largest force {largest:.3g} eV/A)",
        energy,
        n_steps,
        final.volume / len(final),
        space_group(final),
        final,
    )


__all__ = ["MAX_Z", "POTENTIAL", "Relaxation", "load_potential", "relax", "space_group", "static_energy"]
