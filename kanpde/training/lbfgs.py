"""L-BFGS with its curvature history kept as matrices.

:class:`LBFGS` runs the same iteration as ``torch.optim.LBFGS`` (same options, same
strong-Wolfe line search, same stopping tests, same curvature-pair rule ``y.s > 1e-10``), but
computes the search direction ``-H g`` from the compact representation of the L-BFGS inverse
Hessian (Byrd, Nocedal & Schnabel, "Representations of quasi-Newton matrices and their use in
limited memory methods", Math. Programming 63, 1994, eq. 3.1 and sec. 4):

    H = gamma I + [S  gamma Y] [[R^-T (D + gamma Y^T Y) R^-1, -R^-T], [-R^-1, 0]] [S^T; gamma Y^T]

with ``S``/``Y`` the stored steps and gradient changes (rows, oldest first), ``R`` the upper
triangle of ``S Y^T``, ``D`` its diagonal and ``gamma = y.s / y.y`` of the newest pair.  That
is two matrix-vector products, two triangular solves of the history size and two more
products, instead of the two-loop recursion's four small operations per stored pair; for the
small networks of PINN training (hundreds to thousands of parameters, history 50) the
recursion's per-operation overhead was the larger part of an iteration's cost outside the loss.
The direction equals the recursion's up to round-off.

The line search works on one flat vector of all parameters (``parameters_to_vector`` order):
a trial point costs one loss-and-gradient call plus a copy and an update per parameter tensor.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

__all__ = ["LBFGS", "lbfgs_direction"]

try:  # the line search shared with torch.optim.LBFGS (present since torch 1.4)
    from torch.optim.lbfgs import _strong_wolfe
except ImportError:  # pragma: no cover - a future torch without it: callers fall back
    _strong_wolfe = None

#: whether :class:`LBFGS` can run with this torch (otherwise use ``torch.optim.LBFGS``)
AVAILABLE = _strong_wolfe is not None


def lbfgs_direction(g: torch.Tensor, S: torch.Tensor, Y: torch.Tensor, SY: torch.Tensor,
                    YY: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """``-H g`` for the L-BFGS inverse Hessian of the pairs ``(S[i], Y[i])`` (oldest first).

    ``g`` ``(n,)``; ``S``, ``Y`` ``(m, n)``; ``SY[i, j] = S[i].Y[j]`` and ``YY = Y Y^T``
    ``(m, m)``; ``gamma`` the initial scaling ``H_0 = gamma I``.  Every pair needs
    ``S[i].Y[i] > 0``.  ``m = 0`` gives ``-gamma g``.
    """
    if S.shape[0] == 0:
        return g.mul(-gamma)
    ab = torch.stack([S @ g, Y @ g], 1)  # (m, 2): S g, Y g
    R = SY.triu()
    p = torch.linalg.solve_triangular(R, ab[:, :1], upper=True)  # R^-1 S g
    rhs = torch.addmm(SY.diagonal().unsqueeze(1) * p, YY, p, alpha=gamma).sub_(ab[:, 1:], alpha=gamma)
    c = torch.linalg.solve_triangular(R.t(), rhs, upper=False)
    hg = torch.addmv(g.mul(gamma), S.t(), c.squeeze(1))
    hg = torch.addmv(hg, Y.t(), p.squeeze(1), alpha=-gamma)
    return hg.neg_()


class LBFGS:
    """Limited-memory BFGS (one parameter group), a drop-in for ``torch.optim.LBFGS``.

    Arguments as in ``torch.optim.LBFGS``: ``lr`` (step length of every iteration after the
    first), ``max_iter`` (iterations per :meth:`step`), ``max_eval`` (loss evaluations per
    :meth:`step`, default ``1.25 * max_iter``), ``tolerance_grad`` (stop when the largest
    gradient entry is at most this), ``tolerance_change`` (stop when the step or the loss change
    is below this), ``history_size`` (curvature pairs kept) and ``line_search_fn`` (``None`` or
    ``"strong_wolfe"``).  See the module docstring for what differs inside.

    ``reuse_evaluation=True`` (kanpde's trainer): a :meth:`step` that starts where the previous
    one ended, with no parameter changed in between, takes the loss and gradient there from that
    step's line search instead of calling ``closure`` once more.  Only valid while the loss
    function itself stays the same between calls (the trainer makes a new optimizer whenever it
    resamples points or moves the grid); ``torch.optim.LBFGS`` always re-evaluates.

    It has the optimizer interface the trainer and checkpoints use (``step``, ``zero_grad``,
    ``state_dict``/``load_state_dict`` in ``torch.optim`` format, ``param_groups``, ``state``)
    but is not a ``torch.optim.Optimizer`` subclass: that base class imports ``torch._dynamo`` on
    first use, about 2 s per process, which an L-BFGS-only run never needs.  So it does not work
    with ``torch.optim.lr_scheduler`` (L-BFGS takes no schedule in kanpde).
    """

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None, reuse_evaluation: bool = False):
        if not AVAILABLE:
            raise RuntimeError("kanpde's LBFGS needs torch.optim.lbfgs._strong_wolfe, which this torch "
                               "lacks; use torch.optim.LBFGS")
        if not lr > 0:
            raise ValueError(f"LBFGS: lr must be > 0, got {lr!r}")
        if history_size < 1:
            raise ValueError(f"LBFGS: history_size must be >= 1, got {history_size!r}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        if isinstance(params, torch.Tensor):
            raise TypeError("LBFGS: params must be an iterable of tensors, got a single tensor; "
                            "wrap it in a list")
        params = list(params)
        if params and isinstance(params[0], dict):
            if len(params) != 1:
                raise ValueError(f"LBFGS supports a single parameter group, got {len(params)}")
            group = dict(params[0])
            params = list(group.pop("params"))
            defaults.update(group)
        if not params:
            raise ValueError("LBFGS got an empty parameter list")
        for p in params:
            if not isinstance(p, torch.Tensor) or not p.is_leaf:
                raise TypeError(f"LBFGS can only optimize leaf tensors, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("LBFGS: a parameter appears more than once in params")
        self.defaults = defaults
        self.param_groups = [dict(defaults, params=params)]
        self.state: dict = defaultdict(dict)
        self._params = params
        self.reuse_evaluation = bool(reuse_evaluation)
        self._last: tuple | None = None  # (parameter versions, loss, flat gradient) after a step

    def _versions(self) -> tuple:
        return tuple((id(p), p.data_ptr(), p._version) for p in self._params)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"LBFGS({opts}, reuse_evaluation={self.reuse_evaluation})"

    # ------------------------------------------------------------------ optimizer interface
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the parameters' gradients (``None`` them, or zero them in place)."""
        for p in self._params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().zero_()

    def state_dict(self) -> dict:
        """Options and state in ``torch.optim`` layout: parameters as indices, state by index
        (the state tensors themselves, not copies, as ``torch.optim`` does)."""
        index = {id(p): i for i, p in enumerate(self._params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self._params)))
        return {"state": {index[id(p)]: st for p, st in self.state.items() if id(p) in index},
                "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`'s output (options and state; floating state tensors are
        cast to their parameter's dtype and device)."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not groups or len(groups) != 1 or len(groups[0].get("params", ())) != len(self._params):
            got = None if not groups else [len(g.get("params", ())) for g in groups]
            raise ValueError(f"LBFGS.load_state_dict: expected one parameter group of {len(self._params)} "
                             f"parameters, got groups of sizes {got}")
        self.param_groups[0].update({k: v for k, v in groups[0].items() if k != "params"})
        self.state = defaultdict(dict)
        for i, st in state_dict.get("state", {}).items():
            p = self._params[int(i)]
            self.state[p] = {k: (v.to(device=p.device, dtype=p.dtype) if isinstance(v, torch.Tensor)
                                 and v.is_floating_point() else v) for k, v in st.items()}
        self._last = None

    # ------------------------------------------------------------------ flat views
    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel())
                          for p in self._params])

    def _flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _set_flat(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            offset = 0
            for p in self._params:
                n = p.numel()
                p.copy_(x[offset:offset + n].view_as(p))
                offset += n

    def _step_along(self, t: float, d: torch.Tensor) -> None:
        with torch.no_grad():
            offset = 0
            for p in self._params:
                n = p.numel()
                p.add_(d[offset:offset + n].view_as(p), alpha=t)
                offset += n

    # ------------------------------------------------------------------ history
    def _push(self, state: dict, s: torch.Tensor, y: torch.Tensor) -> None:
        """Append the pair ``(s, y)``, dropping the oldest when the history is full."""
        hist = self.param_groups[0]["history_size"]
        S, Y = state.get("S"), state.get("Y")
        if S is None or S.shape[1] != s.numel():
            S, Y = s.new_empty(0, s.numel()), s.new_empty(0, s.numel())
            state["SY"], state["YY"] = s.new_empty(0, 0), s.new_empty(0, 0)
        if S.shape[0] >= hist:
            S, Y = S[1:], Y[1:]
            state["SY"], state["YY"] = state["SY"][1:, 1:], state["YY"][1:, 1:]
        S = torch.cat([S, s.unsqueeze(0)])
        Y = torch.cat([Y, y.unsqueeze(0)])
        # new last row and column of S Y^T and Y Y^T
        sy_row, sy_col, yy_col = S @ y, Y @ s, Y @ y
        m = S.shape[0]
        SY = s.new_empty(m, m)
        SY[:-1, :-1] = state["SY"]
        SY[:, -1] = sy_row  # S[i].y
        SY[-1, :] = sy_col  # s.Y[j]
        YY = s.new_empty(m, m)
        YY[:-1, :-1] = state["YY"]
        YY[:, -1] = yy_col
        YY[-1, :] = yy_col
        state["S"], state["Y"], state["SY"], state["YY"] = S, Y, SY, YY

    # ------------------------------------------------------------------ the iteration
    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run up to ``max_iter`` iterations; ``closure`` clears the gradients, computes the
        loss, calls ``backward()`` and returns the loss."""
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that returns the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        last, self._last = self._last, None
        if self.reuse_evaluation and last is not None and last[0] == self._versions():
            loss, g = last[1], last[2]
            orig_loss = g.new_tensor(loss)
            evals = 1  # counted against max_eval as if evaluated: the same iterates either way
        else:
            orig_loss = closure()
            loss = float(orig_loss)
            evals = 1
            state["func_evals"] += 1
            g = self._flat_grad()
        if g.abs().max() <= tol_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        gamma = state.get("gamma", 1.0)
        prev_g, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        it = 0
        while it < max_iter:
            it += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                for key in ("S", "Y", "SY", "YY"):
                    state.pop(key, None)
                gamma = 1.0
                d = g.neg()
            else:
                y = g - prev_g
                s = d.mul(t)
                ys = float(y.dot(s))
                if ys > 1e-10:
                    self._push(state, s, y)
                    gamma = ys / float(y.dot(y))
                if "S" in state:
                    d = lbfgs_direction(g, state["S"], state["Y"], state["SY"], state["YY"], gamma)
                else:
                    d = g.mul(-gamma)
            prev_g = g.clone(memory_format=torch.contiguous_format)
            prev_loss = loss
            t = min(1.0, 1.0 / float(g.abs().sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(g.dot(d))
            if gtd > -tol_change:
                break
            if group["line_search_fn"] == "strong_wolfe":
                x0 = self._flat_params()

                def along(x, step, direction):
                    self._set_flat(x)
                    self._step_along(step, direction)
                    value = float(closure())
                    grad = self._flat_grad()
                    return value, grad

                loss, g, t, ls_evals = _strong_wolfe(along, x0, t, d, loss, g, gtd)
                self._set_flat(x0)
                self._step_along(t, d)
            else:
                self._step_along(t, d)
                ls_evals = 0
                if it != max_iter:
                    loss = float(closure())
                    g = self._flat_grad()
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals
            if it == max_iter or evals >= max_eval:
                break
            if g.abs().max() <= tol_grad:
                break
            if d.mul(t).abs().max() <= tol_change or abs(loss - prev_loss) < tol_change:
                break
        state.update(d=d, t=t, gamma=gamma, prev_flat_grad=prev_g, prev_loss=prev_loss)
        if self.reuse_evaluation and (group["line_search_fn"] == "strong_wolfe" or it < max_iter):
            # loss and g were evaluated at exactly the parameters the step ends on
            self._last = (self._versions(), loss, g)
        return orig_loss
