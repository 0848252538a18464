"""Endpoint G1 of the pre-registration: held-out returns on layouts never trained on.

For every ``none`` and ``camal`` run of the given sweep folders (``--methods`` adds others),
``camal-rl evaluate`` on each unseen variant of its training env, written beside the run as
``metrics_generalisation_<variant>.json``:

- DoorKey-5x5 agents: DoorKey-6x6 and DoorKey-8x8 (the 7x7 agent view gives the same 56x56 frames
  at any grid size), DoorKey-5x5 with 1 distractor object and DoorKey-6x6 with 3 (3 do not fit in
  the 5x5 grid without blocking the way);
- LavaCrossingS9N1 agents: LavaCrossingS9N2 and S9N3, and S9N1 with 1 and 3 distractors.

Returns only (no saliency scored), 20 episodes from the held-out seed, greedy actions. A variant
already evaluated is skipped, so the command resumes. Then prints one table: mean return per
variant of agent and unseen env, over seeds.

    python experiments/camal_loss/generalisation.py experiments/camal_loss/runs/doorkey-ppo
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from camal_rl.evaluation import EvaluateConfig, evaluate
from camal_rl.settings import AgentSettings, EvaluationSettings
from camal_rl.statistics import load_results, variant_order
from camal_rl.tables import markdown_table

UNSEEN: dict[str, tuple[tuple[str, str, int], ...]] = {
    "MiniGrid-DoorKey-5x5-v0": (
        ("doorkey-6x6", "MiniGrid-DoorKey-6x6-v0", 0),
        ("doorkey-8x8", "MiniGrid-DoorKey-8x8-v0", 0),
        ("distractors-1", "MiniGrid-DoorKey-5x5-v0", 1),
        ("6x6-distractors-3", "MiniGrid-DoorKey-6x6-v0", 3),
    ),
    "MiniGrid-LavaCrossingS9N1-v0": (
        ("lava-s9n2", "MiniGrid-LavaCrossingS9N2-v0", 0),
        ("lava-s9n3", "MiniGrid-LavaCrossingS9N3-v0", 0),
        ("distractors-1", "MiniGrid-LavaCrossingS9N1-v0", 1),
        ("distractors-3", "MiniGrid-LavaCrossingS9N1-v0", 3),
    ),
}
"""Training env -> (name, env id, distractors) of each unseen variant."""
EPISODES = 20
G1_METHODS = ("none", "camal")
"""The methods endpoint G1 compares (PREREGISTRATION.md); ``--methods`` adds others."""


def output(run: Path, name: str) -> Path:
    return run / f"metrics_generalisation_{name}.json"


def evaluate_unseen(run: Path, env: str, episodes: int) -> None:
    """Evaluate one run on each unseen variant of ``env`` not yet evaluated."""
    for name, env_id, distractors in UNSEEN.get(env, ()):
        out = output(run, name)
        if out.exists():
            continue
        evaluate(
            EvaluateConfig(
                run=run,
                agent=AgentSettings(env=env_id, device="cpu"),
                evaluation=EvaluationSettings(
                    episodes=episodes, distractors=distractors, saliency=(), faithfulness=False
                ),
                out=out,
            )
        )


def unseen_return(run: Path, name: str, distractors: int) -> float:
    """The mean return on an unseen variant (the distractor variant's for ``distractors`` > 0)."""
    path = output(run, name)
    if not path.exists():
        return math.nan
    variants = json.loads(path.read_text()).get("variants", {})
    variant = variants.get("distractors" if distractors else "train", {})
    value = variant.get("return", {})
    return float(value.get("mean", math.nan)) if isinstance(value, dict) else float(value)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders or run directories")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes per variant (20)")
    parser.add_argument("--table-only", action="store_true", help="print the table, evaluate nothing")
    parser.add_argument(
        "--methods", nargs="+", default=list(G1_METHODS), help="methods to evaluate (G1: none, camal)"
    )
    args = parser.parse_args(argv)
    results = sorted(
        (r for r in load_results(args.sweeps, complete_only=True) if r.method in args.methods),
        key=lambda r: (variant_order(r), r.seed),
    )
    if not args.table_only:
        for result in results:
            evaluate_unseen(result.path, result.env, args.episodes)
    envs = sorted({r.env for r in results if r.env in UNSEEN})
    for env in envs:
        names = UNSEEN[env]
        rows = []
        for label in dict.fromkeys(r.label for r in results if r.env == env):
            runs = [r for r in results if r.env == env and r.label == label]
            cells = []
            for name, _, distractors in names:
                values = np.array([unseen_return(r.path, name, distractors) for r in runs])
                done = values[~np.isnan(values)]
                cells.append(f"{done.mean():.3f} ({len(done)})" if len(done) else "-")
            rows.append([label, *cells])
        print(f"\n{env}: mean held-out return (seeds evaluated)\n")
        print("\n".join(markdown_table(["agent", *(n for n, _, _ in names)], rows)))


if __name__ == "__main__":
    main()
