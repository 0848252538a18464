"""How many of each agent's saliency maps are flat (post hoc, added after the protocol).

A flat map (constant over the frame: a Grad-CAM whose ReLU zeroed it everywhere, a perturbation
map of a policy no occlusion moves) has nothing to show; the alignment metrics score it at chance
and the faithfulness curves remove its pixels in raster order. So an agent whose EPG sits at
chance may look everywhere alike or have no map at all: ``METHOD/flat_share`` (in every
``metrics.json`` written since it was added) tells which. For every evaluated run of the cells
given whose ``metrics.json`` predates it, this evaluates the saved model again on the study's
held-out episodes (alignment only, the saliency methods of its ``metrics.json``) into
``RUN/metrics_flat.json`` (kept and reused), checks the episodes are the same ones, and prints
per agent variant the flat share, EPG and IoU of each method with p-values against the baseline
and CAMAL against energy. Runs whose ``metrics.json`` has no flat share and whose model is gone
are left out, and named.

Training logs the same for Grad-CAM on its minibatches (``camal/dead_cam_share``, every agent,
the baseline included): ``--training`` prints, per cell and agent variant, that share at the end
of training, from the logs alone (the models of most cells are gone).

Run: ``python experiments/camal_study/flat_maps.py [--merge] CELL [CELL ...]``, or
``python experiments/camal_study/flat_maps.py --training CELL [CELL ...]``.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from camal_rl.rundir import RunDir
from camal_rl.statistics import RunResult, load_results

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from experiments.camal_study.gradient_saliency import evaluate_again, run_cells, saliency_table, with_saliency

FILE = "metrics_flat.json"
NAMES = ("flat_share", "epg", "iou")
LAST_LOGS = 10
"""Logged values of ``camal/dead_cam_share`` at the end of training that ``--training`` averages."""


def with_flat_share(result: RunResult, device: str = "cpu") -> RunResult | None:
    """``result`` whose every saliency method has ``flat_share``: its own ``metrics.json``'s, or
    one evaluated again into ``RUN/metrics_flat.json`` where that has none; None where it has
    neither and its model is gone."""
    assert result.metrics is not None
    methods = list(result.metrics["variants"]["train"]["saliency"])
    if all("flat_share" in result.metrics["variants"]["train"]["saliency"][m] for m in methods):
        return result
    if not (result.path / FILE).exists() and not RunDir(result.path).saved_models():
        return None
    return with_saliency(result, evaluate_again(result, FILE, methods, device=device))


def flat_table(paths: Sequence[Path], device: str = "cpu") -> str:
    """The markdown tables of the runs under ``paths`` (evaluating those not done yet), and the
    runs left out because their model is gone."""
    evaluated = [r for r in load_results(paths) if r.metrics is not None]
    scored = {r.path: with_flat_share(r, device) for r in evaluated}
    results = [r for r in scored.values() if r is not None]
    gone = [str(path) for path, r in scored.items() if r is None]
    note = f"\nLeft out, no flat share and no saved model: {', '.join(gone)}\n" if gone else ""
    if not results:
        return "no evaluated run with a flat share or a saved model\n" + note
    methods = list(results[0].metrics["variants"]["train"]["saliency"])  # type: ignore[index]
    return saliency_table(results, tuple(f"{method}/{name}" for method in methods for name in NAMES)) + note


def training_table(paths: Sequence[Path], last: int = LAST_LOGS) -> str:
    """Per cell and agent variant, the share of dead Grad-CAMs in the training minibatches
    (``camal/dead_cam_share``, the mean of each finished run's ``last`` logged values): mean over
    the runs [min, max] (markdown). Reads the logs only: no model needed."""
    lines = ["| cell | agent | runs | dead Grad-CAM share, end of training [min, max] |", "|:--|:--|--:|--:|"]
    for path in paths:
        by_label: dict[str, list[float]] = {}
        for result in load_results([path], complete_only=True):
            logged = RunDir(result.path).logged_values("camal/dead_cam_share")[-last:]
            if logged:
                by_label.setdefault(result.label, []).append(statistics.fmean(v for _, v in logged))
        for label, shares in by_label.items():
            lines.append(
                f"| {path.name} | {label} | {len(shares)} | "
                f"{statistics.fmean(shares):.3f} [{min(shares):.3f}, {max(shares):.3f}] |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> None:
    if argv[:1] == ["--training"]:
        print(training_table([Path(cell) for cell in argv[1:]]))
        return
    run_cells(argv, __doc__.splitlines()[0], flat_table)


if __name__ == "__main__":
    main(sys.argv[1:])
