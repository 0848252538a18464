"""experiments/camal_loss/retrained.py: a retrained run's periodic evaluations against the study
run's, on synthetic run directories whose rows and resumes are chosen by the test."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from camal_rl.errors import InputError
from camal_rl.rundir import RunDir
from experiments.camal_loss.retrained import (
    compare_metrics,
    compare_rows,
    main,
    numbers,
    resumes,
    same_row,
    table,
)
from tests.synthetic_runs import write_run


def evaluation(step: int, ret: float, epg: float = 0.5, wall: float = 1.0) -> dict[str, float]:
    return {
        "step": step,
        "episodes": 10,
        "return_mean": ret,
        "return_std": 0.0,
        "epg": epg,
        "wall_time_s": wall,
    }


def test_rows_are_equal_in_every_shared_column_but_the_wall_time() -> None:
    a = {"step": 0.0, "return_mean": 0.5, "epg": math.nan, "wall_time_s": 1.0, "flat_share": 0.2}
    assert same_row(a, {"step": 0.0, "return_mean": 0.5, "epg": math.nan, "wall_time_s": 9.0})
    assert not same_row(a, {"step": 0.0, "return_mean": 0.5, "epg": 0.1})
    assert not same_row(a, {"step": 0.0, "return_mean": 0.5 + 1e-12, "epg": math.nan})


def test_compare_rows_counts_equal_rows_and_the_leading_equal_run() -> None:
    ours = [evaluation(0, 0.0), evaluation(10, 0.5), evaluation(20, 0.9), evaluation(30, 0.9)]
    theirs = [evaluation(0, 0.0, wall=5), evaluation(10, 0.5), evaluation(20, 0.8), evaluation(30, 0.9)]
    # rows 0, 10 and 30 equal; the leading run of equal rows ends at 10
    assert compare_rows(ours, theirs) == (3, 4, 10)
    assert compare_rows(ours, theirs[1:]) == (2, 4, -1)  # no row at step 0 in theirs
    assert compare_rows([], theirs) == (0, 0, -1)


def test_metrics_numbers_are_compared_by_path_leaving_out_the_time_taken() -> None:
    ours = {"evaluation_seconds": 12.0, "seed": 0, "ok": True, "variants": {"train": {"return": [0.5, 2.0]}}}
    theirs = {
        "evaluation_seconds": 30.0,
        "seed": 0,
        "variants": {"train": {"return": [0.5, 2.5]}},
        "new": 1.0,
    }
    assert numbers(ours) == {"seed": 0.0, "variants/train/return/0": 0.5, "variants/train/return/1": 2.0}
    # seed and return/0 equal; return/1 differs by 0.5 of the larger 2.5; "new" is not in both
    assert compare_metrics(ours, theirs) == (2, 3, pytest.approx(0.2))
    assert compare_metrics(ours, ours) == (3, 3, 0.0)
    assert compare_metrics({"x": 1.0}, {"x": -1.0}) == (0, 1, 2.0)  # a sign flip counts 2


def test_resumes_reads_the_sweep_log_else_the_later_progress_files(tmp_path: Path) -> None:
    run = write_run(tmp_path, method="none")
    assert resumes(run) == []
    (run / "progress.csv").write_text("time/total_timesteps,train/loss\n100,0.5\n")
    (run / "progress.1.csv").write_text("time/total_timesteps,train/loss\n,0.1\n2048,0.4\n")
    assert resumes(run) == [2048]  # the first row that logs the step
    RunDir(run).sweep_log.write_text(
        "training\n"
        "resuming /x/seed0 from model.zip at 1024 steps\n"
        "resuming /x/seed0 from step_3.zip at 3000 steps\n"
    )
    assert resumes(run) == [1024, 3000]


def test_table_pairs_runs_by_place_and_keeps_the_reused_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, study = tmp_path / "ours", tmp_path / "study"
    rows = [evaluation(0, 0.0), evaluation(10_000, 0.95), evaluation(20_000, 0.97)]
    for method in ("none", "camal"):
        write_run(ours, method=method, evaluations=rows)
    write_run(ours, method="energy", evaluations=rows, metrics={"return": 0.5, "epg": 0.3})
    write_run(ours, method="none", seed=1, evaluations=rows)  # no counterpart in the study: left out
    write_run(study, method="none", evaluations=[evaluation(0, 0.0, wall=3), *rows[1:]])
    write_run(study, method="camal", evaluations=rows)  # not a reused method
    energy = write_run(
        study,
        method="energy",
        evaluations=[rows[0], evaluation(10_000, 0.5), evaluation(20_000, 0.97)],
        metrics={"return": 0.5, "epg": 0.6},  # epg: 0.3 off, 0.5 of 0.6
    )
    RunDir(energy).sweep_log.write_text("resuming x from model.zip at 5000 steps\n")

    lines = table(ours, study, ["none", "energy"])
    assert lines[2:] == [
        "| `ppo-none` seed 0 | 3 of 3 | 20k | 10k / 10k | 0 of 0 (0) | never | never |",
        "| `ppo-energy` seed 0 | 2 of 3 | 0k | 10k / 20k | 1 of 2 (0.5) | never | 5,000 |",
    ]
    main([str(ours), str(study), "--methods", "camal"])
    assert "| `ppo-camal` seed 0 | 3 of 3 | 20k |" in capsys.readouterr().out


def test_no_counterpart_is_a_clear_error(tmp_path: Path) -> None:
    write_run(tmp_path / "ours", method="none")
    write_run(tmp_path / "study", method="none", seed=3)
    with pytest.raises(InputError, match="pass the confirmatory sweep folder first"):
        table(tmp_path / "ours", tmp_path / "study", ["none"])
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "ours"), str(tmp_path / "study")])
    assert exit_info.value.code == 2
