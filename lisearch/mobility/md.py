"""Short molecular dynamics with the universal potential: is Li mobile at high temperature (Kahle et al. 2020)?

One simulation = one structure at one temperature: a supercell at least ``min_cell_length`` long in every
direction, Maxwell-Boltzmann velocities (seeded), NVT with the Bussi stochastic velocity-rescaling thermostat
(ASE's ``Bussi``; it samples the canonical ensemble and perturbs the dynamics little, which a diffusivity needs),
``equilibration_ps`` thermalised, then ``md_ps`` during which every atom's unwrapped position is recorded every
``sample_fs``. From those: the Li diffusivity with its error and the Nernst-Einstein conductivity at that
temperature (:mod:`lisearch.mobility.diffusion`), and the framework's (non-Li) mean squared displacement: above
``melt_msd`` the framework itself flowed (melted or amorphised) and the run's status is ``melted``. A run that cannot
go on (atoms closer than :data:`MIN_DISTANCE`, an element the potential does not cover, NaN energies, forces or a
temperature that ran away) has status ``failed`` and a reason. Potentials trained on the Materials Project soften
barriers: the numbers rank materials, they are not room-temperature conductivities.

The potential is loaded once per process (:func:`lisearch.materials.potential.load_potential`).
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lisearch.materials.potential import POTENTIAL, load_potential, uncovered_elements
from lisearch.mobility.diffusion import diffusivity, final_msd, nernst_einstein

#: Atoms closer than this (A) at the start: the structure is broken, the run is not started.
MIN_DISTANCE = 0.7
#: A force above this (eV/A) or a temperature above this multiple of the target stops the run as failed.
MAX_FORCE = 1e3
MAX_TEMPERATURE_FACTOR = 5.0
#: Bussi thermostat time constant (fs).
THERMOSTAT_FS = 100.0


class _Stop(Exception):
    """A simulation that cannot go on (the reason is the message)."""


@dataclass
class Simulation:
    """The summary row of one run (:data:`lisearch.schema.MOBILITY_MD_COLUMNS` without the keys): status (``ok`` |
    ``melted`` | ``failed``), reason, temperature_k, atoms and li_atoms of the supercell, volume_a3, simulated_ps
    (after equilibration), mean_temperature_k, li_diffusivity and li_diffusivity_err (cm^2/s), li_msd_final and
    framework_msd (A^2, first to last recorded frame), sigma_s_cm (Nernst-Einstein at temperature_k), seconds
    (wall clock), potential."""

    status: str
    reason: str | None
    temperature_k: float
    atoms: int = 0
    li_atoms: int = 0
    volume_a3: float = math.nan
    simulated_ps: float = 0.0
    mean_temperature_k: float = math.nan
    li_diffusivity: float = math.nan
    li_diffusivity_err: float = math.nan
    li_msd_final: float = math.nan
    framework_msd: float = math.nan
    sigma_s_cm: float = math.nan
    seconds: float = 0.0
    potential: str = POTENTIAL

    def row(self) -> dict[str, Any]:
        """As a plain dict (NaN kept: the table's nullable doubles take them as nulls where written)."""
        return asdict(self)


def _calculator(device: str) -> Any:
    """CHGNet as an ASE calculator of energy and forces only (NVT needs no stress: a third less time per step)."""
    from chgnet.model.dynamics import CHGNetCalculator  # noqa: PLC0415 (heavy import, needed here only)

    class EnergyForces(CHGNetCalculator):
        def calculate(self, atoms: Any = None, properties: Any = None, system_changes: Any = None,
                      task: str = "ef") -> None:  # fmt: skip
            super().calculate(atoms, properties, system_changes, task="ef")

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device
        return EnergyForces(model=load_potential(device), use_device=device, on_isolated_atoms="error")


def supercell_multiples(lattice_matrix: np.ndarray, min_length: float) -> tuple[int, int, int]:
    """Repeats (na, nb, nc) so that each of the supercell's perpendicular widths (volume / area of the opposite
    face) is at least ``min_length`` A."""
    m = np.asarray(lattice_matrix, dtype=np.float64)
    volume = abs(float(np.linalg.det(m)))
    widths = [volume / float(np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3]))) for i in range(3)]
    return tuple(max(1, math.ceil(min_length / w - 1e-9)) for w in widths)  # type: ignore[return-value]


def _start(structure: Any, settings: Any, device: str) -> Any:
    """The ASE atoms of the supercell, checked, with velocities and the potential attached."""
    from pymatgen.io.ase import AseAtomsAdaptor  # noqa: PLC0415 (slow import, needed here only)

    missing = uncovered_elements(structure)
    if missing:
        raise _Stop(f"element(s) {', '.join(missing)} not covered by {POTENTIAL}")
    if "Li" not in {str(e) for e in structure.composition.elements}:
        raise _Stop("no Li in the structure")
    if not structure.is_ordered:
        raise _Stop("MD needs an ordered structure")
    closest = structure.distance_matrix[np.triu_indices(len(structure), 1)].min() if len(structure) > 1 else math.inf
    if closest < MIN_DISTANCE:
        raise _Stop(f"atoms too close: {closest:.2f} A < {MIN_DISTANCE} A")
    repeats = supercell_multiples(structure.lattice.matrix, settings.min_cell_length)
    atoms = AseAtomsAdaptor.get_atoms(structure * repeats)
    atoms.calc = _calculator(device)
    return atoms


def _check(atoms: Any, temperature: float) -> float:
    forces = atoms.get_forces()
    current = float(atoms.get_temperature())
    if not np.isfinite(forces).all() or not math.isfinite(current):
        raise _Stop("the potential gave NaN forces or energies")
    if np.abs(forces).max() > MAX_FORCE:
        raise _Stop(f"exploding forces (largest {np.abs(forces).max():.3g} eV/A)")
    if current > MAX_TEMPERATURE_FACTOR * temperature:
        raise _Stop(f"the temperature ran away ({current:.0f} K for a target of {temperature:.0f} K)")
    return current


def _run(atoms: Any, temperature: float, settings: Any) -> tuple[np.ndarray, list[float]]:
    """Equilibrate, then run and record positions; (frames, atoms, 3) A and the temperature of each frame."""
    from ase import units  # noqa: PLC0415 (heavy import)
    from ase.md.bussi import Bussi  # noqa: PLC0415
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary  # noqa: PLC0415

    rng = np.random.default_rng(settings.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    dyn = Bussi(atoms, timestep=settings.timestep_fs * units.fs, temperature_K=temperature,
                taut=THERMOSTAT_FS * units.fs, rng=rng)  # fmt: skip
    every = max(1, round(settings.sample_fs / settings.timestep_fs))
    for _ in range(round(settings.equilibration_ps * 1000 / settings.timestep_fs) // every):
        dyn.run(every)
        _check(atoms, temperature)
    frames, temps = [atoms.get_positions().copy()], [float(atoms.get_temperature())]
    for _ in range(max(2, round(settings.md_ps * 1000 / settings.sample_fs))):
        dyn.run(every)
        temps.append(_check(atoms, temperature))
        frames.append(atoms.get_positions().copy())
    return np.stack(frames), temps


def simulate(structure: Any, temperature: float, settings: Any, device: str = "cpu") -> Simulation:
    """One NVT run of ``structure`` (pymatgen, ordered) at ``temperature`` K with ``settings`` (a
    :class:`lisearch.config.MobilitySettings`) on ``device``; never raises for a bad structure."""
    started = time.perf_counter()
    result = Simulation("failed", None, float(temperature))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = _start(structure, settings, device)
            is_li = np.array([s == "Li" for s in atoms.get_chemical_symbols()])
            result.atoms, result.li_atoms, result.volume_a3 = len(atoms), int(is_li.sum()), float(atoms.get_volume())
            positions, temps = _run(atoms, float(temperature), settings)
    except _Stop as exc:
        result.reason, result.seconds = str(exc), round(time.perf_counter() - started, 2)
        return result
    except (ValueError, RuntimeError, IndexError) as exc:  # e.g. an atom pushed out of every neighbour's reach
        result.reason = f"the simulation stopped: {type(exc).__name__}: {str(exc)[:200]}"
        result.seconds = round(time.perf_counter() - started, 2)
        return result
    dt = settings.sample_fs
    fit = diffusivity(positions[:, is_li], dt)
    result.simulated_ps = (len(positions) - 1) * dt / 1000
    result.mean_temperature_k = float(np.mean(temps[1:]))
    result.li_diffusivity, result.li_diffusivity_err = fit.d, fit.d_err
    result.li_msd_final, result.framework_msd = final_msd(positions[:, is_li]), final_msd(positions[:, ~is_li])
    result.sigma_s_cm = nernst_einstein(fit.d, result.li_atoms, result.volume_a3, float(temperature))
    melted = result.framework_msd > settings.melt_msd
    result.status = "melted" if melted else "ok"
    if melted:
        result.reason = (f"the framework moved {result.framework_msd:.2f} A^2 (> mobility.melt_msd "
                         f"{settings.melt_msd}): melted or amorphised")  # fmt: skip
    result.seconds = round(time.perf_counter() - started, 2)
    return result


__all__ = ["MAX_FORCE", "MIN_DISTANCE", "Simulation", "simulate", "supercell_multiples"]
