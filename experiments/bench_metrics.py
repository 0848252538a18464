"""Per-observation cost of the full attention-metric suite on a MiniGrid-sized model.

The model is :class:`~camal_rl.agents.common.extractors.MiniGridCNN` on 3 x 56 x 56 frames (a 7 x 7
MiniGrid view at 8 px per tile) with a linear head over MiniGrid's 7 actions, seen through
:class:`~camal_rl.adapters.ModuleScorer`. One Grad-CAM map per observation (computed once,
outside the timing) is scored by every alignment and faithfulness metric with its default
settings (deletion / insertion: 64-px steps, 50 points; comprehensiveness / sufficiency: 4
fractions; occlusion KL ratio and behaviour KL: 8 random regions). Frames are random, masks are
1-3 random tiles with one frame in four empty (empty frames are skipped by the mask-based
faithfulness metrics, as in evaluation). Each metric is timed ``repeats`` times on the same batch;
the table reports the median, as milliseconds per observation and observations per second.

Run: ``python experiments/bench_metrics.py [--batch 64] [--repeats 3] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from camal_rl.adapters import ModuleScorer
from camal_rl.agents.common.extractors import MiniGridCNN
from camal_rl.metrics import (
    behaviour_kl,
    comprehensiveness,
    deletion_auc,
    energy_pointing_game,
    insertion_auc,
    iou_top_k,
    occlusion_kl_ratio,
    pointing_game,
    roc_auc,
    sufficiency,
)
from camal_rl.saliency import grad_cam

FRAME = (3, 56, 56)
TILE = 8
N_ACTIONS = 7


class PolicyNet(nn.Module):
    """MiniGridCNN + a linear head: ``images in [0, 1] -> (logits, attention maps)``."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = MiniGridCNN(spaces.Box(0, 255, FRAME, np.uint8), tile_size=TILE)
        self.head = nn.Linear(self.cnn.features_dim, N_ACTIONS)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features, maps = self.cnn.forward_with_maps(images)
        return self.head(features), maps


def make_batch(batch: int, device: torch.device, seed: int) -> tuple[Tensor, np.ndarray]:
    """Random frames (B, 3, 56, 56) in [0, 255] and masks (B, 56, 56) of 1-3 random tiles, one
    frame in four with an empty mask."""
    rng = np.random.default_rng(seed)
    images = torch.as_tensor(rng.integers(0, 256, size=(batch, *FRAME)), dtype=torch.float32, device=device)
    cells = FRAME[1] // TILE
    masks = np.zeros((batch, FRAME[1], FRAME[2]), dtype=np.uint8)
    for b in range(batch):
        if b % 4 == 3:
            continue
        for cell in rng.choice(cells * cells, size=rng.integers(1, 4), replace=False):
            i, j = divmod(int(cell), cells)
            masks[b, i * TILE : (i + 1) * TILE, j * TILE : (j + 1) * TILE] = 1
    return images, masks


def bench_metric_suite(batch: int = 64, repeats: int = 3, device: str = "cpu", seed: int = 0) -> dict:
    """Time every metric of the suite on one batch.

    :param batch: observations per batch.
    :param repeats: timings per metric (the median is reported).
    :param device: torch device of the model and frames.
    :param seed: seed of the model, the frames and the random regions.
    :return: ``{"batch", "device", "threads", "per_metric": {name: {"ms_per_obs", "obs_per_s"}},
        "suite_ms_per_obs", "suite_obs_per_s"}``.
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    net = PolicyNet().to(dev).eval()
    scorer = ModuleScorer(net)
    images, masks = make_batch(batch, dev, seed)
    scores, maps = scorer.scores_and_maps(images)
    cam = grad_cam(maps, scores.gather(1, scores.argmax(1, keepdim=True))[:, 0], create_graph=False)
    saliency = cam.detach()

    suite: dict[str, Callable[[], object]] = {
        "energy_pointing_game": lambda: energy_pointing_game(saliency, masks),
        "iou_top_k": lambda: iou_top_k(saliency, masks),
        "pointing_game": lambda: pointing_game(saliency, masks),
        "roc_auc": lambda: roc_auc(saliency, masks),
        "deletion_auc": lambda: deletion_auc(scorer, images, saliency),
        "insertion_auc": lambda: insertion_auc(scorer, images, saliency),
        "comprehensiveness": lambda: comprehensiveness(scorer, images, saliency),
        "sufficiency": lambda: sufficiency(scorer, images, saliency),
        "occlusion_kl_ratio": lambda: occlusion_kl_ratio(scorer, images, saliency, masks, rng=seed),
        "behaviour_kl": lambda: behaviour_kl(scorer, images, masks, rng=seed),
    }
    per_metric = {}
    for name, run in suite.items():
        run()  # warm-up
        times = []
        for _ in range(repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            run()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - start)
        seconds_per_obs = statistics.median(times) / batch
        per_metric[name] = {"ms_per_obs": 1e3 * seconds_per_obs, "obs_per_s": 1.0 / seconds_per_obs}
    suite_s = sum(row["ms_per_obs"] for row in per_metric.values()) / 1e3
    return {
        "batch": batch,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "per_metric": per_metric,
        "suite_ms_per_obs": 1e3 * suite_s,
        "suite_obs_per_s": 1.0 / suite_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="observations per batch")
    parser.add_argument("--repeats", type=int, default=3, help="timings per metric (median reported)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="seed of model, frames and regions")
    args = parser.parse_args()
    result = bench_metric_suite(batch=args.batch, repeats=args.repeats, device=args.device, seed=args.seed)
    print(
        f"metric suite on MiniGridCNN 3x56x56, batch {result['batch']}, {result['device']}, "
        f"{result['threads']} torch threads"
    )
    print(f"{'metric':<22} {'ms/obs':>9} {'obs/s':>10}")
    for name, row in result["per_metric"].items():
        print(f"{name:<22} {row['ms_per_obs']:>9.3f} {row['obs_per_s']:>10.1f}")
    print(f"{'full suite':<22} {result['suite_ms_per_obs']:>9.3f} {result['suite_obs_per_s']:>10.1f}")


if __name__ == "__main__":
    main()
