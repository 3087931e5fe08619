"""Unit-cube samplers and resampling seeds (kanpde.sampling)."""
import warnings

import numpy as np
import pytest
from scipy import stats

from kanpde.sampling import METHODS, Resampler, round_seed, sample_unit_cube

ALPHA = 1e-3  # significance level of the distribution tests (fixed seeds: deterministic)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n, d", [(1, 1), (7, 2), (100, 3), (129, 2), (50, 5)])
def test_shape_dtype_range_and_no_warnings(method, n, d):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. scipy's Sobol balance warning must not fire
        x = sample_unit_cube(n, d, method, seed=3)
    assert x.shape == (n, d)
    assert x.dtype == np.float64
    assert np.all(x >= 0.0) and np.all(x < 1.0)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_points_different_seed_different_points(method):
    a = sample_unit_cube(50, 2, method, seed=11)
    b = sample_unit_cube(50, 2, method, seed=11)
    c = sample_unit_cube(50, 2, method, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_generator_seed_is_accepted():
    a = sample_unit_cube(10, 2, "uniform", seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a, np.random.default_rng(5).random((10, 2)))


def test_grid_with_perfect_count_is_the_cell_centred_grid():
    x = sample_unit_cube(16, 2, "grid", seed=0)
    centres = (np.arange(4) + 0.5) / 4
    expected = np.array([[a, b] for a in centres for b in centres])
    np.testing.assert_allclose(x, expected)
    # seed is irrelevant for a full grid
    np.testing.assert_array_equal(x, sample_unit_cube(16, 2, "grid", seed=99))


def test_grid_with_other_count_is_a_distinct_subset_of_the_next_grid():
    x = sample_unit_cube(20, 2, "grid", seed=0)  # smallest m with m^2 >= 20 is 5
    cells = x * 5 - 0.5
    np.testing.assert_allclose(cells, np.round(cells), atol=1e-12)
    assert len(np.unique(np.round(cells), axis=0)) == 20


def test_grid_in_high_dimension_does_not_enumerate_everything():
    x = sample_unit_cube(1000, 40, "grid", seed=0)  # 2^40 cells
    assert x.shape == (1000, 40)
    assert set(np.unique(x)) == {0.25, 0.75}
    assert len(np.unique(x, axis=0)) == 1000


@pytest.mark.parametrize("method", ["uniform", "lhs", "sobol", "halton"])
def test_marginals_are_uniform_ks(method):
    x = sample_unit_cube(2000, 3, method, seed=2024)
    for j in range(3):
        assert stats.kstest(x[:, j], "uniform").pvalue > ALPHA


def test_uniform_joint_distribution_chi_square():
    x = sample_unit_cube(4000, 2, "uniform", seed=7)
    counts = np.histogram2d(x[:, 0], x[:, 1], bins=5, range=[[0, 1], [0, 1]])[0].ravel()
    assert stats.chisquare(counts).pvalue > ALPHA


def test_lhs_has_one_point_per_stratum():
    n = 64
    x = sample_unit_cube(n, 3, "lhs", seed=1)
    for j in range(3):
        np.testing.assert_array_equal(np.sort(np.floor(x[:, j] * n)), np.arange(n))


def test_sobol_power_of_two_is_stratified():
    n = 256
    x = sample_unit_cube(n, 2, "sobol", seed=1)
    for j in range(2):
        np.testing.assert_array_equal(np.sort(np.floor(x[:, j] * n)), np.arange(n))


def test_sobol_prefix_is_the_first_points_of_the_sequence():
    np.testing.assert_array_equal(sample_unit_cube(100, 2, "sobol", seed=4),
                                  sample_unit_cube(128, 2, "sobol", seed=4)[:100])


def test_qmc_is_more_even_than_pseudo_random():
    from scipy.stats import qmc
    disc = {m: qmc.discrepancy(sample_unit_cube(512, 2, m, seed=0)) for m in METHODS}
    assert disc["sobol"] < disc["uniform"] / 5
    assert disc["halton"] < disc["uniform"] / 5


@pytest.mark.parametrize("bad", [0, -3, 2.5, 10.0, True, "10", None])
def test_bad_n_is_rejected_naming_n_and_value(bad):
    with pytest.raises(ValueError, match=r"\bn must be a positive integer") as info:
        sample_unit_cube(bad, 2)
    assert repr(bad) in str(info.value)


def test_bad_d_is_rejected():
    with pytest.raises(ValueError, match=r"\bd must be a positive integer, got 0"):
        sample_unit_cube(5, 0)


def test_unknown_method_lists_available_methods():
    with pytest.raises(ValueError) as info:
        sample_unit_cube(5, 2, "latin")
    message = str(info.value)
    assert "'latin'" in message
    for method in METHODS:
        assert method in message


def test_method_must_be_a_string():
    with pytest.raises(TypeError, match="method"):
        sample_unit_cube(5, 2, 3)


def test_method_is_case_insensitive():
    np.testing.assert_array_equal(sample_unit_cube(8, 2, "Sobol", 1),
                                  sample_unit_cube(8, 2, "sobol", 1))


def test_bad_seed():
    with pytest.raises(ValueError, match="seed.*-1"):
        sample_unit_cube(5, 2, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        sample_unit_cube(5, 2, seed="abc")


def test_round_seed_is_reproducible_and_distinct():
    seeds = {round_seed(0, r, s) for r in range(20) for s in ("interior", "boundary")}
    assert len(seeds) == 40
    assert round_seed(0, 3, "interior") == round_seed(0, 3, "interior")
    assert round_seed(1, 3, "interior") != round_seed(0, 3, "interior")
    assert all(0 <= s < 2 ** 63 for s in seeds)
    assert round_seed(None, 3) is None
    with pytest.raises(ValueError, match="round_index"):
        round_seed(0, -1)


def test_resampler_rounds():
    a, b = Resampler(seed=5), Resampler(seed=5)
    first = a.seed("interior")
    assert first == b.seed("interior") == round_seed(5, 0, "interior")
    assert a.advance() == 1
    assert a.seed("interior") != first
    assert a.seed("interior") == round_seed(5, 1, "interior")
    x1 = sample_unit_cube(10, 2, seed=a.seed())
    x0 = sample_unit_cube(10, 2, seed=b.seed())
    assert not np.array_equal(x0, x1)


def test_unseeded_resampler_records_its_seed():
    a = Resampler()
    replay = Resampler(seed=a.base_seed)
    assert a.seed("boundary") == replay.seed("boundary")
