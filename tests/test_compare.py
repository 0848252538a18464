"""camal-rl compare: a tiny sweep in a process pool and on a local Ray instance, skipping and
resuming runs, aggregation from files, refusals."""

from __future__ import annotations

import builtins
import csv
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from camal_rl.atomic import write_json
from camal_rl.compare import compare
from camal_rl.config import TrainConfig, describe_changes
from camal_rl.errors import InputError, MissingExtraError
from camal_rl.evaluation import EvaluateConfig
from camal_rl.options import with_options
from camal_rl.rundir import RunDir
from camal_rl.statistics import RunResult, load_results
from camal_rl.sweep import (
    SweepConfig,
    evaluation_seconds,
    flat_notes,
    format_duration,
    parse_variant,
    progress_line,
    sweep_estimate,
)

CELL = TrainConfig(
    steps=128, n_envs=2, hp=("n_steps=64", "batch_size=64", "n_epochs=1"), eval_freq=0, checkpoint_freq=0
)


def tiny_sweep(out: Path, **kwargs: Any) -> SweepConfig:
    base: dict[str, Any] = {
        "cells": (CELL,),
        "methods": ("none", "camal:0.5"),
        "seeds": (0,),
        "out": out,
        "episodes": 1,
        "max_steps_scored": 2,
        "saliency": ("gradcam",),
        "faithfulness": False,
        "workers": 2,
    }
    return with_options(SweepConfig(), **{**base, **kwargs})


def comparable(metrics_file: Path) -> dict[str, Any]:
    """metrics.json without the fields that name paths or time."""
    report = json.loads(metrics_file.read_text())
    return {k: v for k, v in report.items() if k not in ("run", "model", "evaluation_seconds")}


@pytest.fixture(scope="module")
def pool_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "pool"
    compare(tiny_sweep(out))
    return out


def test_sweep_writes_runs_tables_and_plots(pool_sweep: Path) -> None:
    runs = sorted(p.parent.parent.name for p in pool_sweep.glob("*/*/seed0/metrics.json"))
    assert runs == ["ppo-camal-c0.5", "ppo-none"]
    for label in runs:
        run = RunDir(pool_sweep / "MiniGrid-DoorKey-5x5-v0" / label / "seed0")
        assert run.is_evaluated()
        assert (run.path.parent / "seed0.log").exists()
    table = (pool_sweep / "comparison.md").read_text()
    assert "| ppo-camal-c0.5 vs ppo-none |" in table
    assert (pool_sweep / "comparison.csv").exists()
    assert (pool_sweep / "plots" / "bars_gradcam_epg.png").exists()


@pytest.fixture
def sweep_copy(pool_sweep: Path, tmp_path: Path) -> Path:
    """A copy of the finished sweep that a test may change."""
    return Path(shutil.copytree(pool_sweep, tmp_path / "copy"))


def test_compare_from_a_config_file_with_options_over_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`compare --config FILE --episodes 2`: the file's sweep (its cell a run's config.json), the
    command line's episodes over the file's 1."""
    from camal_rl.cli import main

    sweep = {
        "cells": [CELL.to_json()],
        "methods": ["none"],
        "seeds": [0],
        "episodes": 1,
        "max_steps_scored": 2,
        "saliency": ["gradcam"],
        "faithfulness": False,
        "workers": 1,
        "out": str(tmp_path / "sweep"),
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    assert main(["compare", "--config", str(path), "--episodes", "2"]) == 0
    run = RunDir(tmp_path / "sweep" / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed0")
    metrics = run.read_metrics()
    assert metrics is not None
    assert metrics["num_timesteps"] == 128  # the cell's budget
    assert metrics["settings"] == {
        "episodes": 2,  # the command line's, over the file's 1
        "seed": 1_000_000,
        "distractors": 0,
        "methods": ["gradcam"],
        "faithfulness": False,
        "max_steps_scored": 2,
    }
    # DoorKey takes at least 6 steps (key, door, goal), so each episode has 2 steps scored: 2 x 2
    assert metrics["variants"]["train"]["steps_scored"] == 4
    assert (tmp_path / "sweep" / "comparison.md").exists()
    path.write_text(json.dumps({**sweep, "episdoes": 1}))
    assert main(["compare", "--config", str(path)]) == 2
    assert "unknown key 'episdoes' (did you mean episodes?)" in capsys.readouterr().err


def test_finished_runs_are_skipped_and_unfinished_ones_resumed(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sweep_copy
    unfinished = RunDir(out / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed0")
    unfinished.metrics.unlink()
    unfinished.write_status("interrupted", num_timesteps=64)
    compare(tiny_sweep(out))
    printed = capsys.readouterr().out
    assert "2 runs, 1 to train or evaluate" in printed
    assert "skipped" in printed
    assert unfinished.is_evaluated()
    assert "resuming" in (unfinished.path.parent / "seed0.log").read_text()


@pytest.mark.slow  # a long sweep: `make test-all` runs it
def test_max_runs_takes_the_next_runs_in_order_and_leaves_the_rest(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-runs 1 on a sweep of 6 runs, 2 done: the first pending run in run order (ppo-none
    seed 1) is trained, the other 3 are left for the next call and named in the partial note."""
    out = sweep_copy
    with pytest.raises(InputError, match="--max-runs must be >= 1"):
        compare(tiny_sweep(out, max_runs=0))
    compare(tiny_sweep(out, seeds=(0, 1, 2), max_runs=1))
    printed = capsys.readouterr().out
    assert "6 runs, 4 to train or evaluate, 1 in this call (--max-runs), 2 at a time" in printed
    cell = out / "MiniGrid-DoorKey-5x5-v0"
    assert RunDir(cell / "ppo-none" / "seed1").is_evaluated()
    assert not (cell / "ppo-none" / "seed2").exists()
    assert "Partial sweep: 3 of 6 runs done; not in the tables:\n- not started: " in printed
    compare(tiny_sweep(out, seeds=(0, 1, 2), max_runs=5))  # more than are left: all of them
    assert "6 runs, 3 to train or evaluate, 2 at a time" in capsys.readouterr().out
    assert RunDir(cell / "ppo-camal-c0.5" / "seed2").is_evaluated()


def test_sweep_estimate_goes_by_the_finished_runs_of_each_variant(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Paces by hand: ppo-none seed 0 logged 100 steps/s for 2 s, then 200 steps/s over 5 s since
    its session's start (the last row counts: 1000 steps in 5 s), and a second session at 10
    steps/s for 10 s: 1100 steps in 15 s; ppo-camal seed 0, 50 steps/s for 10 s: 0.02 s a step.
    Their evaluations took 4 s and 6 s (metrics.json's evaluation_seconds)."""
    cell = sweep_copy / "MiniGrid-DoorKey-5x5-v0"
    none, camal = RunDir(cell / "ppo-none" / "seed0"), RunDir(cell / "ppo-camal-c0.5" / "seed0")
    (none.path / "progress.csv").write_text("time/fps,time/time_elapsed,train/loss\n100,2,1\n200,5,1\n,,1\n")
    (none.path / "progress.1.csv").write_text("time/fps,time/time_elapsed\n10,10\n")
    (camal.path / "progress.csv").write_text("time/fps,time/time_elapsed\n50,10\n")
    assert none.training_time() == (1100.0, 15.0)
    assert camal.training_time() == (500.0, 10.0)
    for run, took in ((none, 4), (camal, 6)):
        write_json(run.metrics, {**json.loads(run.metrics.read_text()), "evaluation_seconds": took})
    assert evaluation_seconds(none) == 4.0
    sweep = tiny_sweep(sweep_copy, seeds=(0, 1, 2))
    jobs = [(run, sweep.evaluate_config(run.run_dir)) for run in sweep.run_configs()]
    now = [job for job in jobs if job[0].seed > 0]  # none 1, 2, then camal 1, 2; 128 steps each
    none_s, camal_s = 15 / 1100 * 128 + 4, 0.02 * 128 + 6
    assert sweep_estimate(now, jobs, 1) == (pytest.approx(2 * none_s + 2 * camal_s), [])
    # two workers, each run to the first free one: none 1 | none 2, then camal 1 | camal 2
    assert sweep_estimate(now, jobs, 2) == (pytest.approx(none_s + camal_s), [])
    # a run with a saved model at 64 steps trains the other 64, then is evaluated
    started = RunDir(now[0][0].run_dir)
    started.path.mkdir(parents=True)
    (started.path / "model.zip").write_bytes(b"")
    started.write_status("interrupted", num_timesteps=64)
    assert sweep_estimate(now[:1], jobs, 1) == (pytest.approx(15 / 1100 * 64 + 4), [])
    assert sweep_estimate([], jobs, 2) == (0.0, [])  # nothing to do: no estimate printed
    unknown = tiny_sweep(sweep_copy, methods=("energy",), seeds=(0,))
    unknown_jobs = [(r, unknown.evaluate_config(r.run_dir)) for r in unknown.run_configs()]
    assert sweep_estimate(unknown_jobs, jobs, 2) is None  # no energy run finished
    started.model.unlink()
    started.write_status("running", num_timesteps=64)  # no model: the whole budget
    assert sweep_estimate(now[:1], jobs, 1) == (pytest.approx(none_s), [])
    # evaluated with other settings (5 episodes, not the sweep's 1): its time says nothing
    more = tiny_sweep(sweep_copy, seeds=(0, 1, 2), episodes=5)
    more_jobs = [(run, more.evaluate_config(run.run_dir)) for run in more.run_configs()]
    assert sweep_estimate(more_jobs[1:2], more_jobs, 1) == (pytest.approx(15 / 1100 * 128), ["ppo-none"])
    assert [format_duration(s) for s in (5400, 720, 40, 3600 + 29)] == [
        "1 h 30 min",
        "12 min",
        "40 s",
        "1 h 0 min",
    ]
    shutil.rmtree(started.path)  # a folder without config.json: not a run a sweep resumes
    compare(tiny_sweep(sweep_copy, seeds=(0, 1), max_runs=1))
    printed = capsys.readouterr().out
    assert "2 at a time (process); training and evaluating them takes about 6 s at the pace" in printed
    seed1 = RunDir(cell / "ppo-none" / "seed1")
    assert (evaluation_seconds(seed1) or 0) > 0  # recorded by evaluate
    assert f"wrote {seed1.metrics} (evaluated in " in (cell / "ppo-none" / "seed1.log").read_text()
    legacy = json.loads(camal.metrics.read_text())  # evaluated before metrics.json recorded the time
    del legacy["evaluation_seconds"]
    write_json(camal.metrics, legacy)
    compare(tiny_sweep(sweep_copy, seeds=(0, 1), max_runs=1))  # camal seed 1
    assert (
        "; training them takes about 3 s at the pace of the runs done (not counting the evaluations of "
        "ppo-camal-c0.5: no run of theirs recorded how long one took)"
    ) in capsys.readouterr().out
    none.metrics.write_text("{not json")
    assert evaluation_seconds(none) is None


def test_an_unreadable_metrics_file_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.metrics.write_text("{not json")
    settings = EvaluateConfig(tmp_path).settings("ppo")
    with pytest.raises(InputError, match=r"rerun camal-rl evaluate .* to rewrite it, or delete it"):
        _ = run.needs(CELL, settings).evaluation_changes
    assert evaluation_seconds(run) is None  # the estimate goes without it
    run.metrics.unlink()
    assert run.read_metrics() is None
    assert run.needs(CELL, settings).evaluation_changes == {}


def test_progress_line_names_the_runs_at_work_and_their_time_left(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ppo-none seed 1 logged 64 steps at 8 steps/s (the other 64 of its 128: 8 s); seed 0 last
    wrote before the sweep started (a run queued, or finished), so it is not named."""
    sweep = tiny_sweep(sweep_copy, seeds=(0, 1))
    none0, none1 = sweep.run_configs()[:2]
    at_work = RunDir(none1.run_dir)
    at_work.path.mkdir(parents=True)
    at_work.write_status("running", num_timesteps=0)
    (at_work.path / "progress.csv").write_text("time/fps,time/total_timesteps\n8,32\n8,64\n")
    old = time.time() - 3600
    finished = RunDir(none0.run_dir).path
    for path in [*finished.rglob("*"), finished.parent / "seed0.log"]:
        os.utime(path, (old, old))
    line = progress_line([none0, none1], sweep_copy, since=time.time() - 60)
    assert line.endswith(
        " in progress: MiniGrid-DoorKey-5x5-v0/ppo-none/seed1 at 64 of 128 steps (about 8 s left)"
    )
    assert progress_line([none0], sweep_copy, since=time.time() - 60).endswith(" in progress: starting")
    # seed 0, trained, is evaluated again: only its sweep log changes
    (RunDir(none0.run_dir).path.parent / "seed0.log").write_text("evaluating ...\n")
    assert progress_line([none0, none1], sweep_copy, since=time.time() - 60).endswith(
        " in progress: MiniGrid-DoorKey-5x5-v0/ppo-none/seed0 evaluating, "
        "MiniGrid-DoorKey-5x5-v0/ppo-none/seed1 at 64 of 128 steps (about 8 s left)"
    )
    (at_work.path / "progress.csv").write_text("time/fps,time/total_timesteps\n8,64\n8,128\n")
    assert progress_line([none1], sweep_copy, since=time.time() - 60).endswith(
        " in progress: MiniGrid-DoorKey-5x5-v0/ppo-none/seed1 at 128 of 128 steps (finishing its training)"
    )
    with pytest.raises(InputError, match="--progress-every must be >= 0"):
        compare(tiny_sweep(sweep_copy, progress_every=-1.0))
    shutil.rmtree(at_work.path)
    compare(tiny_sweep(sweep_copy, seeds=(0, 1), progress_every=0.5))  # each new run trains for seconds
    assert " in progress: MiniGrid-DoorKey-5x5-v0/ppo-" in capsys.readouterr().out


@pytest.mark.slow  # a long sweep: `make test-all` runs it
def test_a_raised_budget_trains_finished_runs_on_and_evaluates_them_again(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sweep_copy
    run = RunDir(out / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed0")
    assert run.read_status()["num_timesteps"] == 128
    compare(tiny_sweep(out, steps=256))
    assert "2 runs, 2 to train or evaluate" in capsys.readouterr().out
    assert run.read_status()["num_timesteps"] == 256  # 2 envs x 64 steps a rollout: exactly 256
    assert json.loads(run.metrics.read_text())["num_timesteps"] == 256
    assert (
        "training on: the run has 128 steps fewer than the sweep's --steps"
        in (run.path.parent / "seed0.log").read_text()
    )
    compare(tiny_sweep(out, steps=128))  # a smaller budget: the longer runs are kept
    assert "2 runs, 0 to train or evaluate" in capsys.readouterr().out
    assert run.read_status()["num_timesteps"] == 256


@pytest.mark.slow  # a long sweep: `make test-all` runs it
def test_runs_are_evaluated_again_when_the_evaluation_settings_change(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sweep_copy
    run = RunDir(out / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed0")
    recorded = json.loads(run.metrics.read_text())["settings"]
    assert recorded == {
        "episodes": 1,
        "seed": 1_000_000,
        "distractors": 0,
        "methods": ["gradcam"],
        "faithfulness": False,
        "max_steps_scored": 2,
    }
    compare(tiny_sweep(out, q_policy="epsilon-greedy"))  # PPO runs: the Q-policy does not count
    assert "2 runs, 0 to train or evaluate" in capsys.readouterr().out
    compare(tiny_sweep(out, episodes=2))
    assert "2 runs, 2 to train or evaluate" in capsys.readouterr().out
    assert json.loads(run.metrics.read_text())["settings"]["episodes"] == 2
    assert run.read_status()["num_timesteps"] == 128  # evaluated again, not trained again
    assert "settings differ: {'episodes': [1, 2]}" in (run.path.parent / "seed0.log").read_text()
    # a metrics.json from before settings were recorded is kept as it is
    legacy = json.loads(run.metrics.read_text())
    del legacy["settings"]
    run.metrics.write_text(json.dumps(legacy))
    compare(tiny_sweep(out, episodes=3))
    assert "2 runs, 1 to train or evaluate" in capsys.readouterr().out


def test_aggregation_names_the_runs_not_done_and_leaves_them_out(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sweep_copy
    saved = RunDir(out / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed1")
    saved.path.mkdir(parents=True)
    saved.write_status("interrupted", num_timesteps=64)
    compare(tiny_sweep(out, seeds=(0, 1, 2), aggregate_only=True))
    note = [
        "Partial sweep: 2 of 6 runs done; not in the tables:",
        "- interrupted at 64 of 128 steps (its model is gone: it trains again from step 0): "
        "MiniGrid-DoorKey-5x5-v0/ppo-none/seed1",
        "- not started: MiniGrid-DoorKey-5x5-v0/ppo-none/seed2, "
        "MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed1, MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed2",
    ]
    assert capsys.readouterr().out.splitlines()[:3] == note
    table = (out / "comparison.md").read_text()
    assert table.splitlines()[2:5] == note
    running = RunDir(out / "MiniGrid-DoorKey-5x5-v0" / "ppo-camal-c0.5" / "seed2")
    running.path.mkdir(parents=True)
    running.write_status("running", num_timesteps=0)  # started; evaluated since, not saved
    running.append_evaluation({"step": 0})
    running.append_evaluation({"step": 96})
    compare(tiny_sweep(out, seeds=(0, 1, 2), aggregate_only=True))
    assert "- running (or killed) at 96 of 128 steps: MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed2" in (
        capsys.readouterr().out.splitlines()
    )
    assert "| ppo-none | 1 |" in table  # seed 0 only
    assert "| ppo-camal-c0.5 | 1 |" in table
    # a raised budget, other evaluation settings: done runs are not done for this sweep
    compare(tiny_sweep(out, steps=256, aggregate_only=True))
    assert capsys.readouterr().out.splitlines()[:2] == [
        "Partial sweep: 0 of 2 runs done; not in the tables:",
        "- to train on to 256 steps: MiniGrid-DoorKey-5x5-v0/ppo-none/seed0, "
        "MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed0",
    ]
    assert (
        (out / "comparison.md")
        .read_text()
        .endswith("MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed0\n\nNo results.\n")
    )
    compare(tiny_sweep(out, episodes=2, aggregate_only=True))
    assert (
        "- evaluated with other settings: MiniGrid-DoorKey-5x5-v0/ppo-none/seed0, " in capsys.readouterr().out
    )
    compare(tiny_sweep(out, aggregate_only=True))  # the sweep as it ran: no note, tables as before
    assert "Partial" not in capsys.readouterr().out
    assert (
        (out / "comparison.md").read_text().startswith(f"# camal-rl compare: {out}\n\n### MiniGrid-DoorKey")
    )


def test_aggregating_a_folder_without_the_sweeps_runs_is_refused(tmp_path: Path) -> None:
    """A mistyped --out (or --methods) would otherwise write an empty table into a new folder."""
    out = tmp_path / "typo"
    with pytest.raises(
        InputError, match=r"--aggregate-only: .*typo holds none of this sweep's 2 runs"
    ) as refused:
        compare(tiny_sweep(out, aggregate_only=True))
    assert "(such as MiniGrid-DoorKey-5x5-v0/ppo-none/seed0)" in str(refused.value)
    assert not out.exists()


def test_table_metrics_by_any_name_and_the_missing_ones_named(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--metrics train/return is the table's return (it was dropped: the tables name it return);
    a name no run has is left out, saying so."""
    compare(tiny_sweep(sweep_copy, metrics=("train/return", "gradcam/epgg", "zzz"), aggregate_only=True))
    assert (
        capsys.readouterr()
        .out.splitlines()[0]
        .startswith(
            "--metrics gradcam/epgg (did you mean gradcam/epg?), zzz: in no evaluated run's "
            "metrics.json, left out of the tables; "
            "the runs have return, length, success_rate, gradcam/epg, "
        )
    )
    with (sweep_copy / "comparison.csv").open() as table:
        assert {row["metric"] for row in csv.DictReader(table)} == {"return"}
    compare(tiny_sweep(sweep_copy, aggregate_only=True))  # the defaults: nothing to say
    assert "--metrics" not in capsys.readouterr().out


def test_the_correction_is_chosen_and_recorded(sweep_copy: Path) -> None:
    """--correction bh adjusts the table's p-values by Benjamini-Hochberg, holm (the default) by
    Holm; each row says which, and an adjusted p-value is never below its raw one."""
    for correction in ("bh", "holm"):
        compare(tiny_sweep(sweep_copy, correction=correction, aggregate_only=True))
        with (sweep_copy / "comparison.csv").open() as table:
            tested = [row for row in csv.DictReader(table) if row["versus"]]
        assert tested
        assert {row["p_adj_method"] for row in tested} == {correction}
        for row in tested:
            if row["welch_p"] not in ("", "nan"):
                assert float(row["welch_p_adj"]) >= float(row["welch_p"])


def test_a_variant_whose_maps_are_mostly_flat_is_noted(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variant whose runs' mean flat_share is 10% or more is noted, printed and atop
    comparison.md; one below is not, nor one whose runs do not report it (evaluated before)."""
    cell = sweep_copy / "MiniGrid-DoorKey-5x5-v0"
    for label, share in (("ppo-none", 0.05), ("ppo-camal-c0.5", 0.75)):
        metrics = json.loads((cell / label / "seed0" / "metrics.json").read_text())
        metrics["variants"]["train"]["saliency"]["gradcam"]["flat_share"]["mean"] = share
        write_json(cell / label / "seed0" / "metrics.json", metrics)
    compare(tiny_sweep(sweep_copy, aggregate_only=True))
    note = (
        "- ppo-camal-c0.5 on MiniGrid-DoorKey-5x5-v0: 75% of the gradcam maps are flat (no pixel "
        "above another): they score chance on alignment and say nothing of where the agent looks "
        "(docs/metrics.md)"
    )
    printed = capsys.readouterr().out
    assert note in printed.splitlines()
    assert "ppo-none on" not in printed
    assert note in (sweep_copy / "comparison.md").read_text().splitlines()
    metrics = json.loads((cell / "ppo-camal-c0.5" / "seed0" / "metrics.json").read_text())
    del metrics["variants"]["train"]["saliency"]["gradcam"]["flat_share"]
    write_json(cell / "ppo-camal-c0.5" / "seed0" / "metrics.json", metrics)
    compare(tiny_sweep(sweep_copy, aggregate_only=True))
    assert "maps are flat" not in (sweep_copy / "comparison.md").read_text()


def test_a_flat_note_says_how_many_runs_it_rests_on(sweep_copy: Path) -> None:
    """The note averages the runs that report flat_share; when some of the variant's runs do not
    (evaluated before it was recorded), it says how many it rests on: (0.8 + 0.6) / 2 = 70%."""
    (camal,) = [r for r in load_results([sweep_copy]) if r.label == "ppo-camal-c0.5"]
    assert camal.metrics is not None

    def with_share(seed: int, share: float | None) -> RunResult:
        metrics = json.loads(json.dumps(camal.metrics))
        gradcam = metrics["variants"]["train"]["saliency"]["gradcam"]
        if share is None:
            del gradcam["flat_share"]
        else:
            gradcam["flat_share"]["mean"] = share
        return dataclasses.replace(camal, seed=seed, metrics=metrics)

    head = "- ppo-camal-c0.5 on MiniGrid-DoorKey-5x5-v0: 70% of the gradcam maps are flat"
    every = flat_notes([with_share(0, 0.8), with_share(1, 0.6)], ["gradcam"])
    assert every.startswith(head)
    assert "runs" not in every
    partial = flat_notes([with_share(0, 0.8), with_share(1, 0.6), with_share(2, None)], ["gradcam"])
    assert partial.startswith(head)
    assert partial.endswith(
        "; from 2 of its 3 runs, the others evaluated before camal-rl recorded flat_share "
        "(evaluate them again to count them)"
    )
    assert flat_notes([with_share(0, 0.05), with_share(1, None)], ["gradcam"]) == ""


@pytest.mark.slow  # a long sweep: `make test-all` runs it
def test_runs_whose_models_are_gone_keep_their_results(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study's committed run folders hold the records, not the model zips: on a fresh clone the
    finished runs still count (tabled, skipped); work that needs a model (evaluating again with
    other settings) trains the run again from step 0, saying so."""
    out = sweep_copy
    compare(tiny_sweep(out, aggregate_only=True))
    before = (out / "comparison.md").read_text()
    for model in out.rglob("model.zip"):
        model.unlink()
    compare(tiny_sweep(out, aggregate_only=True))
    assert "Partial" not in capsys.readouterr().out
    assert (out / "comparison.md").read_text() == before
    compare(tiny_sweep(out))
    assert "2 runs, 0 to train or evaluate" in capsys.readouterr().out
    compare(tiny_sweep(out, episodes=2, aggregate_only=True))
    assert capsys.readouterr().out.splitlines()[1] == (
        "- evaluated with other settings (its model is gone: it trains again from step 0): "
        "MiniGrid-DoorKey-5x5-v0/ppo-none/seed0, MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed0"
    )
    compare(tiny_sweep(out, episodes=2))
    assert "2 runs, 2 to train or evaluate" in capsys.readouterr().out
    run = RunDir(out / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed0")
    assert "holds no saved model" in (run.path.parent / "seed0.log").read_text()
    assert run.is_trained()
    assert run.read_status()["num_timesteps"] == 128
    assert json.loads(run.metrics.read_text())["settings"]["episodes"] == 2
    assert [row["step"] for row in run.read_evaluations()] == []  # eval_freq=0: none, before or after


def test_runs_trained_with_other_settings_are_refused_and_left_out(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rerunning a sweep with another hyperparameter into the same folder would resume or skip the
    old runs and table them as the new sweep's: refused before anything runs; tables leave them out."""
    out = sweep_copy
    files = {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}
    other = tiny_sweep(out, cells=(dataclasses.replace(CELL, hp=(*CELL.hp, "gamma=0.9")),))
    clash = (
        "MiniGrid-DoorKey-5x5-v0/ppo-none/seed0: hp gamma 0.99 -> 0.9; MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5"
    )
    with pytest.raises(InputError, match=r"2 runs in .* were trained with other settings") as refused:
        compare(other)
    assert clash in str(refused.value)
    assert "Pass another --out for the new settings" in str(refused.value)
    assert files == {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()}
    compare(dataclasses.replace(other, aggregate_only=True))
    assert capsys.readouterr().out.splitlines()[:2] == [
        "Partial sweep: 0 of 2 runs done; not in the tables:",
        "- trained with other settings (saved -> sweep: hp gamma 0.99 -> 0.9): "
        "MiniGrid-DoorKey-5x5-v0/ppo-none/seed0, MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed0",
    ]
    # what does not shape training is no clash: the device, logging, checkpoints, the budget
    calm = dataclasses.replace(CELL, eval_freq=64, checkpoint_freq=64, progress_bar=True)
    compare(tiny_sweep(out, cells=(calm,), device="cpu", aggregate_only=True))
    assert "Partial" not in capsys.readouterr().out


def test_trained_differently_names_each_setting(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    saved = dataclasses.replace(CELL, out=run.path).resolved()
    run.path.mkdir()
    run.config.write_text(json.dumps(saved.to_json()))
    assert run.needs(dataclasses.replace(CELL, steps=999, device="cuda")).trained_differently == {}
    changed = run.needs(
        dataclasses.replace(CELL, view="full", reward_scale=0.5, method="energy", hp=("n_steps=32",))
    ).trained_differently
    assert changed == {
        "method": ["camal", "energy"],
        "camal_target": ["decision", "action"],  # each loss's default target (losses.default_target)
        "env_make_kwargs": [{"view": "partial", "tile_size": 8}, {"view": "full", "tile_size": 8}],
        "reward_scale": [1.0, 0.5],
        "hp n_steps": [64, 32],
        "hp batch_size": [64, 256],  # the default, no longer overridden
        "hp n_epochs": [1, 4],
    }
    assert describe_changes({"hp gamma": [0.99, 0.9], "seed": [0, 1]}) == "hp gamma 0.99 -> 0.9, seed 0 -> 1"
    assert RunDir(tmp_path / "not-started").needs(CELL).trained_differently == {}


def test_a_failed_run_is_reported_after_the_others_are_aggregated(
    sweep_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = RunDir(sweep_copy / "MiniGrid-DoorKey-5x5-v0" / "ppo-camal-c0.5" / "seed0")
    broken.metrics.unlink()
    broken.model.write_bytes(b"not a zip")  # trained, but its evaluation fails
    with pytest.raises(InputError, match=r"1 of 2 runs failed \(InputError: .*model.zip"):
        compare(tiny_sweep(sweep_copy))
    assert (
        "Partial sweep: 1 of 2 runs done; not in the tables:\n"
        "- not evaluated: MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed0\n"
    ) in capsys.readouterr().out
    table = (sweep_copy / "comparison.md").read_text()
    assert "| ppo-none | 1 |" in table
    assert "| ppo-camal-c0.5 |" not in table
    # a run that failed before writing its folder (a train error) has only its log to show
    (sweep_copy / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed1.log").write_text("Traceback ...\n")
    compare(tiny_sweep(sweep_copy, seeds=(0, 1), aggregate_only=True))
    printed = capsys.readouterr().out
    assert (
        "- not started (an earlier attempt's output is in its .log): MiniGrid-DoorKey-5x5-v0/ppo-none/seed1\n"
        in printed
    )
    assert "- not started: MiniGrid-DoorKey-5x5-v0/ppo-camal-c0.5/seed1\n" in printed


@pytest.mark.slow  # Ray: `make test-all` runs it
def test_ray_backend_writes_the_same_files(
    pool_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray", reason="install the ray extra: pip install 'camal-rl[ray]'")
    out = tmp_path / "ray"
    compare(tiny_sweep(out, backend="ray", progress_every=0.2))
    progress = [line for line in capsys.readouterr().out.splitlines() if " in progress: " in line]
    assert any("MiniGrid-DoorKey-5x5-v0/ppo-" in line for line in progress), progress  # runs named
    pool_files = sorted(p.relative_to(pool_sweep) for p in pool_sweep.rglob("*") if p.is_file())
    ray_files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    ignore = ("events.out.tfevents",)
    assert [p for p in ray_files if not p.name.startswith(ignore)] == [
        p for p in pool_files if not p.name.startswith(ignore)
    ]
    for metrics in pool_sweep.glob("*/*/seed0/metrics.json"):
        assert comparable(out / metrics.relative_to(pool_sweep)) == comparable(metrics)
    assert (out / "comparison.csv").read_text() == (pool_sweep / "comparison.csv").read_text()


def test_ray_backend_without_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(MissingExtraError, match=r"pip install 'camal-rl\[ray\]'"):
        compare(tiny_sweep(tmp_path, backend="ray"))


def test_variants_and_refusals(tmp_path: Path) -> None:
    assert parse_variant("camal:0.1") == ("camal", 0.1)
    assert parse_variant("none") == ("none", None)
    with pytest.raises(InputError, match="unknown method 'gradcam'"):
        parse_variant("gradcam")
    with pytest.raises(InputError, match="is not a number"):
        parse_variant("camal:big")
    with pytest.raises(InputError, match="--workers and --threads must be >= 1, got 0 and 1"):
        compare(tiny_sweep(tmp_path, workers=0))
    with pytest.raises(InputError, match="--episodes must be >= 1, got 0"):
        compare(tiny_sweep(tmp_path, episodes=0))
    with pytest.raises(InputError, match=r"^--seeds named nothing: the sweep would have no runs"):
        compare(tiny_sweep(tmp_path, seeds=()))
    with pytest.raises(InputError, match=r"^--envs and --methods named nothing"):
        compare(tiny_sweep(tmp_path, cells=(), envs=(), methods=()))
    with pytest.raises(InputError, match="close matches"):
        compare(tiny_sweep(tmp_path, cells=(TrainConfig(env="MiniGrid-DoorKy-5x5-v0"),)))
    with pytest.raises(InputError, match=r"--q-epsilon must be in \(0, 1\]"):  # before any training
        compare(tiny_sweep(tmp_path / "eps", q_epsilon=0.0))
    assert not (tmp_path / "eps").exists()
    for options, message in (
        (
            {"baseline": "nonee"},
            "--baseline 'nonee' names no run of this sweep; its methods and labels: camal, ",
        ),
        ({"pairs": ("none:camal", "camal:rrr")}, "--pairs 'rrr' names no run"),
        ({"pairs": ("camal-none",)}, r"--pairs takes A:B .*, got \['camal-none'\]"),
        ({"metrics": ("return", "/")}, "metric '/' names nothing"),
    ):
        with pytest.raises(InputError, match=message):
            compare(tiny_sweep(tmp_path / "typo", **options))
    assert not (tmp_path / "typo").exists()
    with pytest.raises(InputError, match="unknown saliency method 'gradcamm'; choose one of: gradcam,"):
        compare(tiny_sweep(tmp_path / "typo", saliency=("gradcam", "gradcamm")))  # not after training
    assert not (tmp_path / "typo").exists()
    with pytest.raises(InputError, match="--reward-scale must be a finite number > 0"):
        compare(tiny_sweep(tmp_path / "scale", reward_scale=-1.0))
    assert not (tmp_path / "scale").exists()


@pytest.mark.parametrize("coef", ["nan", "inf", "-inf", "-1"])
def test_a_coefficient_that_is_not_a_finite_number_is_refused_before_any_run(
    tmp_path: Path, coef: str
) -> None:
    """camal:nan trained every none run for minutes, then failed blaming --hp."""
    variant = f"camal:{coef}"
    with pytest.raises(InputError, match=rf"the coefficient in '{variant}' must be a finite number >= 0"):
        compare(tiny_sweep(tmp_path / "sweep", methods=("none", variant)))
    assert not (tmp_path / "sweep").exists()


def test_reward_scale_reaches_every_run() -> None:
    cells = (TrainConfig(env="VizdoomBasic-v1"), TrainConfig(reward_scale=0.5))
    default = SweepConfig(cells=cells, methods=("none",), seeds=(0,))
    assert [run.resolved().reward_scale for run in default.run_configs()] == [0.01, 0.5]  # the cells'
    override = with_options(default, reward_scale=0.1)
    assert [run.reward_scale for run in override.run_configs()] == [0.1, 0.1]


def test_run_order_interleaves_the_variants_seed_by_seed() -> None:
    cells = (TrainConfig(env="MiniGrid-DoorKey-5x5-v0"), TrainConfig(env="MiniGrid-Empty-5x5-v0"))
    sweep = SweepConfig(cells=cells, methods=("none", "camal"), seeds=(3, 7), out=Path("sweep"))

    def order(runs: list[TrainConfig]) -> list[str]:
        return [f"{run.env[9:13]} {run.method} {run.seed}" for run in runs]

    assert order(sweep.run_configs()) == [
        "Door none 3", "Door none 7", "Door camal 3", "Door camal 7",
        "Empt none 3", "Empt none 7", "Empt camal 3", "Empt camal 7",
    ]  # fmt: skip
    by_seed = dataclasses.replace(sweep, run_order="seeds").run_configs()
    assert order(by_seed) == [
        "Door none 3", "Door camal 3", "Door none 7", "Door camal 7",
        "Empt none 3", "Empt camal 3", "Empt none 7", "Empt camal 7",
    ]  # fmt: skip
    assert by_seed[1].run_dir == Path("sweep/MiniGrid-DoorKey-5x5-v0/ppo-camal/seed3")  # same folders
    assert sorted(run.run_dir for run in by_seed) == sorted(run.run_dir for run in sweep.run_configs())


def test_ctrl_c_stops_the_run_and_cancels_the_worker_s_later_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import camal_rl.sweep.executors as executors
    import camal_rl.train as train_module

    monkeypatch.setattr(executors, "_interrupted", False)  # restored after the test
    calls: list[Path] = []

    def interrupted_train(cfg: TrainConfig, argv: Any = None) -> None:
        calls.append(cfg.run_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted_train)
    sweep = tiny_sweep(tmp_path / "sweep", methods=("none", "camal"))
    first, second = sweep.run_configs()
    stopped = executors.run_one(first, sweep.evaluate_config(first.run_dir))
    assert (stopped.state, stopped.run) == ("stopped", str(first.run_dir))
    cancelled = executors.run_one(second, sweep.evaluate_config(second.run_dir))
    assert (cancelled.state, cancelled.seconds) == ("cancelled", 0.0)
    assert calls == [first.run_dir]  # the second run never started
    # a Ray worker cancels nothing itself: after a stopped run it starts the next one it is given
    again = executors._ray_task(second, sweep.evaluate_config(second.run_dir), 1)
    assert again.state == "stopped"
    assert calls == [first.run_dir, second.run_dir]


def stop_sweep(out: Path, options: list[str], stop: str, training: int) -> str:
    """Start `camal-rl compare` on tiny PPO runs in OUT, wait until `training` runs are training,
    then stop it as a user would: Ctrl-C in a terminal signals the whole process group (the sweep
    and its workers); `kill PID` sends SIGTERM to the sweep alone, which passes it on to its
    workers. Checks the exit status and the resume hint; returns the output."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cmd = [
        sys.executable, "-m", "camal_rl", "compare", "--out", str(out), *options, "--episodes", "1",
        "--steps", "100000", "--hp", "n_steps=64", "batch_size=64", "n_epochs=1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # as from a terminal: a shell runs background jobs with SIGINT ignored, and a child
        # inherits that (pytest started with `&` would see Ctrl-C ignored by the sweep)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.rglob("progress.csv"))) < training:
            assert proc.poll() is None, f"the sweep ended before {training} runs started"
            assert time.monotonic() < deadline, f"the sweep did not start {training} runs in 120 s"
            time.sleep(0.5)
        time.sleep(2)
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + (signal.SIGINT if stop == "ctrl-c" else signal.SIGTERM), output
    assert "run the same command again to resume the sweep" in output
    return output


def run_states(out: Path) -> dict[str, str]:
    """label/seed -> the state in each run's status.json."""
    return {
        p.parent.parent.name + "/" + p.parent.name: json.loads(p.read_text())["state"]
        for p in out.rglob("status.json")
    }


@pytest.mark.slow  # signals: `make test-all` runs it
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
@pytest.mark.parametrize("backend", ["process", "ray"])
def test_stopping_a_sweep_saves_and_starts_nothing_more(tmp_path: Path, backend: str, stop: str) -> None:
    """On Ray too: the runs saved nothing (Ray's driver ended them on Ctrl-C, and its SIGTERM
    handler ended the sweep at once) while the sweep said they had."""
    if backend == "ray":
        pytest.importorskip("ray", reason="install the ray extra: pip install 'camal-rl[ray]'")
    out = tmp_path / "sweep"
    options = ["--methods", "none", "camal", "--seeds", "0", "1", "--workers", "2", "--backend", backend]
    output = stop_sweep(out, options, stop, training=2)
    assert "Traceback" not in output
    states = run_states(out)
    assert sorted(states.values()) == ["interrupted", "interrupted"], states  # the two others never started
    for path in out.rglob("status.json"):
        assert (path.parent / "model.zip").exists()


@pytest.mark.slow  # signals: `make test-all` runs it
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_stopping_a_sweep_with_an_idle_worker_is_quiet(tmp_path: Path, stop: str) -> None:
    """A worker whose run is done waits in the pool's queue: the signal must not kill it there (it
    printed a traceback per idle worker and broke the pool; seen with 12 workers on a GPU)."""
    out = tmp_path / "sweep"
    done = out / "MiniGrid-DoorKey-5x5-v0" / "ppo-none" / "seed0"  # trained and evaluated: skipped
    done.mkdir(parents=True)
    (done / "status.json").write_text(json.dumps({"state": "complete"}))
    (done / "model.zip").write_bytes(b"")
    (done / "metrics.json").write_text("{}")
    options = ["--methods", "none", "camal", "--seeds", "0", "--workers", "2"]
    output = stop_sweep(out, options, stop, training=1)
    assert "skipped" in output
    assert "Traceback" not in output, output
    assert run_states(out) == {"ppo-none/seed0": "complete", "ppo-camal/seed0": "interrupted"}
    assert (out / "MiniGrid-DoorKey-5x5-v0" / "ppo-camal" / "seed0" / "model.zip").stat().st_size > 0


def test_save_replay_buffer_reaches_every_run() -> None:
    cells = (TrainConfig(algo="dqn"), TrainConfig(algo="dqn", save_replay_buffer=True))
    default = SweepConfig(cells=cells, methods=("none",), seeds=(0,))
    assert [run.save_replay_buffer for run in default.run_configs()] == [False, True]  # the cells'
    asked = with_options(default, save_replay_buffer=True)
    assert [run.save_replay_buffer for run in asked.run_configs()] == [True, True]


def test_table_metrics_follow_the_saliency_methods_scored() -> None:
    assert SweepConfig().table_metrics() == (
        "return",
        "gradcam/epg",
        "gradcam/iou",
        "gradcam/pointing_game",
        "gradcam/deletion_auc",
        "gradcam/insertion_auc",
        "gradcam/occlusion_kl_log_ratio",
        "perturbation/epg",
        "perturbation/deletion_auc",
        "behaviour/behaviour_log_ratio",
    )
    asked = with_options(SweepConfig(), saliency=("gradcam", "integrated_gradients", "input_x_gradient"))
    assert asked.table_metrics()[7:11] == (
        "integrated_gradients/epg",
        "integrated_gradients/deletion_auc",
        "input_x_gradient/epg",
        "input_x_gradient/deletion_auc",
    )
    assert with_options(SweepConfig(), saliency=("gradcam",), metrics=("return",)).table_metrics() == (
        "return",
    )


def test_aggregation_tables_and_plots_the_saliency_methods_scored(tmp_path: Path) -> None:
    from camal_rl.sweep import aggregate_sweep
    from tests.synthetic_runs import metrics_report, write_run

    for method, epg in (("none", 0.3), ("camal", 0.2)):
        for seed in (0, 1):
            scores = {"epg": [epg + seed / 100] * 2}
            report = metrics_report([1.0, 1.0], saliency={"gradcam": scores, "integrated_gradients": scores})
            write_run(tmp_path, method=method, seed=seed, metrics=report)
    cfg = with_options(SweepConfig(out=tmp_path), saliency=("gradcam", "integrated_gradients"))
    written = aggregate_sweep(cfg)
    assert "bars_integrated_gradients_epg" in written
    header = (tmp_path / "comparison.md").read_text().splitlines()[4]
    assert "| gradcam/epg ↑ | integrated_gradients/epg ↑ |" in header
    # scored without it, the table and the plots leave it out
    assert "bars_integrated_gradients_epg" not in aggregate_sweep(with_options(cfg, saliency=("gradcam",)))


def test_pool_workers_start_with_openmp_at_the_sweeps_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned workers see OMP_NUM_THREADS=--threads (set before they load torch's OpenMP), and a
    value the user set is kept; the sweep's own environment is left as it was."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from camal_rl.sweep.executors import _openmp_threads

    def worker_value(threads: int) -> str | None:
        with _openmp_threads(threads), ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            return pool.submit(os.getenv, "OMP_NUM_THREADS").result()

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert worker_value(3) == "3"
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert worker_value(1) == "2"
    assert os.environ["OMP_NUM_THREADS"] == "2"
