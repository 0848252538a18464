"""Adjusting p-values for multiple testing: one table tests many comparisons and metrics, and
some p < 0.05 turn up by chance alone.

- Holm's step-down method (Holm, "A simple sequentially rejective multiple test procedure",
  Scand. J. Statist. 1979) controls the family-wise error rate, the chance of any false
  rejection, under any dependence between the tests. scipy has none; :func:`holm` is its
  definition.
- Benjamini & Hochberg's method ("Controlling the false discovery rate", J. R. Statist. Soc. B
  1995) controls the expected share of false rejections among the rejections,
  ``scipy.stats.false_discovery_control(method="bh")``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats as sps

from camal_rl.errors import InputError
from camal_rl.metrics.aggregate import Values

Correction = Literal["holm", "bh"]
"""Multiplicity correction: ``"holm"`` (family-wise error rate) or ``"bh"`` (Benjamini-Hochberg,
false discovery rate)."""
CORRECTIONS: dict[str, str] = {"holm": "Holm (1979)", "bh": "Benjamini-Hochberg (1995)"}
"""Each :data:`Correction` by the name and year a legend cites."""


def holm(p_values: Values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), which control the family-wise error rate:
    with the ``m`` p-values sorted, ``p_(1) <= ... <= p_(m)``, the ``i``-th adjusted value is
    ``min(1, max_{j <= i} (m - j + 1) * p_(j))``. ``nan`` stays ``nan`` and does not count in ``m``.

    :param p_values: 1-D p-values in [0, 1], ``nan`` for undefined tests.
    :return: adjusted p-values, in the order given.
    :raises InputError: the p-values are not one-dimensional.
    """
    p = _one_per_test(p_values)
    adjusted = np.full(p.shape, np.nan)
    finite = ~np.isnan(p)
    order = np.argsort(p[finite], kind="stable")
    m = order.size
    steps = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[finite][order]))
    adjusted[np.flatnonzero(finite)[order]] = steps
    return adjusted


def adjust_p_values(p_values: Values, method: Correction = "holm") -> np.ndarray:
    """P-values adjusted for multiple testing over one family: Holm's step-down method
    (:func:`holm`) or Benjamini & Hochberg's (1995) false discovery rate
    (``scipy.stats.false_discovery_control(method="bh")``). ``nan`` p-values (undefined tests)
    stay ``nan`` and do not count in the family.

    :param p_values: 1-D p-values in [0, 1], ``nan`` for undefined tests.
    :param method: ``"holm"`` or ``"bh"``.
    :return: adjusted p-values, in the order given.
    :raises InputError: ``method`` is neither, or the p-values are not one-dimensional.
    """
    if method not in CORRECTIONS:
        raise InputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    p = _one_per_test(p_values)
    if method == "holm":
        return holm(p)
    adjusted = np.full(p.shape, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = sps.false_discovery_control(p[finite], method="bh")
    return adjusted


def _one_per_test(p_values: Values) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise InputError(f"p_values must be one-dimensional (one per test), got shape {p.shape}")
    return p
