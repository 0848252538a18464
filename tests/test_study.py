"""The study's scripts (experiments/camal_study): the tuning rule and the report tables, on
synthetic run directories whose numbers the tests choose."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from camal_rl.statistics import load_results
from experiments.camal_study.report import main, report_cell, seed_table, training_fps
from experiments.camal_study.select_coefs import tuning_table
from experiments.camal_study.training_outcomes import outcome_rows
from tests.conftest import DEVICE
from tests.synthetic_runs import metrics_report, write_run

EPISODES = 4


def write_variant(
    root: Path,
    method: str,
    coef: float | None,
    seeds: range,
    ret: float,
    epg: float,
    deletion: float,
    spread: float = 0.01,
) -> None:
    """One agent variant, one run per seed; seed i's values are the given ones + i * spread."""
    for i, seed in enumerate(seeds):
        metrics = metrics_report(
            [ret] * EPISODES,
            saliency={
                "gradcam": {
                    "epg": [epg + i * spread] * EPISODES,
                    "deletion_auc": [deletion + i * spread] * EPISODES,
                }
            },
            method=method,
            seed=seed,
        )
        write_run(root, method=method, coef=coef, seed=seed, metrics=metrics)


def test_tuning_rule_takes_best_epg_among_returns_near_baseline(tmp_path: Path) -> None:
    write_variant(tmp_path, "none", None, range(100, 102), ret=0.8, epg=0.1, deletion=0.9)
    # floor = 0.95 x 0.8 = 0.76: camal 1 (0.77) qualifies, camal 10 (0.75) does not despite its EPG
    write_variant(tmp_path, "camal", 1.0, range(100, 102), ret=0.77, epg=0.6, deletion=0.8)
    write_variant(tmp_path, "camal", 10.0, range(100, 102), ret=0.75, epg=0.7, deletion=0.8)
    write_variant(tmp_path, "camal", 0.1, range(100, 102), ret=0.9, epg=0.3, deletion=0.8)
    # no rrr coefficient qualifies: the highest return wins
    write_variant(tmp_path, "rrr", 1.0, range(100, 102), ret=0.2, epg=0.5, deletion=0.8)
    write_variant(tmp_path, "rrr", 10.0, range(100, 102), ret=0.4, epg=0.1, deletion=0.8)
    rows, chosen = tuning_table(tmp_path)
    assert chosen == {"camal": 1.0, "rrr": 10.0}
    camal1 = next(r for r in rows if r.method == "camal" and r.coef == 1.0)
    assert camal1.seeds == 2
    assert camal1.mean_return == pytest.approx(0.77)
    assert camal1.gradcam_epg == pytest.approx(0.605)  # seeds 0.60 and 0.61


def test_report_tables_estimates_tests_and_improvement(tmp_path: Path) -> None:
    cell = tmp_path / "doorkey"
    seeds = range(5)  # 5 v 5: the exact Mann-Whitney p can fall below 0.05 (2/252 at best)
    write_variant(cell, "none", None, seeds, ret=0.9, epg=0.1, deletion=0.9)
    write_variant(cell, "camal", 1.0, seeds, ret=0.9, epg=0.6, deletion=0.5)
    write_variant(cell, "energy", 1.0, seeds, ret=0.9, epg=0.5, deletion=0.6)
    text = report_cell(cell)
    lines = text.splitlines()
    # headline row: 5 seeds, EPG mean over seeds 0.60..0.64 = 0.62; no progress.csv -> no speed
    camal_row = next(line for line in lines if line.startswith("| ppo-camal | 5 |"))
    assert "| 0.620 [" in camal_row
    assert camal_row.endswith("| - |")
    # all-metrics table: EPG separates every variant from the baseline in both tests; returns do not
    epg_row = next(line for line in lines if line.startswith("| gradcam/epg |"))
    assert epg_row.count(" *") == 2
    return_row = next(line for line in lines if line.startswith("| return |"))
    assert " *" not in return_row
    # deletion AUC, lower is better: CAMAL 0.52 against energy 0.62 -> (0.62 - 0.52) / 0.62 = +16.1%
    gain = next(line for line in lines if line.startswith("- gradcam/deletion_auc:"))
    assert gain.startswith("- gradcam/deletion_auc: +16.1% [")
    assert "ppo-camal vs ppo-energy" in text
    assert "Inference cost" not in text  # synthetic runs hold no model


def test_report_says_when_each_seed_first_learnt(tmp_path: Path) -> None:
    cell = tmp_path / "cell"
    metrics = metrics_report([0.9] * EPISODES, saliency={"gradcam": {"epg": [0.5] * EPISODES}})

    def curve(*returns: float) -> list[dict[str, float]]:
        return [{"step": 10_000 * i, "return_mean": r} for i, r in enumerate(returns)]

    write_run(cell, method="none", seed=0, metrics=metrics, evaluations=curve(0, 0.49, 0.5, 0))
    write_run(cell, method="none", seed=1, metrics=metrics, evaluations=curve(0, 0.96, 0.2))
    write_run(cell, method="none", seed=2, metrics=metrics, evaluations=curve(0, 0, 0.1))
    write_run(cell, method="camal", seed=0, metrics=metrics)  # no periodic evaluations
    rows = report_cell(cell).splitlines()
    assert "| first return >= 0.5 (seed by seed) |" in rows[2]
    # seed 0 reaches 0.5 exactly at 20k (and loses it: the first time counts); seed 2 never does
    none_row = next(line for line in rows if line.startswith("| ppo-none |"))
    assert none_row.endswith("| 20k, 10k, never | - |")  # no progress.csv: no speed
    camal_row = next(line for line in rows if line.startswith("| ppo-camal |"))
    assert camal_row.endswith("| - | - |")


def test_report_judges_vizdoom_learning_on_its_own_return_scale(tmp_path: Path) -> None:
    metrics = metrics_report([79.0] * EPISODES, saliency={"gradcam": {"epg": [0.05] * EPISODES}})
    curve = [{"step": 20_000 * i, "return_mean": r} for i, r in enumerate((-300, 26, 49.9, 50, 79))]
    write_run(tmp_path, env="VizdoomBasic-v1", method="none", metrics=metrics, evaluations=curve)
    rows = report_cell(tmp_path).splitlines()
    assert "| first return >= 50 (seed by seed) |" in rows[2]
    assert next(line for line in rows if line.startswith("| ppo-none |")).endswith("| 60k | - |")


def test_seed_table_has_one_row_per_run_baseline_first(tmp_path: Path) -> None:
    """Each run's own means (EPG 0.5 + seed x 0.01 for CAMAL), the step it first reached 50, its
    speed from progress.csv (1200 steps in 20 s: 60.0 env steps/s), '-' where a run has none."""
    curve = [{"step": 20_000 * i, "return_mean": r} for i, r in enumerate((-300, 60, 79))]
    for seed in (1, 0):
        write_run(
            tmp_path,
            env="VizdoomBasic-v1",
            method="camal",
            seed=seed,
            metrics=metrics_report(
                [79.0 + seed] * EPISODES, saliency={"gradcam": {"epg": [0.5 + seed / 100] * 4}}
            ),
            evaluations=curve,
        )
    baseline = write_run(
        tmp_path, env="VizdoomBasic-v1", method="none", seed=3, metrics=metrics_report([-300.0] * EPISODES)
    )
    (baseline / "progress.csv").write_text("time/fps,time/time_elapsed\n60,20\n")
    write_run(tmp_path, env="VizdoomBasic-v1", method="energy", seed=0)  # not evaluated: no row
    rows = seed_table(tmp_path).splitlines()
    assert rows[2] == "| agent | seed | return | gradcam/epg | first return >= 50 | train fps |"
    assert rows[4:] == [
        "| ppo-none | 3 | -300.000 | - | - | 60.0 |",
        "| ppo-camal | 0 | 79.000 | 0.500 | 20k | - |",
        "| ppo-camal | 1 | 80.000 | 0.510 | 20k | - |",
    ]
    write_run(tmp_path / "pending", method="none", seed=0)
    assert "no evaluated run yet" in seed_table(tmp_path / "pending")


def test_report_cell_without_evaluations(tmp_path: Path) -> None:
    write_run(tmp_path / "empty", method="none", seed=0)
    assert "no evaluated run yet" in report_cell(tmp_path / "empty")


def test_training_fps_combines_resumed_segments(tmp_path: Path) -> None:
    run = write_run(tmp_path, method="none", seed=0)
    header = "time/fps,time/time_elapsed,time/total_timesteps\n"
    (run / "progress.csv").write_text(header + "90,5,450\n100,10,1000\n")  # 1000 steps in 10 s
    (run / "progress.1.csv").write_text(header + "50,20,2000\n")  # resumed: 1000 more in 20 s
    (result,) = load_results([tmp_path])
    assert training_fps(result) == pytest.approx(2000 / 30)


def test_report_min_return_keeps_the_seeds_that_learned(tmp_path: Path) -> None:
    write_variant(tmp_path, "none", None, range(3), ret=0.9, epg=0.1, deletion=0.9)
    write_variant(tmp_path, "none", None, range(3, 5), ret=0.0, epg=0.1, deletion=0.9)
    write_variant(tmp_path, "camal", None, range(5), ret=0.9, epg=0.6, deletion=0.5)
    assert "| ppo-none | 5 |" in report_cell(tmp_path)
    text = report_cell(tmp_path, min_return=0.5)
    assert text.startswith(f"### {tmp_path.name} (seeds with return >= 0.5 only)")
    assert "| ppo-none | 3 |" in text
    assert "| ppo-camal | 5 |" in text
    assert "All metrics" not in text


def test_report_main_prints_both_analyses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_variant(tmp_path, "none", None, range(2), ret=0.9, epg=0.1, deletion=0.9)
    write_variant(tmp_path, "camal", None, range(2), ret=0.0, epg=0.6, deletion=0.5)
    main([str(tmp_path), "--min-return", "0.5"])
    out = capsys.readouterr().out
    assert out.count(f"### {tmp_path.name}") == 2
    assert "| ppo-camal | 2 |" in out.split("only)")[0]
    assert "| ppo-camal |" not in out.split("only)")[1]  # no CAMAL seed reached 0.5


def test_training_outcomes_by_hand(tmp_path: Path) -> None:
    """LavaCrossingS9N1 times out at 324 steps. Env 0: goal, lava, time-out, goal, time-out; env 1:
    lava, time-out, goal, lava, goal. Overall 4 goals, 3 lava, 3 time-outs of 10; the last fifth
    is each env's last episode: env 0's time-out and env 1's goal."""
    write_run(
        tmp_path,
        method="none",
        env="MiniGrid-LavaCrossingS9N1-v0",
        monitor=[
            [(0.9, 20), (0.0, 10), (0.0, 324), (0.8, 30), (0.0, 324)],
            [(0.0, 5), (0.0, 324), (0.95, 12), (0.0, 7), (0.9, 15)],
        ],
    )
    (row,) = outcome_rows([tmp_path])
    assert row == {
        "run": "ppo-none/seed0",
        "steps": 708 + 363,
        "all: episodes": 10,
        "all: goal": pytest.approx(0.4),
        "all: ended early, no reward": pytest.approx(0.3),
        "all: timed out": pytest.approx(0.3),
        "last fifth: goal": pytest.approx(0.5),
        "last fifth: ended early, no reward": pytest.approx(0.0),
        "last fifth: timed out": pytest.approx(0.5),
    }
    with pytest.raises(SystemExit, match="no run directories"):
        outcome_rows([tmp_path / "empty"])


def test_dqn_cell_scores_faithfulness_on_the_policy_the_agent_acts_with() -> None:
    from camal_rl.compare import SweepConfig
    from camal_rl.config import from_preset

    dqn = from_preset("study-doorkey-dqn", SweepConfig)
    assert dqn.evaluate_config(Path("run")).evaluation.q_policy == "epsilon-greedy"
    assert dqn.evaluate_config(Path("run")).evaluation.q_epsilon == 0.05
    assert from_preset("study-doorkey-ppo", SweepConfig).evaluation.q_policy == "softmax"  # unused by PPO
    assert from_preset("study-doorkey-dqn", SweepConfig, episodes=5).evaluation == dataclasses.replace(
        dqn.evaluation, episodes=5
    )  # an option of the nested evaluation settings, by its own name


def test_report_merge_reports_several_sweeps_as_one_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A post-hoc sweep (CAMAL at 0.1) beside a cell (baseline, CAMAL at 1) reports as one table,
    its variant tested against the cell's baseline."""
    cell, extra = tmp_path / "lava-ppo", tmp_path / "lava-diagnostic"
    write_variant(cell, "none", None, range(5), ret=0.3, epg=0.1, deletion=0.9)
    write_variant(cell, "camal", 1.0, range(5), ret=0.0, epg=0.7, deletion=0.5)
    write_variant(cell, "energy", 1.0, range(5), ret=0.9, epg=0.5, deletion=0.6)
    write_variant(extra, "camal", 0.1, range(5), ret=0.9, epg=0.6, deletion=0.5)
    main(["--merge", str(cell), str(extra)])
    text = capsys.readouterr().out
    assert text.count("### ") == 1
    assert text.startswith("### lava-ppo + lava-diagnostic")
    # seeds 0..4 at 0.6 + i * 0.01: mean 0.62
    low_coef = next(line for line in text.splitlines() if line.startswith("| ppo-camal-c0.1 | 5 |"))
    assert "| 0.620 [" in low_coef
    assert "| ppo-camal-c0.1 vs ppo-none |" in text
    # two CAMAL variants against energy, each line names its pair: (0.62 - 0.52) / 0.62 = +16.1%
    assert "- ppo-camal vs ppo-energy, gradcam/deletion_auc: +16.1% [" in text
    assert "- ppo-camal-c0.1 vs ppo-energy, gradcam/deletion_auc: +16.1% [" in text
    main([str(cell), str(extra)])  # without --merge: one table per folder
    assert capsys.readouterr().out.count("### ") == 2


def test_saliency_still_writes_the_still_and_gif_without_ffmpeg(tiny_run: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    from camal_rl.frames import render_frames, still_index
    from camal_rl.loading import load_agent
    from camal_rl.video import record_agent
    from experiments.camal_study.saliency_still import main as still_main

    out = tmp_path / "still.png"
    still_main([str(out), str(tiny_run), str(tiny_run), "--max-steps", "4", "--device", DEVICE])
    gif = iio.imread(out.with_suffix(".gif"), index=None)
    assert gif.shape[0] == 4  # one frame per step of the cut episode
    recording = record_agent(load_agent(tiny_run, device=DEVICE), "gradcam", max_steps=4)
    frames = list(render_frames([recording, recording]))  # what `camal-rl record` would tile
    assert np.array_equal(iio.imread(out), frames[still_index([recording, recording])])


def two_run_cell(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A cell of a CAMAL run (the tiny run) and a baseline run, each evaluated as the sweep does
    (2 episodes, Grad-CAM): the cell, the CAMAL run and the baseline run."""
    from camal_rl.config import TrainConfig
    from camal_rl.evaluation import EvaluateConfig, evaluate
    from camal_rl.settings import AgentSettings, EvaluationSettings
    from camal_rl.train import train
    from tests.conftest import TINY_PPO_HP

    cell = tmp_path / "cell"
    camal = cell / "E" / "ppo-camal" / "seed0"
    shutil.copytree(tiny_run, camal)
    none = cell / "E" / "ppo-none" / "seed0"
    tiny = {"steps": 128, "n_envs": 2, "hp": TINY_PPO_HP, "eval_freq": 0, "checkpoint_freq": 0}
    train(TrainConfig(method="none", out=none, progress_bar=False, device=DEVICE, **tiny))  # type: ignore[arg-type]
    for run in (camal, none):  # what the sweep wrote: 2 episodes, Grad-CAM
        evaluation = EvaluationSettings(episodes=2, saliency=("gradcam",), faithfulness=False)
        evaluate(EvaluateConfig(run=run, agent=AgentSettings(device=DEVICE), evaluation=evaluation))
    return cell, camal, none


def test_gradient_saliency_adds_two_methods_on_the_same_episodes(tiny_run: Path, tmp_path: Path) -> None:
    import json

    from experiments.camal_study.gradient_saliency import FILE, gradient_table

    cell, camal, none = two_run_cell(tiny_run, tmp_path)
    text = gradient_table([cell], DEVICE)
    added = json.loads((camal / FILE).read_text())["variants"]["train"]
    assert set(added["saliency"]) == {"integrated_gradients", "input_x_gradient"}
    assert added["episodes"] == 2
    row = next(line for line in text.splitlines() if line.startswith("| ppo-camal | 1 |"))
    assert f"| {added['saliency']['integrated_gradients']['epg']['mean']:.3f}" in row
    assert "| ppo-camal vs ppo-none |" in text
    # other episodes than metrics.json's are refused, not mixed in
    report = json.loads((none / "metrics.json").read_text())
    report["variants"]["train"]["steps_scored"] += 1
    (none / "metrics.json").write_text(json.dumps(report))
    with pytest.raises(RuntimeError, match="not the same episodes"):
        gradient_table([cell], DEVICE)


def test_layer_alignment_scores_grad_cam_at_each_conv_layer(tiny_run: Path, tmp_path: Path) -> None:
    import json

    from experiments.camal_study.layer_alignment import LAYERS, layer_table

    cell, camal, _ = two_run_cell(tiny_run, tmp_path)
    text = layer_table([cell], DEVICE)
    row = next(line for line in text.splitlines() if line.startswith("| ppo-camal | 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    for column, short in enumerate(LAYERS, start=2):  # agent, seeds, then conv1 EPG, conv2 EPG, conv3 EPG
        report = json.loads((camal / f"metrics_layer_{short}.json").read_text())
        assert report["settings"]["layer"] == LAYERS[short]
        assert cells[column] == f"{report['variants']['train']['saliency']['gradcam']['epg']['mean']:.3f}"
    own = json.loads((camal / "metrics.json").read_text())["variants"]["train"]["saliency"]["gradcam"]
    assert cells[4] == f"{own['epg']['mean']:.3f}"  # conv3: the attention layer of metrics.json


def test_flat_maps_reads_the_share_or_evaluates_the_model_again(tiny_run: Path, tmp_path: Path) -> None:
    """A metrics.json with flat_share is read as it is; one from before it was added is evaluated
    again on the same episodes, into metrics_flat.json, and gives the same share."""
    import json

    from experiments.camal_study.flat_maps import FILE, flat_table

    cell, camal, none = two_run_cell(tiny_run, tmp_path)
    path = camal / "metrics.json"
    old = json.loads(path.read_text())
    share = old["variants"]["train"]["saliency"]["gradcam"].pop("flat_share")
    path.write_text(json.dumps(old))
    text = flat_table([cell], DEVICE)
    assert (camal / FILE).exists()
    assert not (none / FILE).exists()
    again = json.loads((camal / FILE).read_text())["variants"]["train"]["saliency"]["gradcam"]
    assert again["flat_share"] == share
    assert "| agent | seeds | gradcam/flat_share | gradcam/epg | gradcam/iou |" in text
    for label, run in (("ppo-camal", camal), ("ppo-none", none)):
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} | 1 |"))
        report = json.loads((run / (FILE if run == camal else "metrics.json")).read_text())
        expected = report["variants"]["train"]["saliency"]["gradcam"]["flat_share"]["mean"]
        assert [c.strip() for c in row.strip("|").split("|")][2] == f"{expected:.3f}"
    own = json.loads((none / "metrics.json").read_text())  # no flat share, and no model:
    del own["variants"]["train"]["saliency"]["gradcam"]["flat_share"]
    (none / "metrics.json").write_text(json.dumps(own))
    for model in [none / "model.zip", *(none / "checkpoints").glob("*.zip")]:
        model.unlink()
    text = flat_table([cell], DEVICE)
    assert not any(line.startswith("| ppo-none |") for line in text.splitlines())
    assert text.endswith(f"Left out, no flat share and no saved model: {none}\n")


def test_training_table_averages_the_last_logged_dead_cam_shares(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each finished run's last LAST_LOGS values, over two sessions' logs; rows without the key
    (SB3's rollout rows) and unfinished runs do not count."""
    from experiments.camal_study.flat_maps import main as flat_main
    from experiments.camal_study.flat_maps import training_table

    cell = tmp_path / "cell"
    header = "time/total_timesteps,camal/dead_cam_share,rollout/ep_rew_mean\n"
    logs = {  # seed -> (progress.csv, progress.1.csv): 12 logged values, the last 10 averaged
        0: (
            "".join(f"{k},{0.9 if k < 2 else 0.5},\n" for k in range(6)),
            "6,,1\n7,0.5,\n8,0.5,\n9,0.5,\n10,0.5,\n11,0.5,\n12,0.5,\n",
        ),
        1: ("".join(f"{k},0.0,\n" for k in range(5)), "".join(f"{k},0.2,\n" for k in range(5, 12))),
    }
    for seed, (first, second) in logs.items():
        run = write_run(cell, method="rrr", coef=0.1, seed=seed)
        (run / "progress.csv").write_text(header + first)
        (run / "progress.1.csv").write_text(header + second)
    unfinished = write_run(cell, method="rrr", coef=0.1, seed=2, state="running")
    (unfinished / "progress.csv").write_text(header + "1,1.0,\n")
    # seed 0: the last 10 are 4 x 0.5 then 6 x 0.5 -> 0.5; seed 1: 3 x 0.0 and 7 x 0.2 -> 0.14
    row = "| cell | ppo-rrr-c0.1 | 2 | 0.320 [0.140, 0.500] |"
    assert training_table([cell]).splitlines()[2:] == [row]
    flat_main(["--training", str(cell)])  # the command line: no model needed
    assert row in capsys.readouterr().out.splitlines()


def test_stock_table_summarises_each_group_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Means over runs, [min, max], and Welch p of the first group against the second."""
    import json

    from experiments.stock_sb3 import table

    groups: dict[str, list[Path]] = {}
    for name, returns in {"stock": [0.9, 1.0], "none": [0.0, 0.5, 1.0], "camal": [1.0]}.items():
        groups[name] = []
        for i, ret in enumerate(returns):
            path = tmp_path / f"{name}{i}.json"
            path.write_text(json.dumps(metrics_report([ret, ret], saliency={"gradcam": {"epg": [0.1, 0.3]}})))
            groups[name].append(path)
    monkeypatch.setattr(table, "GROUPS", groups)
    monkeypatch.setattr(table, "METRICS", ("return", "gradcam/epg"))
    table.main()
    out = capsys.readouterr().out
    # stock mean 0.95, none 0.5 in [0, 1]; Welch: t = 0.45 / sqrt(0.005 / 2 + 0.25 / 3) = 1.536,
    # df = 0.0858333^2 / (0.0025^2 / 1 + 0.0833333^2 / 2) = 2.118, two-sided p = 0.258
    assert "| return | 0.950 [0.900, 1.000] | 0.500 [0.000, 1.000] | 1.000 [1.000, 1.000] | 0.258 |" in out
    assert "| gradcam/epg | 0.200 [0.200, 0.200] |" in out  # the mean of 0.1 and 0.3 in every run
    assert "stock: 2 runs, none: 3 runs, camal: 1 runs" in out
