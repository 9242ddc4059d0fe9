"""Mean squared displacement, diffusivity, Nernst-Einstein conductivity and the Arrhenius fit (plain numpy).

Positions are *unwrapped* Cartesian coordinates (A) recorded every ``dt`` fs, shape (frames, atoms, 3). The MSD at a
lag is averaged over every time origin; the diffusivity is the slope of MSD(t) = 6 D t + c fitted over lags between
``fit_start`` and ``fit_end`` (fractions of the trajectory's length: the short-time ballistic part and the long lags
with few origins are left out). Its error is the standard error over the ions: each ion's own slope is fitted the
same way (the mean of those slopes is the slope of the mean MSD, the fit being linear), and the spread of the
slopes over the ions, divided by sqrt(ions), is the uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: A^2/fs in cm^2/s.
A2_PER_FS_IN_CM2_PER_S = 1e-16 / 1e-15
#: Elementary charge (C) and Boltzmann constant (J/K, and eV/K).
E_CHARGE = 1.602176634e-19
K_B = 1.380649e-23
K_B_EV = 8.617333262e-5


@dataclass(frozen=True)
class Diffusivity:
    """D and its standard error (cm^2/s), the ions and lags (fs) the fit used."""

    d: float
    d_err: float
    ions: int
    fit_from_fs: float
    fit_to_fs: float


def msd_per_ion(positions: np.ndarray, max_lag: int) -> np.ndarray:
    """MSD (A^2) per lag 0..max_lag and per ion, averaged over every time origin: (max_lag + 1, atoms).

    ``positions``: (frames, atoms, 3) unwrapped A; ``max_lag`` < frames."""
    positions = np.asarray(positions, dtype=np.float64)
    frames = positions.shape[0]
    if not 0 <= max_lag < frames:
        raise ValueError(f"max_lag {max_lag} must be in [0, {frames - 1}] for {frames} frames")
    out = np.zeros((max_lag + 1, positions.shape[1]))
    for lag in range(1, max_lag + 1):
        step = positions[lag:] - positions[:-lag]
        out[lag] = (step**2).sum(axis=2).mean(axis=0)
    return out


def diffusivity(positions: np.ndarray, dt_fs: float, fit_start: float = 0.1, fit_end: float = 0.5) -> Diffusivity:
    """Tracer diffusivity (cm^2/s) with its standard error over the ions, from unwrapped ``positions`` (frames,
    ions, 3) A recorded every ``dt_fs`` fs; the fit over lags from ``fit_start`` to ``fit_end`` of the length."""
    frames, ions = positions.shape[0], positions.shape[1]
    first, last = max(1, round(fit_start * (frames - 1))), round(fit_end * (frames - 1))
    if ions < 1 or last - first < 2:
        raise ValueError(f"{frames} frames of {ions} ion(s): too few to fit a diffusivity (need >= 3 lags)")
    per_ion = msd_per_ion(positions, last)[first : last + 1]
    t = np.arange(first, last + 1) * dt_fs
    centred = t - t.mean()
    slopes = (centred @ (per_ion - per_ion.mean(axis=0))) / (centred @ centred)  # (ions,), A^2/fs
    d = slopes / 6.0 * A2_PER_FS_IN_CM2_PER_S
    err = float(d.std(ddof=1) / math.sqrt(ions)) if ions > 1 else math.nan
    return Diffusivity(float(d.mean()), err, ions, float(t[0]), float(t[-1]))


def nernst_einstein(d_cm2_s: float, carriers: int, volume_a3: float, temperature_k: float, charge: int = 1) -> float:
    """Conductivity (S/cm) of ``carriers`` ions of ``charge`` in ``volume_a3`` A^3 diffusing with ``d_cm2_s`` at
    ``temperature_k`` (Haven ratio 1): sigma = n q^2 D / (k_B T)."""
    n_per_cm3 = carriers / (volume_a3 * 1e-24)
    return n_per_cm3 * (charge * E_CHARGE) ** 2 * d_cm2_s / (K_B * temperature_k)


def final_msd(positions: np.ndarray) -> float:
    """Mean squared displacement (A^2) between the first and last frame, averaged over the atoms (the melting
    check of the framework)."""
    positions = np.asarray(positions, dtype=np.float64)
    return float(((positions[-1] - positions[0]) ** 2).sum(axis=1).mean()) if len(positions) > 1 else 0.0


def arrhenius(temperatures_k: np.ndarray, d: np.ndarray, d_err: np.ndarray) -> tuple[float, float, float]:
    """Activation energy (eV), its standard error and the prefactor D0 (cm^2/s) of D = D0 exp(-Ea / (k_B T)), by a
    weighted least-squares line of ln D on 1/T (weights from the errors of ln D, the error propagated from them);
    NaN with fewer than 2 usable temperatures (D <= 0 or not finite is left out)."""
    t, d, d_err = (np.asarray(v, dtype=np.float64) for v in (temperatures_k, d, d_err))
    keep = np.isfinite(d) & (d > 0) & np.isfinite(t)
    if keep.sum() < 2:
        return math.nan, math.nan, math.nan
    x, y = 1.0 / t[keep], np.log(d[keep])
    sigma = np.where(np.isfinite(d_err[keep]) & (d_err[keep] > 0), d_err[keep] / d[keep], 1.0)
    w = 1.0 / sigma**2
    design = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    intercept, slope = cov @ (design.T @ (w * y))
    return float(-slope * K_B_EV), float(math.sqrt(cov[1, 1]) * K_B_EV), float(math.exp(intercept))


__all__ = ["Diffusivity", "arrhenius", "diffusivity", "final_msd", "msd_per_ion", "nernst_einstein"]
