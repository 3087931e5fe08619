"""Training methods for hard PDEs against known behaviour: RAR adds the points of largest
residual, RAD samples by its law, gradient-norm balancing equalises gradient norms, causal
weights are monotone in time, attention weights follow their update rule; and every method runs
through kanpde.solve, resumes exactly and logs what it does."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

import kanpde
from kanpde.models import KAN, MLP
from kanpde.problems.heat import Heat1D
from kanpde.problems.poisson import Poisson1D
from kanpde.training import SolveOptions, Trainer, TrainerPlugin
from kanpde.training.plugins import AdaptiveSampling, CausalWeights, GradNormBalancing, ResidualAttention
from kanpde.training.plugins.adaptive_sampling import rad_probabilities
from kanpde.training.plugins.causal import causal_weights
from tests.helpers import lbfgs, tiny


def zero_mlp(d=1):
    """An MLP that is identically 0 (last layer zero): the residual is then minus the source."""
    model = MLP([d, 4, 1]).double()
    with torch.no_grad():
        model.layers[-1].weight.zero_()
        model.layers[-1].bias.zero_()
    return model


def trainer_for(problem, model, *plugins, **settings):
    trainer = Trainer(problem, model, SolveOptions.from_kwargs(**tiny(lbfgs(1), **settings)), plugins=plugins)
    trainer.resample(0)
    return trainer


def test_rar_adds_the_candidates_of_largest_residual():
    # u = 0 on Poisson1D (k = 2): |r| = (2 pi)^2 |sin(2 pi x)|, largest at x = +-1/4, +-3/4
    rar = AdaptiveSampling("rar", every=10, pool=4000, n_add=50)
    trainer = trainer_for(Poisson1D(), zero_mlp(), rar, n_interior=100)
    before = trainer.collocation.clone()
    trainer.step = 10
    rar.on_step_end(trainer)
    assert trainer.collocation.shape == (150, 1) and torch.equal(trainer.collocation[:100], before)
    added = trainer.collocation[100:, 0]
    assert (torch.sin(2 * math.pi * added).abs() > 0.99).all()
    # and they are the pool's top 50: the residual there is at least that anywhere else in the pool
    pool = Poisson1D().domain.sample_interior(4000, method="uniform", seed=trainer.seed_for(10, 7919)).double()
    r = (2 * math.pi) ** 2 * torch.sin(2 * math.pi * pool[:, 0]).abs()
    assert r.topk(50).values.min() <= (2 * math.pi) ** 2 * torch.sin(2 * math.pi * added).abs().min() + 1e-9


def test_rad_samples_by_its_law():
    # u = 0: |r(x)| = c0 |sin(2 pi x)| on [-1, 1]; RAD with k = 2, c = 0.5 must draw from
    # p(x) ∝ sin^2(2 pi x) / mean(sin^2) + 0.5 = 2 sin^2(2 pi x) + 0.5 (mean of sin^2 is 1/2)
    rad = AdaptiveSampling("rad", every=10, pool=200_000, k=2.0, c=0.5)
    trainer = trainer_for(Poisson1D(), zero_mlp(), rad, n_interior=20_000)
    trainer.step = 10
    rad.on_step_end(trainer)
    x = trainer.collocation[:, 0].numpy()
    assert x.shape == (20_000,) and np.unique(x).size == 20_000  # without replacement
    edges = np.linspace(-1, 1, 41)
    observed, _ = np.histogram(x, edges)
    density = lambda s: 2 * np.sin(2 * np.pi * s) ** 2 + 0.5  # noqa: E731
    fine = np.linspace(-1, 1, 40 * 200 + 1)
    mass = np.array([np.trapezoid(density(fine[i * 200:(i + 1) * 200 + 1]), fine[i * 200:(i + 1) * 200 + 1])
                     for i in range(40)])
    expected = observed.sum() * mass / mass.sum()
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3
    # a uniform law would be rejected outright
    assert scipy.stats.chisquare(observed, np.full(40, observed.sum() / 40)).pvalue < 1e-10


def test_rad_probabilities_follow_the_formula():
    r = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    p = rad_probabilities(r, k=2.0, c=1.0)
    want = r ** 2 / (r ** 2).mean() + 1.0
    torch.testing.assert_close(p, want / want.sum(), rtol=1e-15, atol=0)
    torch.testing.assert_close(rad_probabilities(torch.zeros(4, dtype=torch.float64), 2.0, 0.0),
                               torch.full((4,), 0.25, dtype=torch.float64))


def test_gradnorm_balancing_equalises_the_gradient_norms():
    balance = GradNormBalancing(every=10, alpha=0.0)
    trainer = trainer_for(Poisson1D(), KAN([1, 5, 1], grid_size=5, seed=0).double(), balance,
                          weights={"residual": 0.01})
    balance.update(trainer)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    terms = trainer.loss_terms()
    weights = trainer.term_weights(terms)
    norms = []
    for name, term in terms.items():
        grads = torch.autograd.grad(term * weights[name] * balance.factors[name], params, retain_graph=True,
                                    allow_unused=True)
        norms.append(math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None)))
    assert len(norms) == 2 and norms[0] == pytest.approx(norms[1], rel=1e-10)
    assert math.prod(balance.factors.values()) != 1.0  # the terms were far from balanced
    # the moving average: alpha = 0.5 moves halfway from the old factors to the new ones
    half = GradNormBalancing(every=10, alpha=0.5)
    half.factors = {k: 1.0 for k in balance.factors}
    half.update(trainer)
    for k in balance.factors:
        assert half.factors[k] == pytest.approx(0.5 + 0.5 * balance.factors[k], rel=1e-10)


def test_causal_weights_are_monotone_and_reach_one_without_residual():
    losses = torch.tensor([0.5, 0.1, 2.0, 0.0, 0.3], dtype=torch.float64)
    w = causal_weights(losses, eps=1.5)
    assert w[0] == 1.0 and (w.diff() <= 0).all()
    torch.testing.assert_close(w, torch.exp(-1.5 * torch.tensor([0.0, 0.5, 0.6, 2.6, 2.6], dtype=torch.float64)))
    assert (causal_weights(torch.zeros(5, dtype=torch.float64), eps=100.0) == 1.0).all()
    # per point: the weighted mean is (1 / M) sum_i w_i L_i over the time slices
    plugin = CausalWeights(chunks=4, eps=2.0)
    trainer = trainer_for(Heat1D(), MLP([2, 4, 1]).double(), plugin)
    plugin.on_train_start(trainer)
    trainer.loss_terms()  # the trainer learns the names of the PDE's residual terms
    x = trainer.collocation
    r = torch.sin(7 * x[:, :1]) + x[:, 1:]  # any residual
    plugin.weights = None  # as before the first step: from the residual at hand
    pw = plugin.point_weights(trainer, "residual", x, r)
    t_slice = (x[:, 1] * 4).floor().clamp(0, 3).long()
    L = torch.stack([r[t_slice == i].pow(2).mean() for i in range(4)])
    want = (causal_weights(L, 2.0) * L).mean()
    assert (pw * r[:, 0] ** 2).mean().item() == pytest.approx(want.item(), rel=1e-12)
    assert plugin.point_weights(trainer, "dirichlet_boundary", x, r) is None  # conditions unweighted
    # within a step the weights stay fixed (an L-BFGS line search sees one function); the step's
    # end takes them from the latest evaluation
    r2 = 3 * r
    assert torch.equal(plugin.point_weights(trainer, "residual", x, r2), pw)
    plugin.on_step_end(trainer)
    L2 = torch.stack([r2[t_slice == i].pow(2).mean() for i in range(4)])
    torch.testing.assert_close(plugin.weights, causal_weights(L2, 2.0))


def test_causal_training_needs_time():
    with pytest.raises(ValueError, match="needs a time-dependent problem"):
        kanpde.solve(Poisson1D(), MLP([1, 4, 1]), **tiny(lbfgs(2), methods={"causal": {"enabled": True}}))


def test_residual_attention_follows_its_update_and_restarts_with_new_points():
    rba = ResidualAttention(every=1, gamma=0.5, eta=0.1)
    trainer = trainer_for(Poisson1D(), zero_mlp(), rba, n_interior=50)
    trainer.loss_terms()
    trainer.step = 1
    rba.on_step_end(trainer)
    r = trainer.pointwise_residual(trainer.collocation)
    torch.testing.assert_close(rba.weights, 0.5 + 0.1 * r / r.max())
    rba.on_step_end(trainer)
    torch.testing.assert_close(rba.weights, 0.5 * (0.5 + 0.1 * r / r.max()) + 0.1 * r / r.max())
    x = trainer.collocation
    assert torch.equal(rba.point_weights(trainer, "residual", x, None), rba.weights.square())
    trainer.resample(1)  # new points: the weights start again at 1
    rba.on_step_end(trainer)
    torch.testing.assert_close(rba.weights, 0.999 * 0 + 0.5 + 0.1 * trainer.pointwise_residual(trainer.collocation)
                               / trainer.pointwise_residual(trainer.collocation).max())


@pytest.mark.parametrize("methods", [
    {"sampling": {"method": "rar", "every": 10, "pool": 500, "n_add": 20}},
    {"sampling": {"method": "rad", "every": 10, "pool": 1000}},
    {"balancing": {"method": "gradnorm", "every": 10}},
    {"balancing": {"method": "rba", "every": 1}},
    {"causal": {"enabled": True, "chunks": 4, "eps": 1.0, "anneal": True}},
])
def test_each_method_trains_logs_and_resumes_exactly(methods, tmp_path):
    problem = Heat1D()
    stages = [{"optimizer": "adam", "steps": 40, "lr": 5e-3}]

    def run(folder, resume=False, plugins=()):
        return kanpde.solve(problem, KAN([2, 5, 1], grid_size=5, grid_range=(0, 1), seed=0), output_dir=folder,
                            resume=resume, plots=False, plugins=plugins,
                            **tiny(stages, n_interior=300, every=10, seed=3, methods=methods))

    full = run(tmp_path / "full")

    class Kill(TrainerPlugin):
        def on_step_end(self, trainer):
            if trainer.step == 25:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "part", plugins=[Kill()])
    resumed = run(tmp_path / "part", resume=True)
    np.testing.assert_array_equal(resumed.history["loss"], full.history["loss"])
    np.testing.assert_array_equal(resumed.field["u_pred"], full.field["u_pred"])
    np.testing.assert_array_equal(resumed.field["collocation"], full.field["collocation"])
    logged = {"sampling": "collocation_points", "causal": "causal_min_weight"}
    for group, column in logged.items():
        if group in methods:
            assert np.isfinite(full.history[column]).all()
    if methods.get("balancing", {}).get("method") == "gradnorm":
        assert {"weight_residual", "weight_dirichlet_boundary", "weight_initial"} <= set(full.history)
    if methods.get("sampling", {}).get("method") == "rar":
        assert full.field["collocation"].shape == (300 + 4 * 20, 2)
