"""What the custom autograd nodes of a KAN layer ask of autograd: whether the running backward
pass needs a gradient, a cache key for a tensor's contents, and the memory-layout changes
(points-innermost planes) that keep every product of the nested passes contiguous."""
from __future__ import annotations

import torch

__all__ = ["input_needed", "tensor_key", "Transpose", "as_planes", "to_planes", "flat_planes"]


def input_needed(ctx, index: int, t: torch.Tensor) -> bool:
    """Whether the running backward pass needs the gradient of input ``index`` (``t``).

    ``ctx.needs_input_grad`` only says whether ``t`` requires grad; a nested
    ``torch.autograd.grad(..., inputs=x)`` (a Laplacian) does not need the parameter side, so
    skip it when the engine will not run ``t``'s node (its ``grad_fn``, or for a leaf such as a
    base weight its gradient accumulator).
    """
    if not ctx.needs_input_grad[index]:
        return False
    try:
        fn = t.grad_fn if t.grad_fn is not None else torch.autograd.graph.get_gradient_edge(t).node
        return bool(torch._C._will_engine_execute_node(fn))
    except (AttributeError, RuntimeError):  # private API: be conservative
        return True


def tensor_key(t: torch.Tensor) -> tuple:
    """Cache key of a tensor's current contents; a cache must also hold ``t`` itself, so that
    its ``id`` cannot be reused by another tensor while the entry lives."""
    return id(t), t._version, t.data_ptr()


class Transpose(torch.autograd.Function):
    """``h.t()`` as a contiguous copy, whose gradient (to any order) is again a contiguous
    transposed copy.  Point-major inputs enter the planar edge functions through it, so the
    gradients that nested backward passes send back to them are planes too (a plain ``.t()``
    view would hand them point-major seeds and every product downstream would run strided)."""

    @staticmethod
    def forward(ctx, h):
        return h.t().contiguous()

    @staticmethod
    def backward(ctx, grad):
        return Transpose.apply(grad)


def as_planes(h: torch.Tensor) -> torch.Tensor:
    """The layer input ``h`` ``(N, in)`` as contiguous ``(in, N)`` planes, differentiably (free
    when ``h`` is already a transposed view of planes, as edge-by-edge layers return)."""
    ht = h.t()
    return ht if ht.is_contiguous() else Transpose.apply(h)


def to_planes(t: torch.Tensor) -> torch.Tensor:
    """``(N, a, b)`` -> contiguous ``(a, b, N)`` (free for the views the edge jets return)."""
    return t.permute(1, 2, 0).contiguous()


def flat_planes(y: torch.Tensor) -> torch.Tensor:
    """``(O, in, N)`` planes as ``(O, in * N)``, or ``(O, 1, N)`` when ``y`` is broadcast over
    the inputs (the gradient of a sum over them), which the table adjoint expands itself."""
    if y.shape[1] > 1 and y.stride(1) == 0:
        return y[:, :1]
    return y.reshape(y.shape[0], -1)
