"""Extractors, the packed replay buffer, the CAMAL settings checks and the policy scorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer

from camal_rl.agents import MaskPackedDictReplayBuffer, MiniGridCNN, NatureCamCNN
from camal_rl.agents.common.attention import (
    AttentionLog,
    AttentionTerm,
    Objective,
    as_image_observation,
    coef_at,
    decision_scores,
    validate_camal_settings,
)
from camal_rl.envs.base import check_masked_observation_space
from camal_rl.errors import InputError
from camal_rl.saliency import grad_cam
from tests.conftest import DEVICE


def dict_space(c: int = 3, h: int = 56, w: int = 56, mask_hw: tuple[int, int] | None = None) -> spaces.Dict:
    return spaces.Dict(
        {
            "image": spaces.Box(0, 255, (c, h, w), np.uint8),
            "mask": spaces.Box(0, 3, mask_hw or (h, w), np.uint8),
        }
    )


class TestExtractors:
    def test_minigrid_cnn_has_one_map_position_per_cell(self) -> None:
        extractor = MiniGridCNN(dict_space(), tile_size=8, channels=(16, 32), features_dim=64)
        features, maps = extractor.forward_with_maps({"image": torch.rand(2, 3, 56, 56)})
        assert features.shape == (2, 64)
        assert maps.shape == (2, 32, 7, 7)
        assert (maps >= 0).all()  # post-ReLU activations

    def test_attention_layer_selects_the_layer(self) -> None:
        extractor = MiniGridCNN(dict_space(), tile_size=8, channels=(16, 32), attention_layer=0)
        _, maps = extractor.forward_with_maps({"image": torch.rand(1, 3, 56, 56)})
        assert maps.shape == (1, 16, 7, 7)

    def test_forward_equals_forward_with_maps_and_ignores_the_mask(self) -> None:
        torch.manual_seed(0)
        extractor = MiniGridCNN(dict_space())
        image = torch.rand(2, 3, 56, 56)
        a = extractor({"image": image, "mask": torch.zeros(2, 56, 56)})
        b = extractor({"image": image, "mask": torch.ones(2, 56, 56)})
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, extractor.forward_with_maps({"image": image})[0], rtol=0, atol=0)

    def test_nature_cnn_maps(self) -> None:
        extractor = NatureCamCNN(dict_space(3, 120, 160))
        _, maps = extractor.forward_with_maps({"image": torch.rand(1, 3, 120, 160)})
        # (120 - 8) / 4 + 1 = 29 -> (29 - 4) / 2 + 1 = 13 -> 13 - 2 = 11; (160 -> 39 -> 18 -> 16)
        assert maps.shape == (1, 64, 11, 16)

    def test_nature_cnn_reads_four_stacked_rgb_frames(self) -> None:
        """12 channels (4 RGB frames, oldest first) at 84x84: maps 84 -> (84 - 8) / 4 + 1 = 20 ->
        (20 - 4) / 2 + 1 = 9 -> 9 - 3 + 1 = 7. With the first conv's weights 1 on the newest frame's
        channels (9, 10, 11) and 0 elsewhere, no bias, a newest frame of 0.5 gives every output
        3 x 8 x 8 x 0.5 = 96, whatever the older frames hold."""
        extractor = NatureCamCNN(dict_space(12, 84, 84))
        first = extractor.to_attention[0]
        assert isinstance(first, torch.nn.Conv2d)
        assert first.weight.shape == (32, 12, 8, 8)
        with torch.no_grad():
            first.weight.zero_()
            first.weight[:, 9:] = 1.0
            first.bias.zero_()
        images = torch.zeros(2, 12, 84, 84)
        images[:, 9:] = 0.5
        images[1, :9] = 1.0  # other older frames
        first_maps = extractor.to_attention[:2](images)
        assert first_maps.shape == (2, 32, 20, 20)
        assert (first_maps == 96).all()
        features, maps = extractor.forward_with_maps({"image": images})
        assert features.shape == (2, 512)
        assert maps.shape == (2, 64, 7, 7)
        torch.testing.assert_close(features[0], features[1], rtol=0, atol=0)
        images.requires_grad_(True)
        _, maps = extractor.forward_with_maps({"image": images})
        cam = grad_cam(maps, maps.sum(dim=(1, 2, 3)))
        assert cam.shape == (2, 7, 7)  # one map per sample, not one per frame

    def test_a_channel_last_stack_is_refused(self) -> None:
        space = spaces.Dict({"image": spaces.Box(0, 255, (84, 84, 12), np.uint8)})
        with pytest.raises(InputError, match="not a channel-first uint8 image; let SB3's VecTransposeImage"):
            NatureCamCNN(space)

    def test_sb3_scales_and_transposes_a_stacked_image(self) -> None:
        """SB3 takes 12 channels for an image (``is_image_space`` checks no channel count unless
        asked): ``VecTransposeImage`` makes it (12, 56, 56) and the policy scales it to [0, 1]."""
        from stable_baselines3.common.preprocessing import preprocess_obs
        from stable_baselines3.common.vec_env import VecTransposeImage

        from camal_rl.agents import CamalPPO
        from camal_rl.envs import StackedImages, make_masked_env

        env = StackedImages(make_masked_env("MiniGrid-DoorKey-5x5-v0"), 4)
        model = CamalPPO(
            "MultiInputPolicy",
            env,
            n_steps=16,
            batch_size=16,
            policy_kwargs={"features_extractor_class": NatureCamCNN},
            device=DEVICE,
        )
        assert isinstance(model.get_env(), VecTransposeImage)
        assert model.observation_space["image"].shape == (12, 56, 56)  # type: ignore[index]
        obs = {"image": torch.full((1, 12, 56, 56), 255, dtype=torch.uint8), "mask": torch.zeros(1, 56, 56)}
        image = preprocess_obs(obs, model.observation_space)["image"]  # type: ignore[index]
        assert image.max().item() == 1.0
        assert model.policy.features_extractor.to_attention[0].in_channels == 12  # type: ignore[index]

    @pytest.mark.parametrize("tile_size", [0, 5, -8])
    def test_bad_tile_size(self, tile_size: int) -> None:
        with pytest.raises(InputError, match="tile_size"):
            MiniGridCNN(dict_space(), tile_size=tile_size)

    def test_bad_attention_layer(self) -> None:
        with pytest.raises(InputError, match="attention_layer=3 is out of range for 3 conv layers"):
            MiniGridCNN(dict_space(), attention_layer=3)

    def test_small_frames_refused_by_nature_cnn(self) -> None:
        """43 px: (43 - 8) // 4 + 1 = 9 -> (9 - 4) // 2 + 1 = 3 -> 1, a uniform Grad-CAM; 44 px:
        10 -> 4 -> 2."""
        for side in (24, 43):
            with pytest.raises(InputError, match=f"at least 44x44 pixels, got {side}x{side}: .*MiniGridCNN"):
                NatureCamCNN(dict_space(3, side, side))
        _, maps = NatureCamCNN(dict_space(3, 44, 44)).forward_with_maps({"image": torch.rand(1, 3, 44, 44)})
        assert maps.shape == (1, 64, 2, 2)

    def test_non_image_space_refused(self) -> None:
        with pytest.raises(InputError, match="make_masked_env"):
            MiniGridCNN(spaces.Dict({"vector": spaces.Box(0, 1, (4,))}))


class TestPackedReplayBuffer:
    @staticmethod
    def space() -> spaces.Dict:
        return spaces.Dict(
            {"image": spaces.Box(0, 255, (3, 4, 6), np.uint8), "mask": spaces.Box(0, 3, (4, 6), np.uint8)}
        )

    def make(self, cls: type[DictReplayBuffer], n_envs: int = 2) -> DictReplayBuffer:
        return cls(10, self.space(), spaces.Discrete(3), device=DEVICE, n_envs=n_envs)

    def test_mask_bits_round_trip_and_sampling_matches_the_parent(self) -> None:
        packed, plain = self.make(MaskPackedDictReplayBuffer), self.make(DictReplayBuffer)
        rng = np.random.default_rng(0)
        for _ in range(6):
            obs = {
                "image": rng.integers(0, 256, (2, 3, 4, 6), dtype=np.uint8),
                "mask": rng.integers(0, 4, (2, 4, 6), dtype=np.uint8),
            }
            nxt = {k: v.copy() for k, v in obs.items()}
            args = (np.array([1, 2]), np.array([0.5, 1.0]), np.array([False, True]), [{}, {}])
            packed.add(obs, nxt, *args)
            plain.add({k: v.copy() for k, v in obs.items()}, {k: v.copy() for k, v in nxt.items()}, *args)
        np.random.seed(3)  # noqa: NPY002 - SB3's buffers sample from the legacy global generator
        a = packed.sample(5)
        np.random.seed(3)  # noqa: NPY002
        b = plain.sample(5)
        torch.testing.assert_close(a.observations["image"], b.observations["image"], rtol=0, atol=0)
        torch.testing.assert_close(a.actions, b.actions, rtol=0, atol=0)
        expected = (b.observations["mask"] > 0).to(torch.uint8)
        torch.testing.assert_close(a.observations["mask"], expected, rtol=0, atol=0)
        torch.testing.assert_close(
            a.next_observations["mask"], (b.next_observations["mask"] > 0).to(torch.uint8)
        )

    def test_n_step_returns_by_hand(self) -> None:
        buffer = MaskPackedDictReplayBuffer(
            10, self.space(), spaces.Discrete(3), device=DEVICE, n_envs=1, n_steps=3, gamma=0.5
        )
        # rewards 1, 2, 3, 4, 5; the episode terminates at index 2, then index 4 is a time-out
        for i, (done, truncated) in enumerate([(0, 0), (0, 0), (1, 0), (0, 0), (1, 1)]):
            obs = {"image": np.full((1, 3, 4, 6), i, np.uint8), "mask": np.zeros((1, 4, 6), np.uint8)}
            nxt = {"image": np.full((1, 3, 4, 6), 10 + i, np.uint8), "mask": np.ones((1, 4, 6), np.uint8)}
            info = [{"TimeLimit.truncated": bool(truncated)}]
            buffer.add(obs, nxt, np.array([i % 3]), np.array([i + 1.0]), np.array([done]), info)
        buffer.add(  # index 5: the newest, its successor unknown: a sum ends there
            {"image": np.full((1, 3, 4, 6), 5, np.uint8), "mask": np.zeros((1, 4, 6), np.uint8)},
            {"image": np.full((1, 3, 4, 6), 15, np.uint8), "mask": np.zeros((1, 4, 6), np.uint8)},
            np.array([2]), np.array([6.0]), np.array([0]), [{}],
        )  # fmt: skip
        s = buffer._get_samples(np.array([0, 1, 2, 3, 5]))
        # 0: 1 + 2/2 + 3/4 = 2.75, bootstrap 0.5**3 from index 2's successor (terminal)
        # 1: 2 + 3/2 = 3.5 (0.25); 2: 3 (0.5); 3: 4 + 5/2 = 6.5 (0.25), index 4 a time-out:
        # not terminal; 5: 6 (0.5), not terminal
        assert s.rewards.flatten().tolist() == [2.75, 3.5, 3.0, 6.5, 6.0]
        assert s.discounts is not None
        assert s.discounts.flatten().tolist() == [0.125, 0.25, 0.5, 0.25, 0.5]
        assert s.dones.flatten().tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
        assert s.next_observations["image"][:, 0, 0, 0].tolist() == [12, 12, 12, 14, 15]
        assert s.observations["image"][:, 0, 0, 0].tolist() == [0, 1, 2, 3, 5]
        assert s.next_observations["mask"][:, 0, 0].tolist() == [1, 1, 1, 1, 0]
        assert buffer.timeouts[5, 0] == 0.0  # the newest transition's flag is put back

    def test_n_step_samples_match_sb3_on_box_observations(self) -> None:
        from stable_baselines3.common.buffers import NStepReplayBuffer

        ours = MaskPackedDictReplayBuffer(
            8, self.space(), spaces.Discrete(3), device=DEVICE, n_envs=2, n_steps=4
        )
        sb3 = NStepReplayBuffer(
            8, spaces.Box(0, 255, (3, 4, 6), np.uint8), spaces.Discrete(3), device=DEVICE, n_envs=2, n_steps=4
        )
        rng = np.random.default_rng(1)
        for _ in range(11):  # wraps around the 4-slot (8 / 2 envs) buffer
            image, nxt = (rng.integers(0, 256, (2, 3, 4, 6), dtype=np.uint8) for _ in range(2))
            mask = np.zeros((2, 4, 6), np.uint8)
            done = rng.random(2) < 0.3
            info = [{"TimeLimit.truncated": bool(t)} for t in done & (rng.random(2) < 0.5)]
            args = (rng.integers(0, 3, 2), rng.random(2).astype(np.float32), done, info)
            ours.add({"image": image, "mask": mask}, {"image": nxt, "mask": mask}, *args)
            sb3.add(image, nxt, *args)
        np.random.seed(7)  # noqa: NPY002 - SB3's buffers sample from the legacy global generator
        a = ours.sample(16)
        np.random.seed(7)  # noqa: NPY002
        b = sb3.sample(16)
        for name in ("actions", "rewards", "dones", "discounts"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-7, msg=name)
        torch.testing.assert_close(a.observations["image"], b.observations, rtol=0, atol=0)
        torch.testing.assert_close(a.next_observations["image"], b.next_observations, rtol=0, atol=0)

    @pytest.mark.parametrize(("kwargs", "match"), [({"n_steps": 0}, "n_steps"), ({"gamma": 1.5}, "gamma")])
    def test_bad_n_step_settings(self, kwargs: dict[str, float], match: str) -> None:
        with pytest.raises(InputError, match=match):
            MaskPackedDictReplayBuffer(8, self.space(), spaces.Discrete(3), device=DEVICE, **kwargs)  # type: ignore[arg-type]

    def test_memory(self) -> None:
        packed, plain = self.make(MaskPackedDictReplayBuffer), self.make(DictReplayBuffer)
        # 24 mask pixels -> 3 bytes instead of 24; the image is 72 bytes.
        assert packed.observations["mask"].shape == (5, 2, 3)
        assert plain.observations["mask"].shape == (5, 2, 4, 6)
        assert packed.observations["image"].nbytes == plain.observations["image"].nbytes == 5 * 2 * 72


class TestSettings:
    @pytest.mark.parametrize(
        ("coef", "loss", "target", "match"),
        [
            (-0.1, "camal", "action", "camal_coef must be a finite number >= 0"),
            (float("nan"), "camal", "action", "camal_coef"),
            (True, "camal", "action", "camal_coef"),
            (
                1.0,
                "gradcam",
                "action",
                "unknown camal_loss 'gradcam'; choose one of camal, camal-v1, energy, rrr, none",
            ),
            (1.0, "camal", "argmax", "unknown camal_target 'argmax'"),
            (lambda p: p - 0.5, "camal", "action", "schedule must stay finite and >= 0"),
        ],
    )
    def test_refusals(self, coef: object, loss: str, target: str, match: str) -> None:
        with pytest.raises(InputError, match=match):
            validate_camal_settings(coef, loss, target, ("action", "greedy"))  # type: ignore[arg-type]

    def test_schedule(self) -> None:
        validate_camal_settings(lambda p: 2.0 * p, "energy", "greedy", ("action", "greedy"))
        assert coef_at(lambda p: 2.0 * p, 0.25) == 0.5
        assert coef_at(3, 0.25) == 3.0

    def test_observation_space_checks(self) -> None:
        check_masked_observation_space(dict_space())
        with pytest.raises(InputError, match="make_masked_env"):
            check_masked_observation_space(spaces.Box(0, 255, (3, 56, 56), np.uint8))
        with pytest.raises(InputError, match=r"mask \(28x28\) must be the size of the image \(56x56\)"):
            check_masked_observation_space(dict_space(mask_hw=(28, 28)))

    def test_image_only_observation(self) -> None:
        image = np.zeros((5, 5, 3), np.uint8)
        assert as_image_observation(image)["image"] is image
        assert set(as_image_observation({"image": image, "mask": image[..., 0]})) == {"image", "mask"}


def test_attention_log_means_over_the_minibatches_of_an_update() -> None:
    """By hand: minibatch 1 has loss 0.5, a mask in 1 of 2 samples and 1 all-zero CAM of 2;
    minibatch 2 has loss 0.25, masks in both, no zero CAM: means 0.375, 0.75 and 0.25. The values
    stay on the model's device until record() reads them."""
    from stable_baselines3.common.logger import Logger

    def term(value: float, cam: list[float]) -> AttentionTerm:
        cams = torch.tensor(cam, device=DEVICE)[:, None, None].expand(-1, 2, 2)
        return AttentionTerm(None, torch.tensor(value, device=DEVICE), cams)

    masks = torch.zeros(2, 2, 4, 4, dtype=torch.uint8, device=DEVICE)  # (minibatch, sample, H, W)
    masks[0, 0, 1, 1] = 1
    masks[1, :, 2, 2] = 1
    log = AttentionLog()
    log.add(term(0.5, [0.0, 1.0]), masks[0], alignment=False)
    log.add(term(0.25, [1.0, 2.0]), masks[1], alignment=False)
    assert all(value.device.type == torch.device(DEVICE).type for value in log.losses + log.coverage)
    logger = Logger(folder=None, output_formats=[])
    log.record(logger, coef=1.0)
    assert logger.name_to_value["camal/attention_loss"] == pytest.approx(0.375)
    assert logger.name_to_value["camal/mask_coverage"] == pytest.approx(0.75)
    assert logger.name_to_value["camal/dead_cam_share"] == pytest.approx(0.25)
    assert "camal/batch_epg" not in logger.name_to_value  # no minibatch was measured


class TestObjective:
    """Hand-checked gradients: task = w . a with a = (3, 4), |a| = 5; attention = w . b."""

    @staticmethod
    def grad(b: list[float], coef: float, *, balanced: bool) -> tuple[list[float], float | None]:
        w = torch.nn.Parameter(torch.zeros(2))
        a, b_ = torch.tensor([3.0, 4.0]), torch.tensor(b)
        scale = Objective((w * a).sum(), (w * b_).sum(), coef, balanced).backward([w])
        assert w.grad is not None
        return w.grad.tolist(), None if scale is None else scale.item()

    def test_a_large_attention_gradient_is_capped_at_coef_times_the_task_gradient(self) -> None:
        # |b| = 20 > |a| = 5: s = coef * 5 / 20 -> coef 1: 0.25, grad (3, 4 + 5) = (3, 9)
        assert self.grad([0.0, 20.0], 1.0, balanced=True) == ([3.0, 9.0], 0.25)
        # coef 0.5: s = 0.125, grad (3, 4 + 2.5)
        assert self.grad([0.0, 20.0], 0.5, balanced=True) == ([3.0, 6.5], 0.125)

    def test_a_small_attention_gradient_is_added_at_coef(self) -> None:
        # |b| = 1 < |a| = 5: s = coef = 2, grad (3 + 2, 4)
        assert self.grad([1.0, 0.0], 2.0, balanced=True) == ([5.0, 4.0], 2.0)

    def test_unbalanced_kinds_add_coef_times_the_loss(self) -> None:
        assert self.grad([0.0, 20.0], 1.0, balanced=False) == ([3.0, 24.0], None)
        w = torch.nn.Parameter(torch.zeros(2))
        objective = Objective((w * torch.tensor([3.0, 4.0])).sum() + 1.0, None, 1.0, True)
        assert objective.total.item() == 1.0
        assert objective.backward([w]) is None
        assert w.grad is not None
        assert w.grad.tolist() == [3.0, 4.0]


def test_decision_scores_are_the_taken_score_minus_the_mean() -> None:
    scores = torch.tensor([[1.0, 2.0, 6.0], [0.0, -3.0, 0.0]])  # means 3 and -1
    assert decision_scores(scores, torch.tensor([2, 1])).tolist() == [3.0, -2.0]
    assert decision_scores(scores, torch.tensor([[0], [0]])).tolist() == [-2.0, 1.0]
