"""Overhead of differentiable Grad-CAM + the CAMAL loss on one training minibatch.

One PPO-style minibatch of 256 MiniGrid frames (3 x 56 x 56: a 7 x 7 view at 8 px per tile)
through :class:`~camal_rl.agents.common.extractors.MiniGridCNN` (channels 32, 64, 64, 128
features) with SB3's ``CnnPolicy`` heads on the shared features (a linear action head over
MiniGrid's 7 actions, a linear value head). Two variants are timed, forward + loss + backward
into the parameters (no optimizer step):

- ``baseline``: the clipped PPO surrogate, value MSE and entropy bonus;
- ``camal``: the same plus ``0.1 * attention_loss(grad_cam(maps, logit of the taken action),
  mask)`` with ``create_graph=True``, as :mod:`camal_rl.agents` trains.

The variants run side by side in one process, interleaved (their order alternating each
repetition) after a warm-up, with a fixed thread count; the figure is the ratio of the median
times (target <= 1.3x), with the median of the per-repetition ratios beside it, and on CPU the
ratio of median process CPU times (steadier than wall clock when other jobs share the cores).

Run: ``python experiments/bench_saliency.py [--batch 256] [--repeats 30] [--threads 1] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from camal_rl.agents.common.extractors import MiniGridCNN
from camal_rl.losses import attention_loss
from camal_rl.saliency import grad_cam

FRAME = (3, 56, 56)
TILE = 8
N_ACTIONS = 7
CAMAL_COEF = 0.1
TARGET_RATIO = 1.3


class ActorCritic(nn.Module):
    """MiniGridCNN with SB3 ``CnnPolicy``'s heads: ``images in [0, 1] -> (logits, values, maps)``."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = MiniGridCNN(spaces.Box(0, 255, FRAME, np.uint8), tile_size=TILE)
        self.action_net = nn.Linear(self.cnn.features_dim, N_ACTIONS)
        self.value_net = nn.Linear(self.cnn.features_dim, 1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        features, maps = self.cnn.forward_with_maps(images)
        return self.action_net(features), self.value_net(features).squeeze(1), maps


def make_minibatch(batch: int, device: torch.device, seed: int) -> dict[str, Tensor]:
    """Random uint8 frames, masks of 1-3 random tiles (one frame in four empty), actions,
    old log-probabilities, advantages and returns."""
    generator = torch.Generator().manual_seed(seed)
    cells = FRAME[1] // TILE
    masks = torch.zeros(batch, FRAME[1], FRAME[2], dtype=torch.uint8)
    for b in range(batch):
        if b % 4 == 3:
            continue
        n_objects = int(torch.randint(1, 4, (), generator=generator))
        for cell in torch.randperm(cells * cells, generator=generator)[:n_objects].tolist():
            i, j = divmod(cell, cells)
            masks[b, i * TILE : (i + 1) * TILE, j * TILE : (j + 1) * TILE] = 1
    data = {
        "images": torch.randint(0, 256, (batch, *FRAME), generator=generator, dtype=torch.uint8),
        "masks": masks,
        "actions": torch.randint(0, N_ACTIONS, (batch,), generator=generator),
        "old_log_prob": torch.log(torch.full((batch,), 1.0 / N_ACTIONS)),
        "advantages": torch.randn(batch, generator=generator),
        "returns": torch.randn(batch, generator=generator),
    }
    return {key: value.to(device) for key, value in data.items()}


def training_step(model: ActorCritic, data: dict[str, Tensor], camal: bool) -> Tensor:
    """Forward, PPO loss (plus the CAMAL term when ``camal``) and backward; returns the loss."""
    logits, values, maps = model(data["images"].float() / 255.0)
    log_probs = F.log_softmax(logits, dim=1)
    log_prob = log_probs.gather(1, data["actions"][:, None]).squeeze(1)
    ratio = torch.exp(log_prob - data["old_log_prob"])
    advantages = data["advantages"]
    policy_loss = -torch.min(advantages * ratio, advantages * ratio.clamp(0.8, 1.2)).mean()
    value_loss = F.mse_loss(values, data["returns"])
    entropy = -(log_probs.exp() * log_probs).sum(dim=1).mean()
    loss = policy_loss + 0.5 * value_loss - 0.01 * entropy
    if camal:
        target = logits.gather(1, data["actions"][:, None]).squeeze(1)
        loss = loss + CAMAL_COEF * attention_loss(grad_cam(maps, target), data["masks"], "camal")
    loss.backward()
    return loss.detach()


def _timed(step: Callable[[], Tensor], device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_grad_cam_overhead(
    batch: int = 256,
    repeats: int = 30,
    warmup: int = 3,
    threads: int = 1,
    device: str = "cpu",
    seed: int = 0,
) -> dict:
    """Time a training step with and without the Grad-CAM + CAMAL term, interleaved.

    :param batch: minibatch size.
    :param repeats: timed repetitions of each variant.
    :param warmup: untimed repetitions of each variant first.
    :param threads: ``torch.set_num_threads`` for the run (restored afterwards).
    :param device: torch device.
    :param seed: seed of the model and the minibatch.
    :return: the settings, median wall-clock milliseconds per step of each variant and their
        ratio, and the same in process CPU time (on a shared CPU machine the CPU-time ratio is
        the steadier figure; on a GPU only the wall-clock one means anything).
    """
    torch_device = torch.device(device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        model = ActorCritic().to(torch_device)
        data = make_minibatch(batch, torch_device, seed)

        def step(camal: bool) -> Tensor:
            model.zero_grad(set_to_none=True)
            return training_step(model, data, camal)

        times: dict[bool, list[float]] = {False: [], True: []}
        cpu_times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(warmup + repeats):
            order = (False, True) if rep % 2 == 0 else (True, False)
            for camal in order:
                wall, cpu = _timed(functools.partial(step, camal), torch_device)
                if rep >= warmup:
                    times[camal].append(wall)
                    cpu_times[camal].append(cpu)
    finally:
        torch.set_num_threads(previous_threads)
    baseline = statistics.median(times[False])
    camal_time = statistics.median(times[True])
    pair_ratios = [c / b for b, c in zip(times[False], times[True], strict=True)]
    cpu_baseline = statistics.median(cpu_times[False])
    cpu_camal = statistics.median(cpu_times[True])
    return {
        "batch": batch,
        "frame": "x".join(map(str, FRAME)),
        "repeats": repeats,
        "threads": threads,
        "device": str(torch_device),
        "torch": torch.__version__,
        "baseline_ms": 1000 * baseline,
        "camal_ms": 1000 * camal_time,
        "ratio": camal_time / baseline,
        "ratio_pairs_median": statistics.median(pair_ratios),
        "cpu_baseline_ms": 1000 * cpu_baseline,
        "cpu_camal_ms": 1000 * cpu_camal,
        "cpu_ratio": cpu_camal / cpu_baseline,
        "target_ratio": TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> None:
    """Print the Grad-CAM overhead figure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="minibatch size")
    parser.add_argument("--repeats", type=int, default=30, help="timed repetitions per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    args = parser.parse_args(argv)
    result = bench_grad_cam_overhead(
        batch=args.batch, repeats=args.repeats, threads=args.threads, device=args.device
    )
    print(
        f"Grad-CAM + CAMAL loss overhead, minibatch {result['batch']} x {result['frame']}, "
        f"MiniGridCNN, {result['device']}, {result['threads']} thread(s), torch {result['torch']}"
    )
    print(f"  baseline (PPO loss)      {result['baseline_ms']:8.2f} ms / step")
    print(f"  + grad_cam + camal loss  {result['camal_ms']:8.2f} ms / step")
    verdict = "meets" if result["ratio"] <= TARGET_RATIO else "misses"
    print(
        f"  ratio {result['ratio']:.3f}x (median of per-repetition ratios "
        f"{result['ratio_pairs_median']:.3f}x); {verdict} the {TARGET_RATIO}x target"
    )
    if result["device"] == "cpu":
        print(
            f"  process CPU time: {result['cpu_baseline_ms']:.2f} vs {result['cpu_camal_ms']:.2f} ms / step, "
            f"ratio {result['cpu_ratio']:.3f}x"
        )


if __name__ == "__main__":
    main()
