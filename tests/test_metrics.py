"""Error metrics against closed-form integrals."""
import math

import numpy as np
import pytest
import torch

from kanpde import Problem, conditions, geometry, metrics
from kanpde import operators as op

EPS = 0.01
PI = math.pi


def test_exact_solution_has_zero_error():
    x, w = geometry.Interval(0, 1).evaluation_points(200)
    u = torch.sin(PI * x)
    g = PI * torch.cos(PI * x)
    m = metrics.errors(u, u, g, g, w)
    assert set(m) == set(metrics.METRICS)
    assert all(m[k] == 0.0 for k in metrics.METRICS)


def test_constant_perturbation_of_sine_closed_form():
    # u* = sin(pi x) on [0, 1]: ||u*||^2 = 1/2, ||u*'||^2 = pi^2/2; e = eps, e' = 0
    x, w = geometry.Interval(0, 1).evaluation_points(4000)
    u_star = torch.sin(PI * x)
    g_star = PI * torch.cos(PI * x)
    m = metrics.errors(u_star + EPS, u_star, g_star, g_star, w)
    assert m["rel_l2"] == pytest.approx(EPS * math.sqrt(2), rel=1e-6)
    assert m["rel_h1"] == pytest.approx(EPS / math.sqrt((1 + PI**2) / 2), rel=1e-6)
    assert m["l2"] == pytest.approx(EPS, rel=1e-12)
    assert m["h1"] == pytest.approx(EPS, rel=1e-12)
    assert m["mse"] == pytest.approx(EPS**2, rel=1e-12)
    assert m["linf"] == pytest.approx(EPS, rel=1e-12)


def test_linear_perturbation_closed_form():
    # e = eps x: ||e||^2 = eps^2 / 3, ||e'||^2 = eps^2
    x, w = geometry.Interval(0, 1).evaluation_points(4000)
    u_star = torch.sin(PI * x)
    g_star = PI * torch.cos(PI * x)
    m = metrics.errors(u_star + EPS * x, u_star, g_star + EPS, g_star, w)
    assert m["rel_l2"] == pytest.approx(EPS * math.sqrt(2 / 3), rel=1e-6)
    assert m["rel_h1"] == pytest.approx(EPS * math.sqrt(4 / 3) / math.sqrt((1 + PI**2) / 2), rel=1e-6)
    assert m["h1"] == pytest.approx(EPS * math.sqrt(4 / 3), rel=1e-6)
    assert m["mse"] == pytest.approx(EPS**2 / 3, rel=1e-6)
    assert m["linf"] == pytest.approx(EPS, rel=1e-3)


def test_quadrature_weights_are_used():
    # 5-point Gauss-Legendre on [0, 1] integrates these polynomials exactly:
    # u* = x^2, e = eps x: ||u*||^2 = 1/5, ||e||^2 = eps^2/3, ||u*'||^2 = 4/3, ||e'||^2 = eps^2
    nodes, weights = np.polynomial.legendre.leggauss(5)
    x, w = (nodes + 1) / 2, weights / 2
    u_star, g_star = x**2, 2 * x
    m = metrics.errors(u_star + EPS * x, u_star, g_star + EPS, g_star, w)
    assert m["rel_l2"] == pytest.approx(EPS * math.sqrt(5 / 3), rel=1e-12)
    assert m["rel_h1"] == pytest.approx(EPS * math.sqrt(4 / 3) / math.sqrt(1 / 5 + 4 / 3), rel=1e-12)
    assert m["l2"] == pytest.approx(EPS / math.sqrt(3), rel=1e-12)
    unweighted = metrics.errors(u_star + EPS * x, u_star)
    assert unweighted["rel_l2"] != pytest.approx(m["rel_l2"], rel=1e-3)
    assert math.isnan(unweighted["h1"]) and math.isnan(unweighted["rel_h1"])


def test_vector_outputs_sum_components():
    x, w = geometry.Interval(0, 1).evaluation_points(1000)
    u_star = torch.cat([torch.sin(PI * x), torch.cos(PI * x)], dim=1)  # |u*|^2 = 1
    m = metrics.errors(u_star + torch.tensor([EPS, 2 * EPS], dtype=torch.float64), u_star, weights=w)
    assert m["rel_l2"] == pytest.approx(EPS * math.sqrt(5), rel=1e-9)
    assert m["linf"] == pytest.approx(2 * EPS)
    assert m["mse"] == pytest.approx(2.5 * EPS**2)


def test_zero_exact_solution_gives_nan_relative_errors():
    m = metrics.errors(np.full(10, 0.1), np.zeros(10))
    assert math.isnan(m["rel_l2"]) and m["l2"] == pytest.approx(0.1)


def test_errors_input_checks():
    with pytest.raises(ValueError, match="same shape"):
        metrics.errors(np.zeros((10, 2)), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="one row per point"):
        metrics.errors(np.zeros(9), np.zeros(10))
    with pytest.raises(ValueError, match="both grad_pred and grad_exact"):
        metrics.errors(np.zeros(10), np.zeros(10), grad_pred=np.zeros(10))
    with pytest.raises(ValueError, match=r"weights must have shape \(10,\)"):
        metrics.errors(np.zeros(10), np.zeros(10), weights=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        metrics.errors(np.zeros(3), np.zeros(3), weights=np.array([1.0, -1.0, 1.0]))


class Sine(Problem):
    domain = geometry.Interval(0, 1)
    conditions = [conditions.Dirichlet("boundary", value=0.0)]

    def residual(self, x, u):
        return op.laplacian(u, x) + PI**2 * u

    def exact(self, x):
        return torch.sin(PI * x)


def test_evaluate_errors_chunked_matches_closed_form():
    problem = Sine()
    x, w = problem.domain.evaluation_points(3000)
    calls = []

    def u_fn(z):
        calls.append((z.shape[0], z.dtype, z.requires_grad))
        return torch.sin(PI * z) + EPS * z

    m, arrays = metrics.evaluate_errors(problem, u_fn, x, w, batch_size=1000)
    assert len(calls) == 3 and all(c == (1000, torch.float64, True) for c in calls)
    assert m["rel_l2"] == pytest.approx(EPS * math.sqrt(2 / 3), rel=1e-6)
    assert m["rel_h1"] == pytest.approx(EPS * math.sqrt(4 / 3) / math.sqrt((1 + PI**2) / 2), rel=1e-6)
    assert set(arrays) == {"x", "u_pred", "u_exact"}
    assert arrays["u_pred"].shape == (3000, 1) and arrays["u_exact"].dtype == np.float64
    whole, _ = metrics.evaluate_errors(problem, u_fn, x, w, batch_size=10_000)
    assert all(whole[k] == pytest.approx(m[k], rel=1e-12) for k in metrics.METRICS)


def test_evaluate_errors_casts_to_model_dtype():
    problem = Sine()
    x, w = problem.domain.evaluation_points(500)
    seen = []

    def u_fn(z):
        seen.append(z.dtype)
        return torch.sin(PI * z)

    m, arrays = metrics.evaluate_errors(problem, u_fn, x, w, dtype=torch.float32)
    assert seen == [torch.float32] and arrays["u_pred"].dtype == np.float64
    assert m["rel_l2"] < 1e-6 and m["rel_h1"] < 1e-5


def test_space_time_h1_includes_time_derivative():
    # u* = sin(pi x) t on [0,1]^2; e = eps t: ||e||^2 = eps^2/3, ||grad e||^2 = ||de/dt||^2 = eps^2
    class Decay(Problem):
        domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 1)

        def residual(self, x, u):
            return op.dt(u, x)

        def exact(self, x):
            return torch.sin(PI * x[:, :1]) * x[:, 1:]

    problem = Decay()
    x, w = problem.domain.evaluation_points(40_000)
    m, _ = metrics.evaluate_errors(problem, lambda z: problem.exact(z) + EPS * z[:, 1:], x, w)
    norm_sq = 1 / 6 + PI**2 / 6 + 1 / 2
    assert m["rel_l2"] == pytest.approx(EPS * math.sqrt(2), rel=1e-4)
    assert m["rel_h1"] == pytest.approx(EPS * math.sqrt(4 / 3) / math.sqrt(norm_sq), rel=1e-4)


def test_evaluate_errors_vector_output():
    class Pair(Problem):
        domain = geometry.Rectangle([0, 0], [1, 1])
        output_dim = 2

        def residual(self, x, u):
            return u

        def exact(self, x):
            return torch.cat([x[:, :1] * x[:, 1:], x[:, :1] + x[:, 1:]], dim=1)

    problem = Pair()
    x, w = problem.domain.evaluation_points(2500)
    assert problem.exact_grad(x[:5]).shape == (5, 2, 2)
    m, arrays = metrics.evaluate_errors(problem, problem.exact, x, w, batch_size=700)
    assert arrays["u_pred"].shape == (2500, 2)
    assert m["rel_l2"] < 1e-15 and m["rel_h1"] < 1e-15


def test_no_exact_solution_gives_nan_metrics():
    class Unknown(Problem):
        domain = geometry.Interval(0, 1)

        def residual(self, x, u):
            return u

    problem = Unknown()
    x, w = problem.domain.evaluation_points(100)
    m, arrays = metrics.evaluate_errors(problem, lambda z: z**2, x, w)
    assert all(math.isnan(v) for v in m.values())
    assert set(arrays) == {"x", "u_pred"}


def test_evaluate_errors_checks_shapes():
    problem = Sine()
    x, w = problem.domain.evaluation_points(10)
    with pytest.raises(ValueError, match=r"u_fn\(x\) returned shape \(10, 2\).*expects \(10, 1\)"):
        metrics.evaluate_errors(problem, lambda z: torch.cat([z, z], dim=1), x, w)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1\) for problem 'Sine'"):
        metrics.evaluate_errors(problem, lambda z: z, torch.zeros(4, 2, dtype=torch.float64), None)
