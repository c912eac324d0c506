"""Integrals of intensities given on nodes of each interval, for models without a closed-form compensator.

``quadrature_nodes(scheme, order)`` gives nodes in [0, 1] and weights summing
to 1; evaluate the intensity at ``start + (end - start) * node`` and
``integrate_intervals`` returns ``(end - start) * sum(weights * values)`` per
interval (C).  Schemes: ``"gauss_legendre"`` (exact for polynomials of degree
2 * order - 1) and EasyTPP's own grid for reproducing its numbers exactly:
``"easytpp_mean"`` (``linspace(0, 1, G)``, equal weights: its
``use_mc_samples: true``) and ``"easytpp_trapezoid"`` (its ``false``).
"""
from __future__ import annotations

import numpy as np

from lamp import _core

__all__ = ["SCHEMES", "quadrature_nodes", "integrate_intervals", "compensator"]

# the C core's scheme numbers (csrc/hawkes/quadrature.h, exported by the binding)
SCHEMES = {"gauss_legendre": _core.QUADRATURE_GAUSS_LEGENDRE, "easytpp_mean": _core.QUADRATURE_EASYTPP_MEAN,
           "easytpp_trapezoid": _core.QUADRATURE_EASYTPP_TRAPEZOID}


def quadrature_nodes(scheme: str = "gauss_legendre", order: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(nodes in [0, 1], weights summing to 1) of a scheme."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    return _core.quadrature_nodes(SCHEMES[scheme], int(order))


def integrate_intervals(starts, ends, values, weights) -> np.ndarray:
    """``(ends - starts) * (values @ weights)`` per interval, with the inputs checked."""
    return _core.integrate_intervals(starts, ends, values, weights)


def compensator(intensity, times, end_time: float, scheme: str = "gauss_legendre", order: int = 20) -> float:
    """Integral of ``intensity`` over ``[0, end_time]``, interval by interval between the event times.

    ``intensity`` maps an array of time points (any shape) to the total intensity at them.
    """
    times = np.asarray(times, dtype=np.float64)
    bounds = np.concatenate([[0.0], times[times < end_time], [float(end_time)]])
    starts, ends = bounds[:-1], bounds[1:]
    nodes, weights = quadrature_nodes(scheme, order)
    points = starts[:, None] + (ends - starts)[:, None] * nodes[None, :]
    values = np.asarray(intensity(points), dtype=np.float64).reshape(points.shape)
    return float(integrate_intervals(starts, ends, values, weights).sum())
