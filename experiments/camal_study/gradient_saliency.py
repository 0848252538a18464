"""Alignment under two gradient saliency methods that no agent trains on.

Grad-CAM is what CAMAL and energy train; perturbation saliency (in every ``metrics.json``) is one
method they do not. This adds two more, both from the input gradient rather than the CAM:
integrated gradients (Sundararajan et al. 2017) and input x gradient. For every evaluated run of
the cells given, it evaluates the saved model again on the study's held-out episodes (the
seeds, episode count and scored steps of its ``metrics.json``; alignment only) into
``RUN/metrics_gradients.json`` (kept and reused when present), checks that the episodes are the
same ones (equal returns and scored steps), and prints per agent variant EPG, IoU and the
pointing game of each method beside Grad-CAM's, with p-values against the baseline and CAMAL
against energy.

Run: ``python experiments/camal_study/gradient_saliency.py [--merge] CELL [CELL ...]`` (``--merge``
reports the folders given as one cell, e.g. a cell with a post-hoc sweep beside it).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from camal_rl.evaluation import EvaluateConfig, evaluate
from camal_rl.settings import AgentSettings, EvaluationSettings
from camal_rl.statistics import RunResult, comparison_table, load_results, metric_value

if not __package__:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from experiments.camal_study.report import cell, p_value_table

METHODS = ("integrated_gradients", "input_x_gradient")
FILE = "metrics_gradients.json"
METRICS = tuple(
    f"{method}/{name}" for method in ("gradcam", *METHODS) for name in ("epg", "iou", "pointing_game")
)
MAX_STEPS_SCORED = 32
"""The study's ``compare --max-steps-scored`` (the default), for a ``metrics.json`` that does not
record its settings."""


def evaluate_again(
    result: RunResult, file: str, methods: Sequence[str], *, layer: str | None = None, device: str = "cpu"
) -> dict:
    """``RUN/<file>`` of one run: read if present, else the saved model evaluated again (alignment
    only, ``methods``, Grad-CAM on ``layer``) on the episodes of its ``metrics.json`` and written.

    :raises RuntimeError: the episodes differ from ``metrics.json``'s (return or scored steps).
    """
    assert result.metrics is not None
    out = result.path / file
    if out.exists():
        report = json.loads(out.read_text())
    else:
        train = result.metrics["variants"]["train"]
        cfg = EvaluateConfig(
            run=result.path,
            agent=AgentSettings(seed=int(train["seed"]), device=device),
            evaluation=EvaluationSettings(
                episodes=int(train["episodes"]),
                saliency=tuple(methods),
                layer=layer,
                faithfulness=False,
                max_steps_scored=int(
                    result.metrics.get("settings", {}).get("max_steps_scored", MAX_STEPS_SCORED)
                ),
            ),
            out=out,
        )
        report = evaluate(cfg)
    for key in ("return", "steps_scored"):
        ours, theirs = metric_value(report, key), metric_value(result.metrics, key)
        if not math.isclose(ours, theirs, abs_tol=1e-9):
            raise RuntimeError(
                f"{result.path}: {key} {ours} here against {theirs} in metrics.json: not the same "
                f"episodes (delete {file} and evaluate with the settings metrics.json was made with)"
            )
    return report


def with_saliency(result: RunResult, report: dict, names: Mapping[str, str] | None = None) -> RunResult:
    """``result`` whose metrics also hold ``report``'s train-variant saliency, each method under
    ``names[method]`` (default: its own name)."""
    assert result.metrics is not None
    metrics = copy.deepcopy(result.metrics)
    added = report["variants"]["train"]["saliency"]
    metrics["variants"]["train"]["saliency"].update(
        {(names or {}).get(method, method): values for method, values in added.items()}
    )
    return dataclasses.replace(result, metrics=metrics)


def saliency_table(results: Sequence[RunResult], metrics: Sequence[str]) -> str:
    """Per agent variant the estimate and CI of each metric, then the p-values against the
    baseline and CAMAL against energy (markdown)."""
    rows = comparison_table(results, metrics, baseline="none", pairs=(("camal", "energy"),))
    summary = {(row["label"], row["metric"]): row for row in rows if not row["versus"]}
    versus = {(row["label"], row["versus"], row["metric"]): row for row in rows if row["versus"]}
    labels = list(dict.fromkeys(row["label"] for row in rows))
    lines = ["| agent | seeds | " + " | ".join(metrics) + " |", "|:--|--:|" + "--:|" * len(metrics)]
    for label in labels:
        n = summary[(label, metrics[0])]["n"]
        lines.append(f"| {label} | {n} | " + " | ".join(cell(summary[(label, m)]) for m in metrics) + " |")
    lines += ["", "p-values (Welch / Mann-Whitney U):", "", *p_value_table(versus, metrics)]
    return "\n".join(lines) + "\n"


def gradient_table(paths: Sequence[Path], device: str = "cpu") -> str:
    """The markdown tables of the runs under ``paths`` (evaluating those not done yet)."""
    results = [r for r in load_results(paths) if r.metrics is not None]
    if not results:
        return "no evaluated run\n"
    merged = [with_saliency(r, evaluate_again(r, FILE, METHODS, device=device)) for r in results]
    return saliency_table(merged, METRICS)


def run_cells(argv: Sequence[str], description: str, table: Callable[[Sequence[Path], str], str]) -> None:
    """The command line of these post-hoc scripts: ``[--merge] [--device D] [--threads N] CELL...``,
    printing ``table(paths, device)`` per cell (or once for the merged cells)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("cells", nargs="+", type=Path, help="sweep folders, each reported as a cell")
    parser.add_argument("--device", default="cpu", help="torch device of the evaluations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--merge", action="store_true", help="report the folders given as one cell")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for paths in [args.cells] if args.merge else [[path] for path in args.cells]:
        print("### " + " + ".join(path.name for path in paths) + "\n")
        print(table(paths, args.device))


def main(argv: Sequence[str]) -> None:
    run_cells(argv, __doc__.splitlines()[0], gradient_table)


if __name__ == "__main__":
    main(sys.argv[1:])
