"""Shared test helpers: reference derivatives by nested autograd."""
import torch


def autograd_jet(model, x):
    """Value, gradient and Hessian diagonal of ``model`` at ``x`` by nested autograd."""
    x = x.detach().clone().requires_grad_(True)
    u = model(x)
    grads, hess = [], []
    for k in range(u.shape[1]):
        (g,) = torch.autograd.grad(u[:, k].sum(), x, create_graph=True)
        grads.append(g)
        hess.append(torch.stack([
            torch.autograd.grad(g[:, j].sum(), x, create_graph=True, materialize_grads=True)[0][:, j]
            for j in range(x.shape[1])
        ], dim=1))
    return u, torch.stack(grads, 1), torch.stack(hess, 1)


def assert_close(actual, expected, tol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


def assert_jet_matches_autograd(model, x):
    """``model.forward_jet(x)`` equals nested autograd, both through the model's first-layer
    shortcut and through the generic chain from the identity seed."""
    from kanpde.models import Jet

    u, g, h = autograd_jet(model, x)
    jet = model.forward_jet(x)
    n, d, m = x.shape[0], x.shape[1], u.shape[1]
    assert jet.value.shape == (n, m)
    assert jet.grad.shape == jet.hess_diag.shape == (n, m, d)
    assert_close(jet.value, u)
    assert_close(jet.grad, g)
    assert_close(jet.hess_diag, h)
    generic = Jet.seed(x)
    for layer in model.layers:
        generic = layer.forward_jet(generic)
    assert_close(generic.grad, g)
    assert_close(generic.hess_diag, h)


def fit_lbfgs(model, x, y, **lbfgs_options):
    """Least-squares fit of ``model(x)`` to ``y`` with one strong-Wolfe L-BFGS call;
    returns the final mean squared error."""
    opt = torch.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe", **lbfgs_options)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return ((model(x) - y) ** 2).mean().item()


def assert_residual_param_grads_match(model, x, f):
    """Parameter gradients of a residual loss on value, gradient and Laplacian are the same
    through ``forward_jet`` and through nested autograd."""
    params = list(model.parameters())
    kw = {"allow_unused": True, "materialize_grads": True}
    jet = model.forward_jet(x)
    loss_jet = ((jet.hess_diag.sum(-1) - f) ** 2).mean() + (jet.grad ** 2).mean() + (jet.value ** 2).mean()
    g_jet = torch.autograd.grad(loss_jet, params, **kw)
    u, g, h = autograd_jet(model, x)
    loss_ag = ((h.sum(-1) - f) ** 2).mean() + (g ** 2).mean() + (u ** 2).mean()
    g_ag = torch.autograd.grad(loss_ag, params, **kw)
    assert_close(loss_jet, loss_ag)
    for a, b in zip(g_jet, g_ag):
        assert_close(a, b)


class JetOf(torch.nn.Module):
    """Exposes ``forward_jet`` as ``forward`` so that ``functional_call`` can swap parameters."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        jet = self.model.forward_jet(x)
        return jet.value, jet.grad, jet.hess_diag


def tiny(stages, *, weights=None, n_interior=200, n_boundary=50, n_points=400, every=10, grid_update_every=0,
         grid_update_until=0, resample_every=0, **top):
    """``kanpde.solve`` keywords for a run with a tiny budget: the given ``stages`` (dicts), no
    loss weights and no grid updates unless asked, 200 collocation points, errors on 400 points
    every 10 steps, no progress bar; ``top``: other top-level settings (seed, derivatives, stop,
    ...)."""
    return dict(optim={"stages": stages, "weights": dict(weights or {}), "grid_update_every": grid_update_every,
                       "grid_update_until": grid_update_until},
                sampler={"n_interior": n_interior, "n_boundary": n_boundary, "resample_every": resample_every},
                eval={"n_points": n_points, "every": every}, progress=False, **top)


def lbfgs(steps, **stage):
    """One L-BFGS stage of ``steps`` steps (``stage``: other Stage settings)."""
    return [{"optimizer": "lbfgs", "steps": steps, "lr": 1.0, **stage}]


def assert_model_gradchecks(model, x):
    """gradcheck and gradgradcheck of ``model`` in its inputs and parameters, and gradcheck of its
    jet (``forward_jet`` through :class:`JetOf`), at float64 points ``x`` that require grad."""
    from torch.func import functional_call

    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def forward(x, *ps):
        return functional_call(model, dict(zip(names, ps)), (x,))

    def jet(x, *ps):
        return functional_call(JetOf(model), {f"model.{n}": p for n, p in zip(names, ps)}, (x,))

    assert torch.autograd.gradcheck(forward, (x, *params))
    assert torch.autograd.gradgradcheck(forward, (x, *params))
    assert torch.autograd.gradcheck(jet, (x, *params))
