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
