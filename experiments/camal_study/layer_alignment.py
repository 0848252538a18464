"""Grad-CAM alignment at each conv layer of the agents' MiniGridCNN (post hoc, not in the protocol).

CAMAL and energy put their loss on the Grad-CAM of the last conv layer (``to_attention.5``, the
maps of every ``metrics.json``). Does the trained alignment reach the layers below it, or is it
confined to the layer the loss sees? For every evaluated run of the cells given, this evaluates
the saved model again on the study's held-out episodes with Grad-CAM on the first and second
conv layers (each after its ReLU; ``camal-rl evaluate --layer``) into ``RUN/metrics_layer_<conv>.json``
(kept and reused), checks the episodes are the same ones, and prints per agent variant EPG and
IoU at each layer with p-values against the baseline and CAMAL against energy.

Run: ``python experiments/camal_study/layer_alignment.py [--merge] CELL [CELL ...]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from camal_rl.statistics import load_results

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from experiments.camal_study.gradient_saliency import evaluate_again, run_cells, saliency_table, with_saliency

LAYERS = {"conv1": "to_attention.1", "conv2": "to_attention.3"}
"""Short name -> the MiniGridCNN layer (its first and second conv, after the ReLU); conv3, the
attention layer the losses train, is ``gradcam`` in ``metrics.json``."""
METRICS = tuple(
    f"{method}/{name}" for name in ("epg", "iou") for method in ("gradcam_conv1", "gradcam_conv2", "gradcam")
)


def layer_table(paths: Sequence[Path], device: str = "cpu") -> str:
    """The markdown tables of the runs under ``paths`` (evaluating those not done yet)."""
    results = [r for r in load_results(paths) if r.metrics is not None]
    if not results:
        return "no evaluated run\n"
    merged = []
    for result in results:
        for short, layer in LAYERS.items():
            report = evaluate_again(
                result, f"metrics_layer_{short}.json", ("gradcam",), layer=layer, device=device
            )
            result = with_saliency(result, report, {"gradcam": f"gradcam_{short}"})
        merged.append(result)
    return saliency_table(merged, METRICS)


def main(argv: Sequence[str]) -> None:
    run_cells(argv, __doc__.splitlines()[0], layer_table)


if __name__ == "__main__":
    main(sys.argv[1:])
