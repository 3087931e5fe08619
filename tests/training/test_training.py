"""The training engine through the Python API (kanpde.solve), with tiny budgets: accuracy,
reproducibility, grid updates and extension, early stops, divergence, resampling."""
from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest
import torch

import kanpde
from kanpde import conditions, geometry
from kanpde import operators as op
from kanpde.models import KAN, MLP
from kanpde.problems.poisson import PaperPoisson, Poisson1D
from kanpde.training import TrainingDiverged
from tests.helpers import lbfgs, tiny


def test_solve_reaches_threshold_and_reports_everything():
    torch.manual_seed(0)
    res = kanpde.solve(Poisson1D(), KAN([1, 10, 1], grid_size=5), **tiny(lbfgs(300), weights={"residual": 0.01},
                                                                          seed=1))
    assert res.metrics["rel_l2"] < 1e-2, res.metrics
    assert set(res.metrics) >= {"rel_l2", "rel_h1", "mse", "linf", "l2", "h1"}
    h = res.history
    assert len({len(v) for v in h.values()}) == 1
    assert h["step"][-1] == 300 and np.all(np.diff(h["time_s"]) >= 0)
    assert {"loss_residual", "loss_dirichlet_boundary"} <= set(h)
    # the recorded total is the weighted sum of the recorded terms
    np.testing.assert_allclose(0.01 * h["loss_residual"] + h["loss_dirichlet_boundary"], h["loss"], rtol=1e-12)
    assert res.field["u_pred"].shape == res.field["u_exact"].shape
    assert "rel_l2=" in res.summary()


def test_same_seed_same_run_different_seed_different_run():
    def run(seed):
        torch.manual_seed(0)  # same initial weights; the run's seed drives the sampling
        return kanpde.solve(Poisson1D(), MLP([1, 8, 1]), **tiny(lbfgs(20), seed=seed))

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    np.testing.assert_array_equal(a.field["u_pred"], b.field["u_pred"])
    assert not np.array_equal(a.history["loss"], c.history["loss"])


def test_same_seed_same_kan_run_through_grid_updates_and_extension():
    """Bit-identical reruns also when the run moves knots and refines the grid (least-squares
    refits whose LAPACK driver must not depend on where the arrays sit in memory)."""
    def run():
        keep = torch.empty(int(torch.randint(1, 999, ()).item()))  # shift later allocations
        stages = [{"optimizer": "lbfgs", "steps": 30, "lr": 1.0, "grid_size": 4},
                  {"optimizer": "lbfgs", "steps": 30, "lr": 1.0, "grid_size": 8}]
        res = kanpde.solve(PaperPoisson(), KAN([2, 4, 1], grid_size=4, seed=0),
                           **tiny(stages, grid_update_every=5, grid_update_until=20, seed=2))
        del keep
        return res

    a, b = run(), run()
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    np.testing.assert_array_equal(a.field["u_pred"], b.field["u_pred"])


def test_forward_and_autograd_paths_train_identically():
    """Same loss trajectory to round-off: the two derivative paths compute the same numbers."""
    runs = {d: kanpde.solve(PaperPoisson(), KAN([2, 3, 1], grid_size=5, seed=0),
                            **tiny([{"optimizer": "adam", "steps": 20, "lr": 1e-2}], derivatives=d, seed=0))
            for d in ("forward", "autograd")}
    np.testing.assert_allclose(runs["forward"].history["loss"], runs["autograd"].history["loss"], rtol=1e-9)


def test_grid_extension_refines_mid_run():
    model = KAN([1, 10, 1], grid_size=4, seed=0)
    stages = [{"optimizer": "lbfgs", "steps": 100, "lr": 1.0},
              {"optimizer": "lbfgs", "steps": 100, "lr": 1.0, "grid_size": 8}]
    res = kanpde.solve(Poisson1D(), model, **tiny(stages, weights={"residual": 0.01}, seed=0))
    assert model.grid_size == 8
    assert model.layers[0].grid.shape[-1] == 8 + 2 * model.layers[0].spline_order + 1
    h = res.history
    i = list(h["step"]).index(100)
    # the finer grid goes on from where the coarse one stopped and improves on it
    assert h["rel_l2"][-1] < 0.8 * h["rel_l2"][i], (h["rel_l2"][i], h["rel_l2"][-1])


def test_grid_updates_follow_the_collocation_points():
    model = KAN([1, 3, 1], grid_size=5, grid_range=(-3, 3))
    before = model.layers[0].grid.clone()
    kanpde.solve(Poisson1D(), model, **tiny(lbfgs(20), grid_update_every=5, grid_update_until=10, seed=0))
    after = model.layers[0].grid
    assert not torch.equal(before, after)
    # the interior knots now lie within the sampled interval [-1, 1]
    k = model.layers[0].spline_order
    assert after[0, k].item() >= -1.0 - 1e-9 and after[0, -k - 1].item() <= 1.0 + 1e-9


def test_target_error_stops_early():
    res = kanpde.solve(Poisson1D(), KAN([1, 4, 1], grid_size=8), **tiny(lbfgs(500), stop={"target_rel_l2": 5e-2},
                                                                         seed=1))
    assert res.status == "target_reached"
    assert res.history["step"][-1] < 500
    assert res.metrics["rel_l2"] <= 5e-2


def test_divergence_raises_and_restores_last_good_state(tmp_path):
    model = MLP([1, 8, 1])
    with pytest.raises(TrainingDiverged, match="diverged at step") as info:
        kanpde.solve(Poisson1D(), model, output_dir=tmp_path, plots=False,
                     **tiny([{"optimizer": "adam", "steps": 300, "lr": 1e150}], every=1, seed=0))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    result = info.value.result
    assert result is not None and result.status == "diverged"
    assert math.isfinite(result.metrics["rel_l2"])
    assert (tmp_path / "checkpoint.pt").exists()


def test_hard_constraint_output_transform():
    class Transformed(Problem1DHard):
        pass

    res = kanpde.solve(Transformed(), MLP([1, 8, 1]), **tiny(lbfgs(40), seed=0))
    assert res.metrics["rel_l2"] < 2e-2, res.metrics
    # the constraint holds exactly at the boundary
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    u = Transformed().output_transform(x, res.model(x))
    assert u.abs().max().item() == 0.0


class Problem1DHard(kanpde.Problem):
    """u'' = -pi^2 sin(pi x) on [0, 1] with u(0) = u(1) = 0 imposed by the output transform."""

    domain = geometry.Interval(0, 1)
    conditions = []

    def residual(self, x, u):
        return op.laplacian(u, x) + math.pi**2 * torch.sin(math.pi * x)

    def output_transform(self, x, u):
        return x * (1 - x) * u

    def exact(self, x):
        return torch.sin(math.pi * x)


def test_neumann_problem_trains_with_the_forward_path():
    class Mixed(kanpde.Problem):
        domain = geometry.Interval(0, 1)
        conditions = [conditions.Dirichlet("left", value=0.0), conditions.Neumann("right", value=-math.pi)]

        def residual(self, x, u):
            return op.laplacian(u, x) + math.pi**2 * torch.sin(math.pi * x)

        def exact(self, x):
            return torch.sin(math.pi * x)

    res = kanpde.solve(Mixed(), KAN([1, 10, 1], grid_size=5, grid_range=(0, 1)),
                       **tiny(lbfgs(300), weights={"residual": 0.01}, seed=0))
    assert res.metrics["rel_l2"] < 2e-2, res.metrics


def test_resume_without_checkpoint_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        kanpde.solve(Poisson1D(), MLP([1, 4, 1]), output_dir=tmp_path, resume=True, **tiny(lbfgs(5)))


def test_space_time_heat_equation():
    from kanpde.problems.heat import Heat1D

    problem = Heat1D()
    assert problem.time_axis == 1
    res = kanpde.solve(problem, KAN([2, 6, 1], grid_size=5, grid_range=(0, 1), seed=0),
                       **tiny(lbfgs(150), n_interior=400, n_boundary=100, n_points=900, every=50, seed=0))
    assert {"loss_residual", "loss_dirichlet_boundary", "loss_initial"} <= set(res.history)
    assert res.metrics["rel_l2"] < 2e-2, res.metrics


def test_plateau_stops_a_run_that_no_longer_improves():
    torch.manual_seed(0)
    res = kanpde.solve(Poisson1D(), MLP([1, 8, 1]), **tiny([{"optimizer": "adam", "steps": 500, "lr": 1e-12}],
                                                            stop={"plateau_patience": 3}, seed=0))
    assert res.status == "plateau"
    assert res.history["step"][-1] == 40  # 4 evaluations: the first, then 3 without a 1% gain


def test_resampling_draws_new_points_reproducibly():
    def run(resample_every):
        torch.manual_seed(0)
        return kanpde.solve(Poisson1D(), MLP([1, 8, 1]), **tiny([{"optimizer": "adam", "steps": 30, "lr": 1e-2}],
                                                                 resample_every=resample_every, seed=0))

    fixed, a, b = run(0), run(5), run(5)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    assert not np.array_equal(a.history["loss"], fixed.history["loss"])


def test_dirichlet_values_ride_on_the_collocation_jet_pass():
    # forward path: one jet pass per loss for the interior and the Dirichlet points together,
    # no separate network call; autograd: a plain call per point set
    from kanpde.training import SolveOptions, Trainer
    for mode, jets, calls in (("forward", 1, 0), ("autograd", 0, 2)):
        model = KAN([2, 3, 1], grid_size=5, seed=0).double()
        trainer = Trainer(PaperPoisson(), model, SolveOptions.from_kwargs(**tiny(lbfgs(1), derivatives=mode)))
        trainer.resample(0)
        counts = {"jet": 0, "call": 0}
        jet, fwd = model.forward_jet, model.forward

        def counting_jet(*a, **k):
            counts["jet"] += 1
            return jet(*a, **k)

        def counting_call(*a, **k):
            counts["call"] += 1
            return fwd(*a, **k)
        model.forward_jet, model.forward = counting_jet, counting_call
        terms = trainer.loss_terms()
        assert (counts["jet"], counts["call"]) == (jets, calls), (mode, counts)
        assert set(terms) == {"residual", "dirichlet_boundary"} and all(v > 0 for v in terms.values())


class SlowToPrepareKAN(KAN):
    """A KAN whose compiled kernels take half a second to prepare (a first build takes a minute)."""

    prepared: list = []

    def prepare_kernels(self, device):
        self.prepared.append(str(device))
        time.sleep(0.5)


def test_compiled_kernels_are_prepared_before_the_clock_starts():
    # a machine's first KAN run builds the CPU kernels (about a minute): that must not count as
    # training time, so the trainer asks the model to prepare them (kanpde.models.prepare_kernels,
    # the UsesCompiledKernels protocol) before it starts timing; an MLP has nothing to prepare
    from kanpde.models import UsesCompiledKernels
    model = SlowToPrepareKAN([1, 4, 1], grid_size=5)
    res = kanpde.solve(Poisson1D(), model, **tiny(lbfgs(2), seed=0))
    assert model.prepared == ["cpu"] and res.history["time_s"][-1] < 0.5
    assert isinstance(KAN([1, 2, 1]).layers[0], UsesCompiledKernels)
    assert not any(isinstance(m, UsesCompiledKernels) for m in MLP([1, 4, 1]).modules())


@pytest.mark.parametrize("problem_name, model_kind, derivatives, path", [
    ("burgers", "mlp", "auto", "autograd"),       # u_xx only: the MLP jet would carry t's channels too
    ("poisson", "mlp", "auto", "forward"),        # the Laplacian needs every axis: the jet
    ("burgers", "kan", "auto", "forward"),        # compiled KAN jets win either way
    ("burgers", "mlp", "forward", "forward"),     # an explicit choice is kept
    ("burgers", "mlp_fourier", "auto", "forward"),  # behind input features the jet is not slower
])
def test_auto_picks_autograd_for_an_mlp_whose_residual_skips_an_axis(tmp_path, problem_name, model_kind,
                                                                     derivatives, path):
    from kanpde.io import read_results
    from kanpde.problems.burgers import Burgers1D

    problem = Burgers1D() if problem_name == "burgers" else PaperPoisson()
    from kanpde.models import with_features

    if model_kind == "kan":
        model = KAN([2, 3, 1], grid_size=5, seed=0)
    elif model_kind == "mlp":
        model = MLP([2, 8, 8, 1], dtype=torch.float64)
    else:
        model = with_features(MLP([8, 8, 1], dtype=torch.float64), "fourier", 2, n_frequencies=4, scale=1.0)
    kanpde.solve(problem, model, output_dir=tmp_path, plots=False,
                 **tiny(lbfgs(2), derivatives=derivatives, seed=0))
    attrs = read_results(tmp_path / "results.h5").attrs
    assert (attrs["derivatives"], attrs["derivative_path"]) == (derivatives, path)


def test_the_autograd_choice_trains_like_the_forward_path():
    # the path changes the arithmetic, not the numbers: same loss trajectory to round-off
    from kanpde.problems.burgers import Burgers1D

    runs = {}
    for d in ("auto", "forward"):
        torch.manual_seed(0)
        model = MLP([2, 8, 8, 1], dtype=torch.float64)
        runs[d] = kanpde.solve(Burgers1D(), model, **tiny([{"optimizer": "adam", "steps": 20, "lr": 1e-2}],
                                                          derivatives=d, seed=0))
    np.testing.assert_allclose(runs["auto"].history["loss"], runs["forward"].history["loss"], rtol=1e-9)


@pytest.mark.parametrize("problem, model, error, message", [
    (PaperPoisson, KAN([2, 3, 1]), TypeError, "got the class PaperPoisson; create one first, e.g. PaperPoisson()"),
    (PaperPoisson(), "kan", TypeError, "model must be a torch.nn.Module"),
    (PaperPoisson(), KAN, TypeError, "got the class KAN; create one first, e.g. KAN([2, 10, 1])"),
    (PaperPoisson(), KAN([3, 3, 1]), ValueError, "it takes 3 inputs and gives 1 outputs (widths [3, 3, 1]); "
                                                 "the problem has 2 inputs and 1 outputs"),
    (PaperPoisson(), MLP([2, 4, 2]), ValueError, "gives 2 outputs"),
])
def test_wrong_problem_or_model_is_refused_before_training(tmp_path, problem, model, error, message):
    with pytest.raises(error, match=re.escape(message)):
        kanpde.solve(problem, model, output_dir=tmp_path, **tiny(lbfgs(1)))
    assert not any(tmp_path.iterdir())  # nothing written
