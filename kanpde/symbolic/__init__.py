"""From a trained KAN to a formula: pruning, symbolic edges, and the formula it computes.

- :func:`prune` (:mod:`.prune`): the important edges and nodes of a KAN, as a smaller KAN;
- :func:`fit_edge` (:mod:`.fit`): an edge function recognised as ``c f(a x + b) + d``, ``f`` from
  the library (:mod:`.library`);
- :class:`EdgeNetwork` (:mod:`.network`) and :func:`auto_symbolic` (:mod:`.snap`): a KAN's edges
  snapped to formulas one round at a time, with fine-tuning against the PDE in between;
- :func:`symbolic_run` (:mod:`.report`): all of it on a run folder (``kanpde-symbolic``).
"""
from .fit import EdgeFit, fit_candidate, fit_edge
from .library import DEFAULT_LIBRARY, LIBRARY, library
from .network import EdgeNetwork, FormulaEdge, SplineEdge
from .prune import Pruned, edge_importance, prune
from .report import NotAFormulaModel, symbolic_run
from .snap import SnappedEdge, auto_symbolic

__all__ = ["DEFAULT_LIBRARY", "EdgeFit", "EdgeNetwork", "FormulaEdge", "LIBRARY", "NotAFormulaModel", "Pruned",
           "SnappedEdge", "SplineEdge", "auto_symbolic", "edge_importance", "fit_candidate", "fit_edge",
           "library", "prune", "symbolic_run"]
