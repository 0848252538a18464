"""Learning curves, metric bars and ``camal-rl plot`` on synthetic run directories
(camal_rl.curves, camal_rl.plots)."""

from __future__ import annotations

import numpy as np
import pytest

from camal_rl.cli import main
from camal_rl.curves import curve_data, curve_file, plot_learning_curves
from camal_rl.errors import InputError
from camal_rl.figures import step_count
from camal_rl.plots import PlotConfig, bar_file, plot, plot_metric_bars, write_plots
from camal_rl.statistics import comparison_table, load_results
from tests.synthetic_runs import metrics_report, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def evaluations(steps, returns, epg=None):
    epg = epg if epg is not None else [0.5] * len(steps)
    return [
        {"step": s, "episodes": 2, "return_mean": r, "epg": e}
        for s, r, e in zip(steps, returns, epg, strict=True)
    ]


def write_curves(root):
    """camal: 2 seeds on steps 0, 500, 1000; none: seeds on different steps (0, 400, 800 and 0,
    500, 1000); every run evaluated (metrics.json)."""
    report = metrics_report([1.0, 0.5], saliency={"gradcam": {"epg": [0.6, 0.8], "deletion_auc": [0.3, 0.4]}})
    write_run(
        root, method="camal", seed=0, evaluations=evaluations([0, 500, 1000], [0.0, 0.5, 1.0]), metrics=report
    )
    write_run(
        root, method="camal", seed=1, evaluations=evaluations([0, 500, 1000], [0.2, 0.3, 0.6]), metrics=report
    )
    write_run(
        root,
        method="none",
        seed=0,
        evaluations=evaluations([0, 400, 800], [0.0, 0.4, 0.8], epg=[0.1, float("nan"), 0.3]),
        metrics=report,
    )
    write_run(
        root, method="none", seed=1, evaluations=evaluations([0, 500, 1000], [0.1, 0.6, 0.6]), metrics=report
    )


def test_curve_data_means_and_bands(tmp_path):
    write_curves(tmp_path)
    none, camal = curve_data(load_results([tmp_path]), "return_mean")

    assert (camal.label, camal.source, camal.seeds) == ("ppo-camal", "evaluations", (0, 1))
    np.testing.assert_array_equal(camal.x, [0, 500, 1000])
    np.testing.assert_allclose(camal.mean, [0.1, 0.4, 0.8])
    # two seeds: resampled means are v0, (v0 + v1) / 2 or v1 (each extreme with probability 1/4),
    # so the 2.5% and 97.5% quantiles are the two seeds' values
    np.testing.assert_allclose(camal.ci_low, [0.0, 0.3, 0.6])
    np.testing.assert_allclose(camal.ci_high, [0.2, 0.5, 1.0])

    # none: seeds on different steps; the shared grid is the union of steps both cover, [0, 800],
    # seed 1 interpolated: 0.1 + (0.6 - 0.1) * 400 / 500 = 0.5 at 400, 0.6 at 800;
    # seed 0 at 500: 0.4 + (0.8 - 0.4) * 100 / 400 = 0.5
    np.testing.assert_array_equal(none.x, [0, 400, 500, 800])
    np.testing.assert_allclose(none.per_seed, [[0.0, 0.4, 0.5, 0.8], [0.1, 0.5, 0.6, 0.6]])
    np.testing.assert_allclose(none.mean, [0.05, 0.45, 0.55, 0.7])
    assert none.seed_ends == (800.0, 1000.0)

    # EPG: seed 0's nan at step 400 is dropped, so 400 leaves the grid; at 500 seed 0 is
    # interpolated between 0.1 (step 0) and 0.3 (step 800): 0.1 + 0.2 * 500 / 800 = 0.225
    none_epg = curve_data(load_results([tmp_path]), "epg")[0]
    np.testing.assert_array_equal(none_epg.x, [0, 500, 800])
    np.testing.assert_allclose(none_epg.per_seed, [[0.1, 0.225, 0.3], [0.5, 0.5, 0.5]])


def test_monitor_fallback(tmp_path):
    # one env: episodes end at steps 10, 20, 30; a trailing mean over 2 episodes is 1, 2, 4
    write_run(tmp_path, seed=0, monitor=[[(1.0, 10), (3.0, 10), (5.0, 10)]])
    write_run(tmp_path, seed=1, monitor=[[(0.0, 15), (1.0, 15)]])
    (curve,) = curve_data(load_results([tmp_path]), "return_mean", window=2, points=3)
    assert curve.source == "monitor"
    # common range [max(10, 15), min(30, 30)] = [15, 30] in 3 points; seed 0 at 15 is 1.5,
    # at 22.5 is 2 + (4 - 2) * 2.5 / 10 = 2.5; seed 1 (values 0, 0.5 at 15, 30) at 22.5 is 0.25
    np.testing.assert_allclose(curve.x, [15, 22.5, 30])
    np.testing.assert_allclose(curve.per_seed, [[1.5, 2.5, 4.0], [0.0, 0.25, 0.5]])
    assert curve_data(load_results([tmp_path]), "epg") == []  # EPG has no monitor stand-in
    with pytest.raises(InputError, match="monitor CSVs hold training episodes"):
        curve_data(load_results([tmp_path]), "epg", source="monitor")
    with pytest.raises(InputError, match=r"not a column of evaluations\.csv"):
        curve_data(load_results([tmp_path]), "reward")


def test_learning_curve_and_bar_pngs(tmp_path):
    write_curves(tmp_path / "runs")
    results = load_results([tmp_path / "runs"])
    path = plot_learning_curves(results, tmp_path / "out" / "curves.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000

    rows = comparison_table(results, ["return", "gradcam/epg"])
    bars = plot_metric_bars(rows, "gradcam/epg", tmp_path / "out" / "bars.png")
    assert bars.read_bytes().startswith(PNG_SIGNATURE)
    assert bars.stat().st_size > 5_000
    with pytest.raises(InputError, match="no values of gradcam/iou"):
        plot_metric_bars(rows, "gradcam/iou", tmp_path / "out" / "none.png")
    assert curve_file("return_mean") == "learning_curves_return.png"
    assert bar_file("perturbation/sufficiency@10") == "bars_perturbation_sufficiency_at_10.png"
    assert bar_file("captum:DeepLift/epg") == "bars_captum_DeepLift_epg.png"  # no ':' in file names


@pytest.mark.parametrize(
    ("steps", "label"),
    [(0, "0"), (500, "500"), (2_500, "2.5k"), (25_000, "25k"), (125_000, "125k"), (1_000_000, "1M"),
     (1_250_000, "1.25M"), (12_345_678, "12.3M")],
)  # fmt: skip
def test_step_ticks_are_short(steps, label):
    """The learning curves' step axis: '100000125000150000' ran together at 25k intervals."""
    assert step_count(steps) == label


def test_a_curve_cut_to_its_shortest_seed_is_noted_once(tmp_path):
    """Both curve files draw ppo-none up to step 800 (seed 0's end): one note, not one per file."""
    write_curves(tmp_path / "runs")
    logged: list[str] = []
    written = write_plots(
        load_results([tmp_path / "runs"]),
        tmp_path / "out",
        curves=("return_mean", "epg"),
        metrics=[],
        profiles=[],
        log=logged.append,
    )
    assert [p.name for p in written] == ["learning_curves_return.png", "learning_curves_epg.png"]
    env = load_results([tmp_path / "runs"])[0].env
    assert logged == [
        f"note: ppo-none on {env} is drawn up to step 800, where its shortest seed ends (longest: 1000)"
    ]


def test_plot_command(tmp_path, capsys):
    write_curves(tmp_path / "runs")
    out = tmp_path / "plots"
    assert (
        main(["plot", str(tmp_path / "runs"), "--out", str(out), "--metrics", "return", "gradcam/epg"]) == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "bars_gradcam_epg.png",
        "bars_return.png",
        "learning_curves_epg.png",
        "learning_curves_return.png",
        "profile_gradcam_epg.png",
        "profile_return.png",
    ]
    printed = capsys.readouterr().out
    assert "4 runs (4 complete) of 2 agent variants" in printed
    assert f"wrote {out / 'learning_curves_return.png'}" in printed
    assert "ppo-none on MiniGrid-DoorKey-5x5-v0 is drawn up to step 800" in printed


def test_plot_defaults_to_common_parent(tmp_path):
    write_curves(tmp_path / "runs")
    written = plot(PlotConfig(runs=(tmp_path / "runs",)))
    # default bars: return and the Grad-CAM metrics these metrics.json hold; default profiles:
    # return and Grad-CAM EPG
    assert sorted(p.name for p in written) == [
        "bars_gradcam_deletion_auc.png",
        "bars_gradcam_epg.png",
        "bars_return.png",
        "learning_curves_epg.png",
        "learning_curves_return.png",
        "profile_gradcam_epg.png",
        "profile_return.png",
    ]
    assert all(p.parent == (tmp_path / "runs" / "plots").resolve() for p in written)


def test_plot_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty")]) == 2
    assert f"no run directories (folders with a config.json) at or under {tmp_path / 'empty'}" in (
        capsys.readouterr().err
    )
    write_curves(tmp_path / "runs")
    assert main(["plot", str(tmp_path / "runs"), "--metrics", "gradcam/epgg"]) == 2
    assert "available: return" in capsys.readouterr().err
    write_run(tmp_path / "bare", seed=0)  # no evaluations, monitor or metrics.json
    with pytest.raises(InputError, match="nothing to plot"):
        plot(PlotConfig(runs=(tmp_path / "bare",), out=tmp_path / "bare-plots"))
