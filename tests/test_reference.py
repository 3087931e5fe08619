"""Reference solutions (kanpde.reference) against independent truth, and the built-in problems
that use them (problems/burgers.py, problems/allen_cahn.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import ive

from kanpde import conditions
from kanpde import operators as op
from kanpde.reference import (
    allen_cahn_spectral,
    burgers_cole_hopf,
    burgers_cole_hopf_derivatives,
    etdrk4_coefficients,
)

NU = 0.01 / math.pi


def central(f, h):
    """Fourth-order central differences of a scalar function of one variable: (f', f'')."""
    fm2, fm1, f0, fp1, fp2 = (f(k * h) for k in (-2, -1, 0, 1, 2))
    first = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h)
    second = (-fm2 + 16 * fm1 - 30 * f0 + 16 * fp1 - fp2) / (12 * h * h)
    return first, second


def smooth_burgers_points(n=400, seed=0):
    """Points away from the front at x = 0 (|x| >= 0.2) and from t = 0 (finite differences in t)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 0.98, n) * rng.choice([-1.0, 1.0], n)
    return x, rng.uniform(0.05, 0.95, n)


# ----------------------------------------------------------------------------- Burgers

def test_burgers_initial_data_and_boundary_values():
    x = np.linspace(-1, 1, 301)
    assert np.array_equal(burgers_cole_hopf(x, 0.0, NU), -np.sin(np.pi * x))
    t = np.linspace(0, 1, 101)
    for side in (-1.0, 1.0):
        assert np.abs(burgers_cole_hopf(side, t, NU)).max() < 1e-13
    # shortly after t = 0 the quadrature path takes over and still matches the data
    assert np.abs(burgers_cole_hopf(x, 1e-12, NU) + np.sin(np.pi * x)).max() < 1e-10


def test_burgers_quadrature_is_converged_including_the_front():
    x = np.concatenate([np.linspace(-1, 1, 201), np.linspace(-0.02, 0.02, 101)])
    X, T = (a.ravel() for a in np.meshgrid(x, np.concatenate([[1e-4, 1e-2], np.linspace(0.05, 1, 20)])))
    default = burgers_cole_hopf(X, T, NU)              # 200 nodes at this nu
    fine = burgers_cole_hopf(X, T, NU, n_quad=800)
    assert np.abs(default - fine).max() < 1e-12
    # the comparison can tell an unconverged rule apart
    assert np.abs(burgers_cole_hopf(X, T, NU, n_quad=40) - fine).max() > 1e-6
    # the front is there: u jumps from about +1 to -1 across x = 0 at t = 1
    front = burgers_cole_hopf(np.array([-0.02, 0.02]), 1.0, NU)
    assert front[0] > 0.6 and front[1] < -0.6


def test_burgers_is_odd_in_x():
    x = np.linspace(0, 1, 101)
    X, T = (a.ravel() for a in np.meshgrid(x, np.linspace(0, 1, 21)))
    assert np.abs(burgers_cole_hopf(-X, T, NU) + burgers_cole_hopf(X, T, NU)).max() < 1e-13


def test_burgers_satisfies_the_pde_by_finite_differences():
    x, t = smooth_burgers_points()
    u = burgers_cole_hopf(x, t, NU)
    u_x, u_xx = central(lambda h: burgers_cole_hopf(x + h, t, NU), 5e-4)
    u_t, _ = central(lambda h: burgers_cole_hopf(x, t + h, NU), 5e-4)
    residual = u_t + u * u_x - NU * u_xx      # terms of size 1; the differences' error ~1e-10
    assert np.abs(residual).max() < 1e-9
    # at the front (|u_x| ~ 100) with a step that resolves it
    xf, tf = np.linspace(-0.01, 0.01, 21), np.full(21, 0.6)
    u = burgers_cole_hopf(xf, tf, NU)
    u_x, u_xx = central(lambda h: burgers_cole_hopf(xf + h, tf, NU), 2e-5)
    u_t, _ = central(lambda h: burgers_cole_hopf(xf, tf + h, NU), 1e-3)
    residual = u_t + u * u_x - NU * u_xx
    assert np.abs(residual).max() < 1e-8 * np.abs(NU * u_xx).max()


def burgers_fourier_series(x, t, nu, n_terms=200):
    """Cole (1951): theta = I0(a) + 2 sum (-1)^n I_n(a) exp(-nu n^2 pi^2 t) cos(n pi x) solves
    the heat equation from exp(-a cos(pi x)), a = 1/(2 pi nu); u = -2 nu theta_x / theta."""
    a = 1.0 / (2 * np.pi * nu)
    n = np.arange(1, n_terms + 1)
    coef = (-1.0) ** n * ive(n, a) * np.exp(-nu * np.pi**2 * np.outer(t, n**2))  # I_n e^-a
    theta = ive(0, a) + 2 * (coef * np.cos(np.pi * np.outer(x, n))).sum(axis=1)
    theta_x = -2 * np.pi * (coef * n * np.sin(np.pi * np.outer(x, n))).sum(axis=1)
    return -2 * nu * theta_x / theta


@pytest.mark.parametrize("nu", [0.1 / math.pi, 0.3, 1.0])
def test_burgers_matches_the_fourier_series_of_cole_hopf_at_large_nu(nu):
    X, T = (a.ravel() for a in np.meshgrid(np.linspace(-1, 1, 81), np.linspace(0.01, 1, 25)))
    expected = burgers_fourier_series(X, T, nu)
    assert np.abs(burgers_cole_hopf(X, T, nu) - expected).max() < 1e-11


def test_burgers_derivatives_match_finite_differences():
    x, t = smooth_burgers_points(200, seed=1)
    xf = np.linspace(-0.01, 0.01, 21)
    for xs, ts, hx, rtol in ((x, t, 5e-4, 5e-9), (xf, np.full(21, 0.7), 2e-5, 5e-9)):
        d = burgers_cole_hopf_derivatives(xs, ts, NU)
        u_x, u_xx = central(lambda h, xs=xs, ts=ts: burgers_cole_hopf(xs + h, ts, NU), hx)
        u_t, _ = central(lambda h, xs=xs, ts=ts: burgers_cole_hopf(xs, ts + h, NU), 5e-4)
        assert np.array_equal(d["u"], burgers_cole_hopf(xs, ts, NU))
        for name, fd in (("u_x", u_x), ("u_xx", u_xx), ("u_t", u_t)):
            assert np.abs(d[name] - fd).max() < rtol * np.abs(fd).max(), name


def test_burgers_shapes_and_bad_arguments():
    assert burgers_cole_hopf(np.zeros((3, 4)), 0.5, NU).shape == (3, 4)
    assert burgers_cole_hopf(0.25, np.linspace(0, 1, 7), NU).dtype == np.float64
    for kwargs, text in (({"nu": 0.0}, "nu must be a finite number > 0, got 0.0"),
                         ({"nu": float("nan")}, "nu must be"),
                         ({"nu": NU, "n_quad": 1}, "n_quad must be an integer >= 2"),
                         ({"nu": NU, "t": -0.5}, "t must be >= 0"),
                         ({"nu": NU, "x": [0.0, float("inf")]}, "x must be finite")):
        args = {"x": [0.0, 0.5], "t": 0.5, **kwargs}
        with pytest.raises(ValueError, match=text):
            burgers_cole_hopf(**args)


# ----------------------------------------------------------------------------- ETDRK4 / Allen-Cahn

def phi_series(k, z, terms=40):
    """phi_k(z) = sum_j z^j / (j + k)! (converges fast for |z| <= 1)."""
    return sum(z**j / math.factorial(j + k) for j in range(terms))


def test_etdrk4_coefficients_match_series_and_closed_forms():
    small = np.array([-1.0, -0.3, -1e-3, -1e-9, 0.0, 1e-7, 0.5, 1.0])
    q, f1, f2, f3 = etdrk4_coefficients(small)
    p1, p2, p3 = (np.array([phi_series(k, z) for z in small]) for k in (1, 2, 3))
    half = np.array([phi_series(1, z / 2) for z in small]) / 2
    for got, want in ((q, half), (f1, p1 - 3 * p2 + 4 * p3), (f2, p2 - 2 * p3), (f3, 4 * p3 - p2)):
        assert np.allclose(got, want, rtol=1e-13, atol=0)
    large = np.array([-5000.0, -40.0, -2.0, 2.0, 20.0])   # where the closed forms do not cancel
    e = np.exp(large)
    want = ((np.exp(large / 2) - 1) / large, (-4 - large + e * (4 - 3 * large + large**2)) / large**3,
            (2 + large + e * (large - 2)) / large**3, (-4 - 3 * large - large**2 + e * (4 - large)) / large**3)
    for got, w in zip(etdrk4_coefficients(large), want):
        assert np.allclose(got, w, rtol=1e-12, atol=0)


def test_allen_cahn_pure_reaction_matches_the_closed_form():
    """d = 0: every grid point follows u' = 5u - 5u^3, u = u0 e^{5t} / sqrt(1 + u0^2 (e^{10t} - 1))."""
    sol = allen_cahn_spectral(diffusion=0.0, reaction=5.0, n_modes=64, dt=1e-3)
    u0 = sol.grid_values(0)
    assert np.abs(u0 - sol.x_grid**2 * np.cos(np.pi * sol.x_grid)).max() < 0.05  # truncated series

    def closed_form(t):
        return u0 * np.exp(5 * t) / np.sqrt(1 + u0**2 * (np.exp(10 * t) - 1))

    for step in (100, 350, 1000):
        assert np.abs(sol.grid_values(step) - closed_form(sol.times[step])).max() < 5e-11
    for t in (0.1234, 0.5005, 0.9999):   # between steps: the Hermite interpolation in time
        got = sol(sol.x_grid, np.full(sol.n_modes, t))
        assert np.abs(got - closed_form(t)).max() < 1e-10
    coarse = allen_cahn_spectral(diffusion=0.0, reaction=5.0, n_modes=64, dt=2e-3)
    err_fine = np.abs(sol.grid_values(1000) - closed_form(1.0)).max()
    err_coarse = np.abs(coarse.grid_values(500) - closed_form(1.0)).max()
    assert 10 < err_coarse / err_fine < 22      # fourth order: 16


def test_allen_cahn_without_reaction_matches_the_heat_equation_series():
    """r = 0: u = sum_m c_m exp(-d pi^2 m^2 t) cos(pi m x), c_m by numerical quadrature of u0."""
    d = 0.01
    m = np.arange(0, 80)
    c = np.array([quad(lambda x: x**2 * np.cos(np.pi * x), -1, 1, weight="cos", wvar=np.pi * k)[0]
                  for k in m]) / 2 * np.where(m == 0, 1.0, 2.0)
    sol = allen_cahn_spectral(diffusion=d, reaction=0.0, n_modes=256)
    x = np.linspace(-1, 1, 101)
    for t in (0.05, 0.3, 1.0):
        expected = np.cos(np.pi * np.outer(x, m)) @ (c * np.exp(-d * np.pi**2 * m**2 * t))
        assert np.abs(sol(x, t) - expected).max() < 1e-12


def test_allen_cahn_mode_refinement():
    x = np.linspace(-1, 1, 801)
    default, fine = allen_cahn_spectral(), allen_cahn_spectral(n_modes=4096)
    assert default.n_modes == 2048
    for t, tol in ((0.001, 1e-4), (0.01, 2e-9), (0.1, 5e-11), (0.5, 1e-12), (1.0, 1e-12)):
        assert np.abs(default(x, t) - fine(x, t)).max() < tol, t
    # 512 modes do not resolve the interfaces at t = 1: the check can fail
    assert np.abs(allen_cahn_spectral(n_modes=512)(x, 1.0) - fine(x, 1.0)).max() > 1e-6


def test_allen_cahn_time_step_refinement():
    x = np.linspace(-1, 1, 401)
    coarse = allen_cahn_spectral(n_modes=512, dt=1e-3)
    fine = allen_cahn_spectral(n_modes=512, dt=2.5e-4)
    for t in (0.01, 0.0105, 0.25, 0.5005, 0.75, 0.9995, 1.0):   # at steps and between them
        assert np.abs(coarse(x, t) - fine(x, t)).max() < 1e-10, t


def test_allen_cahn_stays_bounded_and_periodic():
    sol = allen_cahn_spectral()
    X, T = (a.ravel() for a in np.meshgrid(np.linspace(-1, 1, 401), np.linspace(0, 1, 51)))
    u = sol(X, T)
    assert -1.05 <= u.min() and u.max() <= 1.05
    assert u.min() < -0.99 and u.max() > 0.99                 # it did separate into phases
    t = np.linspace(0.01, 1, 50)
    left, right = sol.derivatives(-1.0, t), sol.derivatives(1.0, t)
    assert np.abs(left["u"] - right["u"]).max() < 1e-12
    assert np.abs(left["u_x"] - right["u_x"]).max() < 1e-11
    assert np.abs(sol(0.3, t) - sol(2.3, t)).max() < 1e-12  # x is taken 2-periodically


def test_allen_cahn_derivatives_match_finite_differences():
    sol = allen_cahn_spectral()
    x = np.linspace(-0.95, 0.95, 77)
    t = np.full_like(x, 0.6)
    d = sol.derivatives(x, t)
    u_x, u_xx = central(lambda h: sol(x + h, t), 1e-3)
    u_t, _ = central(lambda h: sol(x, t + h), 1e-3)
    assert np.abs(d["u_x"] - u_x).max() < 1e-6 * np.abs(u_x).max()
    assert np.abs(d["u_xx"] - u_xx).max() < 2e-6 * np.abs(u_xx).max()
    assert np.abs(d["u_t"] - u_t).max() < 1e-8                  # the PDE by a time difference


def test_allen_cahn_is_cached_and_checks_its_arguments():
    assert allen_cahn_spectral() is allen_cahn_spectral(1e-4, 5.0)
    assert allen_cahn_spectral(n_modes=512) is not allen_cahn_spectral()
    sol = allen_cahn_spectral()
    assert np.array_equal(sol(np.linspace(-1, 1, 9), 0.0), np.linspace(-1, 1, 9) ** 2
                          * np.cos(np.pi * np.linspace(-1, 1, 9)))
    with pytest.raises(ValueError, match="t must lie in \\[0, 1.0\\].*1.5"):
        sol([0.0], [1.5])
    for kwargs, text in (({"diffusion": -1e-4}, "diffusion must be a finite number >= 0, got -0.0001"),
                         ({"n_modes": 101}, "n_modes must be an even integer >= 8, got 101"),
                         ({"dt": 0.3}, "dt=0.3 does not divide t_final=1.0"),
                         ({"reaction": float("inf")}, "reaction must be a finite number")):
        with pytest.raises(ValueError, match=text):
            allen_cahn_spectral(**kwargs)


# ----------------------------------------------------------------------------- the problems

@pytest.fixture(scope="module")
def burgers():
    from kanpde.problems.burgers import Burgers1D
    return Burgers1D()


@pytest.fixture(scope="module")
def allen_cahn():
    from kanpde.problems.allen_cahn import AllenCahn1D
    return AllenCahn1D()


def condition(problem, kind):
    return next(c for c in problem.conditions if isinstance(c, kind))


def taylor(x0, u, u_x, u_t, u_xx, u_tt):
    """A torch function of x (requiring grad) whose value, gradient and Hessian diagonal at x0
    are the given (N,) arrays (the second-order Taylor polynomial), for problem.residual."""
    u, u_x, u_t, u_xx, u_tt = (torch.from_numpy(np.asarray(a, dtype=np.float64)).reshape(-1, 1)
                               for a in (u, u_x, u_t, u_xx, u_tt))
    x = x0.clone().requires_grad_(True)
    dx, dt = (x - x0)[:, :1], (x - x0)[:, 1:]
    return x, u + dx * u_x + dt * u_t + 0.5 * (u_xx * dx**2 + u_tt * dt**2)


@pytest.mark.parametrize("name", ["burgers", "allen_cahn"])
def test_problem_exact_at_t0_is_the_initial_condition(name, request):
    problem = request.getfixturevalue(name)
    cond = condition(problem, conditions.Initial)
    batch = cond.sample(problem.domain, 300, seed=0)
    assert torch.allclose(problem.exact(batch["x"]), batch["value"], rtol=0, atol=1e-14)


def test_burgers_problem_boundary_and_values(burgers):
    assert burgers.nu == 0.01 / math.pi and burgers.name == "burgers1d"
    batch = condition(burgers, conditions.Dirichlet).sample(burgers.domain, 200, seed=0)
    assert burgers.exact(batch["x"]).abs().max() < 1e-13
    x = torch.tensor([[0.5, 0.3], [-0.25, 0.9]], dtype=torch.float32)
    u = burgers.exact(x)
    assert u.shape == (2, 1) and u.dtype == torch.float32
    expected = burgers_cole_hopf(np.array([0.5, -0.25]), np.array([0.3, 0.9]), NU)
    assert np.allclose(u.numpy()[:, 0], expected, atol=1e-7)


def test_allen_cahn_problem_periodic_condition_holds(allen_cahn):
    assert allen_cahn.params == {"diffusion": 1e-4, "reaction": 5.0}
    batch = condition(allen_cahn, conditions.Periodic).sample(allen_cahn.domain, 200, seed=0)
    keep = batch["x"][:, 1] > 0.005        # u0 itself has a kink at x = +-1 (the derivative jumps)
    a, b = batch["x"][keep], batch["x_pair"][keep]
    assert torch.allclose(allen_cahn.exact(a), allen_cahn.exact(b), rtol=0, atol=1e-12)
    assert torch.allclose(allen_cahn.exact_grad(a)[:, 0], allen_cahn.exact_grad(b)[:, 0], rtol=0, atol=1e-7)


def test_burgers_problem_residual_vanishes_on_the_exact_solution(burgers):
    x, t = smooth_burgers_points(300, seed=2)
    u = burgers_cole_hopf(x, t, NU)
    u_x, u_xx = central(lambda h: burgers_cole_hopf(x + h, t, NU), 5e-4)   # independent of the
    u_t, u_tt = central(lambda h: burgers_cole_hopf(x, t + h, NU), 5e-4)   # problem's formulas
    x0 = torch.from_numpy(np.stack([x, t], axis=1))
    for tagged in (False, True):
        xg, ug = taylor(x0, u, u_x, u_t, u_xx, u_tt)
        if tagged:
            op.with_time_axis(xg, 1)   # as the trainer passes collocation points
        residual = burgers.residual(xg, ug)
        assert residual.shape == (300, 1)
        assert residual.abs().max() < 1e-9
    # and it is not small for a wrong solution (u_t off by 1 %)
    xg, ug = taylor(x0, u, u_x, 1.01 * u_t, u_xx, u_tt)
    assert burgers.residual(xg, ug).abs().max() > 1e-3


def test_allen_cahn_problem_residual_vanishes_on_the_exact_solution(allen_cahn):
    sol = allen_cahn.reference_solution()
    rng = np.random.default_rng(3)
    x, t = rng.uniform(-1, 1, 300), rng.uniform(0.05, 0.95, 300)
    d = sol.derivatives(x, t)                                  # spectral u_x, u_xx
    u_t, u_tt = central(lambda h: sol(x, t + h), 1e-3)         # time difference, not the PDE
    x0 = torch.from_numpy(np.stack([x, t], axis=1))
    for tagged in (False, True):
        xg, ug = taylor(x0, d["u"], d["u_x"], u_t, d["u_xx"], u_tt)
        if tagged:
            op.with_time_axis(xg, 1)
        residual = allen_cahn.residual(xg, ug)
        assert residual.shape == (300, 1) and residual.abs().max() < 1e-8
    xg, ug = taylor(x0, d["u"], d["u_x"], u_t, 1.01 * d["u_xx"], u_tt)
    assert allen_cahn.residual(xg, ug).abs().max() > 1e-3     # u_xx matters (the interfaces)


@pytest.mark.parametrize("name", ["burgers", "allen_cahn"])
def test_problem_exact_grad_matches_finite_differences(name, request):
    problem = request.getfixturevalue(name)
    rng = np.random.default_rng(4)
    x = torch.from_numpy(np.stack([rng.uniform(0.3, 0.9, 50), rng.uniform(0.2, 0.8, 50)], axis=1))
    grad = problem.exact_grad(x)
    assert grad.shape == (50, 2) and grad.dtype == torch.float64
    h = 1e-5
    for axis in (0, 1):
        step = torch.zeros(2, dtype=torch.float64)
        step[axis] = h
        fd = (problem.exact(x + step) - problem.exact(x - step))[:, 0] / (2 * h)
        assert torch.allclose(grad[:, axis], fd, rtol=1e-6, atol=1e-6)


def test_problem_configs_build_the_problems():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from kanpde.cli import compose
    from kanpde.problems.allen_cahn import AllenCahn1D
    from kanpde.problems.burgers import Burgers1D

    burgers = instantiate(OmegaConf.to_container(compose(["problem=burgers1d"]).problem))
    assert isinstance(burgers, Burgers1D) and burgers.nu == 0.01 / math.pi
    ac = instantiate(OmegaConf.to_container(compose(["problem=allen_cahn1d", "problem.reaction=4"]).problem))
    assert isinstance(ac, AllenCahn1D) and ac.params == {"diffusion": 1e-4, "reaction": 4.0}
    with pytest.raises(ValueError, match="nu must be a finite number > 0, got -1.0"):
        Burgers1D(nu=-1.0)
    with pytest.raises(ValueError, match="diffusion must be a finite number >= 0"):
        AllenCahn1D(diffusion=-1.0)
