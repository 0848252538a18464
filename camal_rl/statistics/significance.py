"""Significance tests between two sets of per-seed values, and the correction of their p-values
for multiple testing.

The seed is the unit of replication: every test compares the per-seed values of two agent
variants (:func:`camal_rl.statistics.metric_values`).

- Welch's t-test (Welch, "The generalization of 'Student's' problem when several different
  population variances are involved", Biometrika 1947): difference of means without assuming
  equal variances, ``scipy.stats.ttest_ind(equal_var=False)``, two-sided.
- Mann-Whitney U test (Mann & Whitney, "On a test of whether one of two random variables is
  stochastically larger than the other", Ann. Math. Statist. 1947): rank-based, no normality
  assumption, ``scipy.stats.mannwhitneyu``, two-sided.

One table tests many comparisons and metrics, and some p < 0.05 turn up by chance alone:

- Holm's step-down method (Holm, "A simple sequentially rejective multiple test procedure",
  Scand. J. Statist. 1979) controls the family-wise error rate, the chance of any false
  rejection, under any dependence between the tests. scipy has none; :func:`holm` is its
  definition.
- Benjamini & Hochberg's method ("Controlling the false discovery rate", J. R. Statist. Soc. B
  1995) controls the expected share of false rejections among the rejections,
  ``scipy.stats.false_discovery_control(method="bh")``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from camal_rl.errors import InputError
from camal_rl.statistics.estimates import Values, defined

MAX_EXACT_SPLITS = 20_000
"""Mann-Whitney U with ties: exact permutation p-value up to this many splits of the pooled
values (``comb(n_a + n_b, n_a)``; 8 vs 8 seeds is 12870), the normal approximation above."""
Correction = Literal["holm", "bh"]
"""Multiplicity correction: ``"holm"`` (family-wise error rate) or ``"bh"`` (Benjamini-Hochberg,
false discovery rate)."""
CORRECTIONS: dict[str, str] = {"holm": "Holm (1979)", "bh": "Benjamini-Hochberg (1995)"}
"""Each :data:`Correction` by the name and year a legend cites."""


@dataclass(frozen=True)
class TestResult:
    """A two-sample test of ``a`` against ``b``."""

    statistic: float
    """Welch's t, or Mann-Whitney's U of ``a`` (pairs with a > b, ties counting one half)."""
    p_value: float
    """Two-sided p-value; ``nan`` when the test is undefined (``note`` says why)."""
    n_a: int
    """Defined values of ``a``."""
    n_b: int
    """Defined values of ``b``."""
    df: float = math.nan
    """Welch-Satterthwaite degrees of freedom (Welch only)."""
    method: str = ""
    """How the p-value was computed: ``welch``; ``exact``, ``permutation`` or ``asymptotic`` (U)."""
    note: str = ""
    """Why the result is ``nan``; empty when it is defined."""


def _degenerate(a: np.ndarray, b: np.ndarray) -> str:
    """Why no test is possible on ``a`` and ``b``, or ``""``."""
    if a.size < 2 or b.size < 2:
        return f"needs at least 2 seeds per group, got {a.size} and {b.size}"
    if np.all(np.concatenate([a, b]) == a[0]):
        return "all values are equal: nothing to test"
    return ""


def welch_t_test(a: Values, b: Values) -> TestResult:
    """Welch's unequal-variances t-test of ``mean(a) == mean(b)``, two-sided (Welch 1947).

    ``nan`` values (seeds without the metric) are dropped. The result is ``nan`` with a ``note``
    when either group has fewer than 2 values (no variance estimate), when all values are equal,
    and when both groups are constant but differ (``t`` is infinite; scipy would
    return ``p = 0``, which no finite sample can support: see the Mann-Whitney U test instead).

    :param a: per-seed values of the first variant.
    :param b: per-seed values of the second variant.
    """
    x, y = defined(a), defined(b)
    note = _degenerate(x, y)
    constant = [bool(np.all(v == v[0])) for v in (x, y) if v.size]
    if not note and all(constant):
        note = "zero variance in both groups: Welch's t is undefined (see the Mann-Whitney U test)"
    if note:
        return TestResult(math.nan, math.nan, x.size, y.size, method="welch", note=note)
    with warnings.catch_warnings():
        if any(constant):
            # a constant group's variance comes out as ~1e-33, not 0, and scipy warns of
            # "precision loss"; the result is right (that group adds nothing to the standard error)
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = sps.ttest_ind(x, y, equal_var=False)
    return TestResult(
        float(result.statistic), float(result.pvalue), x.size, y.size, df=float(result.df), method="welch"
    )


def mann_whitney_u(a: Values, b: Values) -> TestResult:
    """Mann-Whitney U test of ``a`` and ``b`` coming from one distribution, two-sided
    (Mann & Whitney 1947).

    The p-value is exact for small samples: the exact U distribution without ties when a group
    has at most 8 values (scipy's ``"auto"`` rule), the exact permutation distribution when there
    are ties and at most :data:`MAX_EXACT_SPLITS` splits (scipy's ``"auto"`` would use the normal
    approximation, which is far too small for a few seeds: 0.047 instead of 0.1 for
    ``[1, 1, 1]`` vs ``[2, 2, 2]``), else the tie-corrected normal approximation.
    ``nan`` values are dropped; the result is ``nan`` with a ``note`` when a group has fewer
    than 2 values or all values are equal.

    :param a: per-seed values of the first variant.
    :param b: per-seed values of the second variant.
    """
    x, y = defined(a), defined(b)
    note = _degenerate(x, y)
    if note:
        return TestResult(math.nan, math.nan, x.size, y.size, note=note)
    ties = np.unique(np.concatenate([x, y])).size < x.size + y.size
    method: Any
    if not ties and min(x.size, y.size) <= 8:
        name, method = "exact", "exact"
    elif ties and math.comb(x.size + y.size, x.size) <= MAX_EXACT_SPLITS:
        name, method = "permutation", sps.PermutationMethod(n_resamples=np.inf)
    else:
        name, method = "asymptotic", "asymptotic"
    result = sps.mannwhitneyu(x, y, alternative="two-sided", method=method)
    return TestResult(float(result.statistic), float(result.pvalue), x.size, y.size, method=name)


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
