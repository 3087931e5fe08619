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
