"""Reading run directories into records and per-seed metric values (camal_rl.statistics.runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camal_rl.errors import InputError
from camal_rl.statistics import (
    available_metrics,
    check_metrics,
    find_runs,
    group_results,
    load_results,
    metric_name,
    metric_values,
    parse_metric,
    read_monitor,
    state_counts,
)
from tests.synthetic_runs import metrics_report, write_run

EVALS = [
    {"step": 0, "episodes": 2, "return_mean": 0.0, "epg": 0.25},
    {"step": 500, "episodes": 2, "return_mean": 0.5, "epg": math.nan},
]


def test_load_results_reads_every_run_file(tmp_path):
    report = metrics_report(
        [0.0, 1.0, 1.0, 0.5],
        saliency={"gradcam": {"epg": [0.2, 0.4], "deletion_auc": [0.3, 0.5]}},
        behaviour={"behaviour_ratio": [2.0, 4.0]},
        distractor_returns=[0.5, 0.25],
    )
    camal = write_run(tmp_path / "sweep", method="camal", seed=1, evaluations=EVALS, metrics=report)
    write_run(tmp_path / "sweep", method="none", seed=0, state="running", steps=300)
    write_run(tmp_path / "sweep", method="camal", coef=0.1, seed=0, state=None)
    (tmp_path / "sweep" / "notes").mkdir()  # not a run: searched, nothing found

    results = load_results([tmp_path])

    assert [(r.label, r.seed) for r in results] == [("ppo-camal", 1), ("ppo-camal-c0.1", 0), ("ppo-none", 0)]
    first = results[0]
    assert first.path == camal
    assert (first.env, first.algo, first.method, first.coef) == (
        "MiniGrid-DoorKey-5x5-v0",
        "ppo",
        "camal",
        1.0,
    )
    assert (first.state, first.num_timesteps, first.complete) == ("complete", 1000, True)
    assert [row["step"] for row in first.evaluations] == [0.0, 500.0]
    assert math.isnan(first.evaluations[1]["epg"])
    assert first.metrics is not None
    assert first.metrics["variants"]["train"]["success_rate"] == 0.75
    assert results[1].coef == 0.1
    assert results[1].state == "missing"
    assert results[1].metrics is None
    assert results[2].coef == 0.0
    assert (results[2].state, results[2].num_timesteps) == ("running", 300)
    assert state_counts(results) == {"complete": 1, "missing": 1, "running": 1}


def test_run_directory_given_directly_and_complete_only(tmp_path):
    done = write_run(tmp_path, method="none", seed=0)
    write_run(tmp_path, method="none", seed=1, state="interrupted")
    assert find_runs([done, done]) == [done]
    assert [r.seed for r in load_results([tmp_path], complete_only=True)] == [0]
    assert [r.seed for r in load_results([tmp_path])] == [0, 1]


def test_no_runs_says_where_it_looked(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no run directories.*empty"):
        load_results([tmp_path / "empty"])
    with pytest.raises(InputError, match="does not exist"):
        load_results([tmp_path / "missing"])
    write_run(tmp_path / "r", seed=0, state="running")
    with pytest.raises(InputError, match="none of the 1 runs found is complete"):
        load_results([tmp_path / "r"], complete_only=True)


def test_unreadable_metrics_json_says_what_to_do(tmp_path):
    run = write_run(tmp_path, seed=0)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match="rerun camal-rl evaluate"):
        load_results([tmp_path])


def test_metric_names_and_paths():
    assert parse_metric("return") == ("train", "return")
    assert parse_metric("gradcam/epg") == ("train", "gradcam", "epg")
    assert parse_metric(("distractors", "return")) == ("distractors", "return")
    assert metric_name(("train", "behaviour", "behaviour_ratio")) == "behaviour/behaviour_ratio"
    assert metric_name("distractors/return") == "distractors/return"
    with pytest.raises(InputError, match="names nothing"):
        parse_metric("train")


def test_metric_values_per_seed(tmp_path):
    for seed, (returns, epg) in enumerate([([0.0, 1.0, 1.0, 0.5], [0.2, 0.4]), ([1.0, 1.0], [0.9, 0.7])]):
        report = metrics_report(
            returns,
            saliency={"gradcam": {"epg": epg}},
            behaviour={"behaviour_ratio": [2.0, 4.0 + seed]},
            distractor_returns=[0.5, 0.25] if seed == 0 else None,
        )
        write_run(tmp_path, seed=seed, metrics=report)
    write_run(tmp_path, seed=2)  # not evaluated
    results = load_results([tmp_path])

    # per seed: mean over episodes (0 + 1 + 1 + 0.5) / 4 = 0.625, (1 + 1) / 2 = 1.0; seed 2 has none
    np.testing.assert_allclose(metric_values(results, ("train", "return")), [0.625, 1.0, np.nan])
    np.testing.assert_allclose(metric_values(results, ("train", "gradcam", "epg")), [0.3, 0.8, np.nan])
    np.testing.assert_allclose(metric_values(results, "behaviour/behaviour_ratio"), [3.0, 3.5, np.nan])
    np.testing.assert_allclose(metric_values(results, "distractors/return"), [0.375, np.nan, np.nan])
    np.testing.assert_allclose(metric_values(results, "success_rate"), [0.75, 1.0, np.nan])
    assert np.isnan(metric_values(results, "gradcam/nonexistent")).all()
    assert "gradcam/epg" in available_metrics(results)
    assert "distractors/behaviour/behaviour_ratio" in available_metrics(results)
    check_metrics(results, ["return", "gradcam/epg"])
    with pytest.raises(InputError, match=r"'gradcam/epgg' is in no metrics.json.*available: return"):
        check_metrics(results, ["gradcam/epgg"])


def test_duplicate_seeds_are_refused(tmp_path):
    write_run(tmp_path / "a", seed=0)
    write_run(tmp_path / "b", seed=0)
    with pytest.raises(InputError, match="have seed 0"):
        group_results(load_results([tmp_path]))


def test_read_monitor_orders_episodes_by_env_step(tmp_path):
    # env 0 ends episodes after 5 and 5 + 3 of its own steps, env 1 after 4 and 4 + 10; in lockstep
    # with 2 envs the run has taken twice that: 10, 16 and 8, 28
    run = write_run(tmp_path, monitor=[[(1.0, 5), (2.0, 3)], [(0.5, 4), (0.0, 10)]])
    episodes = read_monitor(run)
    np.testing.assert_array_equal(episodes.steps, [8, 10, 16, 28])
    np.testing.assert_array_equal(episodes.returns, [0.5, 1.0, 2.0, 0.0])
    np.testing.assert_array_equal(episodes.lengths, [4, 5, 3, 10])
    # a crash cut env 1's file in the middle of a line: its episodes end before it (as rewind
    # reads it); before, plot and compare refused the run ("cannot read ... fix or delete it")
    with (run / "monitor" / "1.monitor.csv").open("a") as f:
        f.write("3.0,1")
    np.testing.assert_array_equal(read_monitor(run).steps, [8, 10, 16, 28])
    with (run / "monitor" / "1.monitor.csv").open("a") as f:
        f.write("x\n4.0,2,9.0\n")  # the cut line ends them even when more follow
    np.testing.assert_array_equal(read_monitor(run).returns, [0.5, 1.0, 2.0, 0.0])
    (run / "monitor" / "0.monitor.csv").write_text('#{"t_start": 0}\nreturn,length\n1.0,5\n')
    with pytest.raises(InputError, match="no 'r' and 'l' columns"):
        read_monitor(run)
    (run / "monitor" / "0.monitor.csv").write_text("r,l,t\n")
    with pytest.raises(InputError, match=r"missing the .* header line"):
        read_monitor(run)


def test_variants_are_ordered_by_method_then_coefficient(tmp_path):
    for method, coef in (
        ("camal", 10.0),
        ("energy", None),
        ("camal", 3.0),
        ("none", None),
        ("camal", None),
        ("camal", 0.1),
    ):
        write_run(tmp_path, method=method, coef=coef)
    # by label alone: ppo-camal, ppo-camal-c0.1, ppo-camal-c10, ppo-camal-c3
    assert [key[2] for key in group_results(load_results([tmp_path]))] == [
        "ppo-none",
        "ppo-camal-c0.1",
        "ppo-camal",
        "ppo-camal-c3",
        "ppo-camal-c10",
        "ppo-energy",
    ]
