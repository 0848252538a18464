"""Performance profiles (camal_rl.profiles): shares above thresholds by hand, bands, PNGs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camal_rl.errors import InputError
from camal_rl.plots import write_plots
from camal_rl.profiles import draw_profiles, profile_data, profile_file, share_above
from camal_rl.statistics import load_results
from tests.synthetic_runs import metrics_report, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_share_above_by_hand() -> None:
    values = [0.0, 0.0, 1.0, 1.0, 0.5, math.nan]  # nan dropped: 5 seeds
    # strictly above: tau -0.1 -> all 5; 0 -> 1, 1, 0.5; 0.5 -> 1, 1; 0.99 -> 1, 1; 1 -> none
    np.testing.assert_array_equal(share_above(values, [-0.1, 0.0, 0.5, 0.99, 1.0]), [1.0, 0.6, 0.4, 0.4, 0.0])
    assert np.isnan(share_above([math.nan], [0.0])).all()


def write_lava(root) -> None:
    """All-or-nothing outcomes: camal solves on 2 of 5 seeds (return 0.9), none on 1 of 5."""
    for seed in range(5):
        camal = 0.9 if seed < 2 else 0.0
        none = 0.9 if seed < 1 else 0.0
        write_run(root, method="camal", seed=seed, metrics=metrics_report([camal, camal]))
        write_run(root, method="none", seed=seed, metrics=metrics_report([none, none]))


def test_profile_data_of_all_or_nothing_seeds(tmp_path) -> None:
    write_lava(tmp_path)
    none, camal = profile_data(load_results([tmp_path]), "return", points=12)
    assert (none.label, camal.label) == ("ppo-none", "ppo-camal")  # the baseline first
    # thresholds over the env's values, 0 to 0.9, and 5% of that (0.045) each way, 0.09 apart:
    # -0.045, 0.045, 0.135, ..., 0.855, 0.945
    np.testing.assert_allclose(camal.taus, np.linspace(-0.045, 0.945, 12))
    np.testing.assert_array_equal(none.taus, camal.taus)
    # below 0 every seed is above; between 0 and 0.9 the seeds that solved; above 0.9 none
    np.testing.assert_array_equal(camal.share, [1.0] + [0.4] * 10 + [0.0])
    np.testing.assert_array_equal(none.share, [1.0] + [0.2] * 10 + [0.0])
    # the band: a resample of the 5 seeds draws Binomial(5, 0.4) solvers: P(0) = 0.078 > 0.025, so
    # the 2.5% quantile is 0; P(<= 3) = 0.913 < 0.975 <= P(<= 4) = 0.990, so the 97.5% one is 4 / 5
    assert (camal.ci_low[1], camal.ci_high[1]) == pytest.approx((0.0, 0.8))
    assert (camal.ci_low <= camal.share).all()
    assert (camal.ci_high >= camal.share).all()
    # every resample has all its seeds above -0.045 and none above 0.945
    assert (camal.ci_low[0], camal.ci_high[0], camal.ci_low[-1], camal.ci_high[-1]) == (1.0, 1.0, 0.0, 0.0)
    assert camal.values.size == 5


def test_one_seed_has_no_band_and_equal_values_widen_the_range(tmp_path) -> None:
    write_run(tmp_path, method="camal", seed=0, metrics=metrics_report([0.5, 0.5]))
    (single,) = profile_data(load_results([tmp_path]), "return", points=3)
    np.testing.assert_allclose(single.taus, [-0.05, 0.5, 1.05])  # 0.5 widened by 0.5, then 5%
    np.testing.assert_array_equal(single.share, [1.0, 0.0, 0.0])
    assert np.isnan(single.ci_low).all()
    with pytest.raises(InputError, match="points must be >= 2"):
        profile_data(load_results([tmp_path]), "return", points=1)


def test_profile_pngs_and_write_plots(tmp_path) -> None:
    write_lava(tmp_path / "runs")
    results = load_results([tmp_path / "runs"])
    path = draw_profiles(profile_data(results, "return"), tmp_path / "out" / "profile.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert path.stat().st_size > 5_000
    with pytest.raises(InputError, match="no performance-profile data"):
        draw_profiles([], tmp_path / "out" / "none.png")
    assert profile_file("gradcam/epg") == "profile_gradcam_epg.png"
    assert profile_file("captum:Occlusion/epg") == "profile_captum_Occlusion_epg.png"
    # write_plots draws the default profiles present (return; these runs have no gradcam/epg)
    written = write_plots(results, tmp_path / "plots", curves=(), metrics=[], log=lambda _: None)
    assert [p.name for p in written] == ["profile_return.png"]
    asked = write_plots(results, tmp_path / "plots", curves=(), metrics=[], profiles=[], log=lambda _: None)
    assert asked == []
    with pytest.raises(InputError, match="gradcam/epg"):
        write_plots(results, tmp_path / "plots", curves=(), metrics=[], profiles=["gradcam/epg"])
