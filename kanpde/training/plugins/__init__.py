"""Trainer plugins: the extension points of the training loop and the built-in plugins that
use them (see :mod:`.base` for the hooks)."""
from .adaptive_sampling import AdaptiveSampling
from .balancing import GradNormBalancing, ResidualAttention
from .base import TrainerPlugin
from .causal import CausalWeights
from .checkpoints import Checkpoints
from .collocation import Resampling
from .evaluation import EarlyStopping, Evaluation
from .grids import GridExtension, GridUpdates

__all__ = ["TrainerPlugin", "Evaluation", "EarlyStopping", "Resampling", "GridExtension", "GridUpdates",
           "Checkpoints", "AdaptiveSampling", "GradNormBalancing", "ResidualAttention", "CausalWeights",
           "method_plugins"]


def method_plugins(methods) -> list[TrainerPlugin]:
    """The plugins that ``methods`` (a :class:`kanpde.training.options.MethodsOptions`) switches
    on: adaptive collocation, loss balancing, causal weights."""
    out: list[TrainerPlugin] = []
    sa, ba, ca = methods.sampling, methods.balancing, methods.causal
    if sa.method != "none":
        out.append(AdaptiveSampling(sa.method, sa.every, sa.pool, sa.n_add, sa.k, sa.c))
    if ba.method == "gradnorm":
        out.append(GradNormBalancing(ba.every, ba.alpha))
    elif ba.method == "rba":
        out.append(ResidualAttention(ba.every, ba.gamma, ba.eta))
    if ca.enabled:
        out.append(CausalWeights(ca.chunks, ca.eps, ca.anneal, ca.eps_max, ca.every))
    return out
