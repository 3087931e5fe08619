"""kanpde.training.lbfgs: the compact-form L-BFGS against the two-loop recursion and torch's
optimizer, its history bookkeeping, reuse of the last evaluation and state round trips."""
from __future__ import annotations

import copy

import pytest
import torch

from kanpde.training.lbfgs import LBFGS, lbfgs_direction

D = torch.float64


def two_loop(g, pairs, gamma):
    """-H g by the textbook two-loop recursion (Nocedal & Wright, Algorithm 7.4)."""
    q = g.clone()
    alphas = []
    for s, y in reversed(pairs):
        a = s.dot(q) / y.dot(s)
        q -= a * y
        alphas.append(a)
    r = gamma * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        b = y.dot(r) / y.dot(s)
        r += (a - b) * s
    return -r


def random_pairs(n, m, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=D)
    hess = a @ a.t() / n + 0.5 * torch.eye(n, dtype=D)  # y = A s with A positive definite
    pairs = []
    for _ in range(m):
        s = torch.randn(n, generator=gen, dtype=D)
        pairs.append((s, hess @ s))
    return pairs, torch.randn(n, generator=gen, dtype=D)


@pytest.mark.parametrize("m", [1, 2, 7, 20])
def test_compact_direction_equals_the_two_loop_recursion(m):
    pairs, g = random_pairs(40, m, seed=m)
    S = torch.stack([s for s, _ in pairs])
    Y = torch.stack([y for _, y in pairs])
    s, y = pairs[-1]
    gamma = float(s.dot(y) / y.dot(y))
    d = lbfgs_direction(g, S, Y, S @ Y.t(), Y @ Y.t(), gamma)
    ref = two_loop(g, pairs, gamma)
    assert torch.allclose(d, ref, rtol=1e-11, atol=1e-12 * ref.abs().max())
    # the newest pair satisfies the secant equation H y = s
    hy = -lbfgs_direction(y, S, Y, S @ Y.t(), Y @ Y.t(), gamma)
    assert torch.allclose(hy, s, rtol=1e-10, atol=1e-10)


def test_empty_history_is_a_scaled_gradient_step():
    g = torch.tensor([1.0, -2.0, 3.0], dtype=D)
    e = g.new_empty(0, 3)
    assert torch.equal(lbfgs_direction(g, e, e, g.new_empty(0, 0), g.new_empty(0, 0), 0.5), -0.5 * g)


def problem(n=60, seed=0):
    """A smooth, strictly convex test function of one (n,) parameter and a (3, 4) one."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n + 12, n + 12, generator=gen, dtype=D) / (n + 12) ** 0.5
    hess = a @ a.t() + 0.1 * torch.eye(n + 12, dtype=D)
    b = torch.randn(n + 12, generator=gen, dtype=D)
    params = [torch.nn.Parameter(torch.randn(n, generator=gen, dtype=D)),
              torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=D))]

    def loss_of(ps):
        v = torch.cat([p.reshape(-1) for p in ps])
        return 0.5 * v @ (hess @ v) - b @ v + torch.log(torch.cosh(v)).sum()
    return params, loss_of


def run(cls, steps, max_iter=5, line_search="strong_wolfe", **kw):
    params, loss_of = problem()
    opt = cls(params, lr=1.0, max_iter=max_iter, history_size=8, tolerance_grad=0.0, tolerance_change=0.0,
              line_search_fn=line_search, **kw)
    calls = [0]

    def closure():
        calls[0] += 1
        opt.zero_grad(set_to_none=True)
        loss = loss_of(params)
        loss.backward()
        return loss
    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return losses, [p.detach().clone() for p in params], opt, calls[0]


@pytest.mark.parametrize("line_search", ["strong_wolfe", None])
def test_iterates_match_torch_lbfgs(line_search):
    # same iteration, direction equal up to round-off: the iterates agree to near round-off
    # over 28 iterations (up to 5 per step, max_eval 6), well past the 8 pairs of history
    ours, p_ours, opt, _ = run(LBFGS, 6, line_search=line_search)
    ref, p_ref, opt_ref, _ = run(torch.optim.LBFGS, 6, line_search=line_search)
    for a, b in zip(ours, ref):
        assert abs(a - b) <= 1e-10 * max(1.0, abs(b))
    for a, b in zip(p_ours, p_ref):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-9)
    st, st_ref = opt.state[opt._params[0]], opt_ref.state[opt_ref.param_groups[0]["params"][0]]
    assert st["n_iter"] == st_ref["n_iter"] >= 20
    assert st["func_evals"] == st_ref["func_evals"]


def test_history_is_capped_and_its_products_stay_consistent():
    _, _, opt, _ = run(LBFGS, 8)
    st = opt.state[opt._params[0]]
    S, Y = st["S"], st["Y"]
    assert S.shape == Y.shape == (8, 72)
    assert torch.allclose(st["SY"], S @ Y.t(), rtol=1e-12, atol=1e-12)
    assert torch.allclose(st["YY"], Y @ Y.t(), rtol=1e-12, atol=1e-12)
    assert bool((st["SY"].diagonal() > 1e-10).all())


def test_reuse_skips_the_repeated_evaluation_and_changes_nothing():
    ours, p_ours, _, calls = run(LBFGS, 6, reuse_evaluation=True)
    plain, p_plain, _, calls_plain = run(LBFGS, 6)
    assert ours == plain  # bit for bit
    assert all(torch.equal(a, b) for a, b in zip(p_ours, p_plain))
    assert calls == calls_plain - 5  # one closure call saved per step after the first


def test_reuse_re_evaluates_after_a_parameter_changes():
    params, loss_of = problem()
    opt = LBFGS(params, max_iter=3, history_size=5, line_search_fn="strong_wolfe", reuse_evaluation=True)
    seen = []

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(params)
        loss.backward()
        seen.append(float(loss.detach()))
        return loss
    opt.step(closure)
    with torch.no_grad():
        params[1].mul_(0.5)  # moved by someone else: the cached loss is stale
    expected = float(loss_of(params).detach())
    before = len(seen)
    assert float(opt.step(closure).detach()) == expected
    assert seen[before] == expected  # the step began with a fresh evaluation


def test_state_dict_round_trip_continues_bit_identically():
    params, loss_of = problem()
    kw = dict(lr=1.0, max_iter=4, history_size=6, tolerance_grad=0.0, tolerance_change=0.0,
              line_search_fn="strong_wolfe", reuse_evaluation=True)

    def closure_for(opt, ps):
        def closure():
            opt.zero_grad(set_to_none=True)
            loss = loss_of(ps)
            loss.backward()
            return loss
        return closure
    opt = LBFGS(params, **kw)
    for _ in range(3):
        opt.step(closure_for(opt, params))
    saved_state = copy.deepcopy(opt.state_dict())
    saved_params = [p.detach().clone() for p in params]
    for _ in range(3):
        opt.step(closure_for(opt, params))
    params2 = [torch.nn.Parameter(p.clone()) for p in saved_params]
    opt2 = LBFGS(params2, **kw)
    opt2.load_state_dict(saved_state)
    for _ in range(3):
        opt2.step(closure_for(opt2, params2))
    assert all(torch.equal(a, b) for a, b in zip(params, params2))


@pytest.mark.parametrize("kw, name", [({"lr": 0.0}, "lr"), ({"history_size": 0}, "history_size"),
                                      ({"line_search_fn": "armijo"}, "line_search_fn")])
def test_bad_arguments_are_named(kw, name):
    with pytest.raises(ValueError, match=name):
        LBFGS([torch.nn.Parameter(torch.zeros(2, dtype=D))], **kw)


def test_closure_is_required():
    opt = LBFGS([torch.nn.Parameter(torch.zeros(2, dtype=D))])
    with pytest.raises(ValueError, match="closure"):
        opt.step(None)


def test_optimizer_interface():
    params, loss_of = problem()
    opt = LBFGS([{"params": params, "lr": 0.5}], history_size=4, line_search_fn="strong_wolfe")
    assert opt.param_groups[0]["lr"] == 0.5 and "lr=0.5" in repr(opt)
    loss_of(params).backward()
    opt.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][0]["history_size"] == 4
    other = LBFGS([torch.nn.Parameter(torch.zeros(3, dtype=D))])
    with pytest.raises(ValueError, match="expected one parameter group of 1 parameters"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="single parameter group"):
        LBFGS([{"params": params[:1]}, {"params": params[1:]}])
    with pytest.raises(ValueError, match="more than once"):
        LBFGS([params[0], params[0]])
    with pytest.raises(TypeError, match="single tensor"):
        LBFGS(params[0])


def test_an_lbfgs_run_does_not_import_torch_dynamo():
    # torch.optim.Optimizer imports torch._dynamo (about 2 s) on first use; the trainer's
    # L-BFGS does not derive from it, so an L-BFGS-only solve never pays that
    import subprocess
    import sys
    code = ("import sys, kanpde; from kanpde.models import KAN; from kanpde.problems.poisson import Poisson1D; "
            "kanpde.solve(Poisson1D(), KAN([1, 4, 1]), optim={'stages': [{'optimizer': 'lbfgs', 'steps': 3}]}, "
            "sampler={'n_interior': 50, 'n_boundary': 4}, eval={'n_points': 50, 'every': 3}, progress=False); "
            "print('dynamo' if 'torch._dynamo' in sys.modules else 'clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("clean"), out.stdout
