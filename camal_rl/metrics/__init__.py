"""Attention metrics (docs/design.md, "Attention metrics"): pure numpy/torch functions on batches.

- :mod:`~camal_rl.metrics.alignment`: does the saliency lie on the relevant objects
  (energy pointing game, IoU of the top-|M| pixels, pointing game, ROC-AUC), and is it flat
  (no preference at all)?
- :mod:`~camal_rl.metrics.faithfulness`: does the decision depend on the salient pixels
  (deletion / insertion AUC, comprehensiveness / sufficiency, occlusion KL ratio), and on the
  relevant objects at all (the saliency-free behaviour check)?

Every metric here is per sample: it returns an ndarray (B,) of float64, ``nan`` where the mask is
empty. Aggregating them (per step -> per episode -> per seed, IQM, bootstrap CIs, coverage) is
:mod:`camal_rl.statistics`'s job, which drops those samples and reports coverage.
"""

from camal_rl.metrics.alignment import energy_pointing_game, flat_map, iou_top_k, pointing_game, roc_auc
from camal_rl.metrics.faithfulness import (
    behaviour_kl,
    comprehensiveness,
    deletion_auc,
    insertion_auc,
    occlusion_kl_ratio,
    perturbation_curve,
    sufficiency,
)

__all__ = [
    "behaviour_kl",
    "comprehensiveness",
    "deletion_auc",
    "energy_pointing_game",
    "flat_map",
    "insertion_auc",
    "iou_top_k",
    "occlusion_kl_ratio",
    "perturbation_curve",
    "pointing_game",
    "roc_auc",
    "sufficiency",
]
