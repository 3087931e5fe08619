"""From a finished KAN run to a formula: prune, snap, fine-tune, write it out.

:func:`symbolic_run` does the whole reading of a run folder (``kanpde-symbolic`` and the
``symbolic=true`` switch call it) and writes, into the folder:

- ``symbolic.json``: per edge (layer, input, output) the chosen candidate, its ``a, b, c, d``
  after fine-tuning, R^2, the round it was snapped in, its importance, and the other
  candidates' R^2; the pruned widths, the formula, its errors;
- ``formula.txt``: the formula per output (and sympy's simplification and LaTeX where sympy is
  installed); its last line is ``u = <expression>`` in sympy syntax over the input names;
- ``pruned.png`` (the pruned KAN's edge functions, opacity by importance) and
  ``symbolic_fits.png`` (each edge's samples with the fitted candidate).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch

from .fit import EdgeFit
from .library import library as make_library
from .network import EdgeNetwork
from .prune import prune
from .snap import SnappedEdge, auto_symbolic

__all__ = ["symbolic_run", "NotAFormulaModel"]

_SIMPLIFY_MAX_OPS = 40


class NotAFormulaModel(ValueError):
    """The run's model cannot be read as a formula (only plain B-spline KAN runs can)."""


def _kan_of(run):
    from ..models import KAN

    model = run.model
    if not isinstance(model, KAN):
        kind = type(model).__name__
        raise NotAFormulaModel(
            f"run {str(run.folder)!r} trained a {kind}; only B-spline KAN runs can be read as formulas "
            f"(an MLP's or ChebyKAN's units are not one-variable edge functions; hard constraints and input "
            f"features wrap the KAN in another function)")
    return model


def _fine_tuner(run, steps: int):
    from ..training import SolveOptions, solve

    o = run.options

    def fine_tune(net: EdgeNetwork, n: int = steps):
        options = SolveOptions.from_kwargs(
            optim={"stages": [{"optimizer": "lbfgs", "steps": n, "lr": 1.0}], "weights": dict(o.optim.weights),
                   "grid_update_every": 0},
            sampler={"n_interior": o.sampler.n_interior, "n_boundary": o.sampler.n_boundary, "method": o.sampler.method},
            eval={"n_points": o.eval.n_points, "every": max(n, 1)}, derivatives="autograd", dtype=o.dtype,
            seed=o.seed, progress=False, device=str(run.device))
        return solve(run.problem, net, options=options, plots=False)

    return fine_tune


def _fit_json(fit: EdgeFit) -> dict:
    return {"function": fit.name, "a": fit.a, "b": fit.b, "c": fit.c, "d": fit.d, "r2": fit.r2}


def _simplified(expression: str, names: Sequence[str]) -> tuple[str, str] | None:
    try:
        import sympy
    except ImportError:
        return None
    symbols = {n: sympy.Symbol(n, real=True) for n in names}
    expr = sympy.sympify(expression, locals=symbols)
    # round-off sized numbers (a fitted shift of 1e-17) are zeros of the exact formula
    expr = expr.xreplace({f: 0 for f in expr.atoms(sympy.Float) if abs(f) < 1e-12})
    if sympy.count_ops(expr) <= _SIMPLIFY_MAX_OPS:  # simplify() can take minutes on large float expressions
        expr = sympy.simplify(expr)
    return str(expr), sympy.latex(expr)


def symbolic_run(folder, *, threshold: float = 0.01, library=None, tolerance: float = 1e-4,
                 tune_steps: int = 100, final_steps: int = 500, device: str = "cpu", plots: bool = True,
                 log=print) -> dict:
    """Read the KAN of the run in ``folder`` as a formula (see the module docstring) and write the
    files; returns the report (the content of ``symbolic.json``)."""
    from ..loading import load

    candidates = make_library(library)
    run = load(folder, device=device)
    kan = _kan_of(run)
    x = torch.as_tensor(run.field["x"], dtype=kan.layers[0].spline_weight.dtype, device=run.device) \
        if run.field else run.problem.domain.evaluation_points(run.options.eval.n_points)[0].to(run.device)
    pruned = prune(kan, x, threshold)
    log(f"kanpde-symbolic: pruned {kan.widths} to {pruned.model.widths} "
        f"({sum(len(e) for e in pruned.edges)} edges at threshold {threshold})")
    net = EdgeNetwork.from_kan(pruned.model, pruned.edges).to(run.device)
    fine_tune = _fine_tuner(run, tune_steps)
    records = auto_symbolic(net, x, candidates, lambda n: fine_tune(n), tolerance=tolerance, progress=log)
    result = fine_tune(net, final_steps)
    names = list(run.problem.input_names)
    outputs = list(run.problem.component_names)
    formulas = net.formulas(names)
    report = {
        "run": str(run.folder), "problem": run.problem.name, "original_widths": list(kan.widths),
        "pruned_widths": list(pruned.model.widths), "kept_nodes": pruned.nodes, "threshold": threshold,
        "library": [[c.name for c in layer] for layer in candidates] if isinstance(candidates[0], list)
        else [c.name for c in candidates], "inputs": names, "outputs": outputs,
        "edges": [_edge_json(r, pruned, net) for r in records],
        "formulas": dict(zip(outputs, formulas)),
        "rel_l2": result.metrics.get("rel_l2", math.nan), "rel_h1": result.metrics.get("rel_h1", math.nan),
        "network_rel_l2": run.metrics.get("rel_l2", math.nan),
    }
    simplified = {name: _simplified(f, names) for name, f in zip(outputs, formulas)}
    if all(s is not None for s in simplified.values()):
        report["simplified"] = {k: v[0] for k, v in simplified.items()}
        report["latex"] = {k: v[1] for k, v in simplified.items()}
    _write(run.folder, report, records, pruned, plots)
    log(f"kanpde-symbolic: {outputs[-1]} = {report.get('simplified', report['formulas'])[outputs[-1]]}")
    log(f"kanpde-symbolic: rel_l2 {report['rel_l2']:.3e} (the network's {report['network_rel_l2']:.3e}); "
        f"wrote symbolic.json, formula.txt" + (", pruned.png, symbolic_fits.png" if plots else ""))
    return report


def _edge_json(record: SnappedEdge, pruned, net: EdgeNetwork) -> dict:
    module = net.edge(record.l, record.q, record.p)
    a, b, c, d = (float(v) for v in module.params.detach())
    nodes_in, nodes_out = pruned.nodes[record.l], pruned.nodes[record.l + 1]
    importance = float(pruned.importance[record.l][nodes_out[record.q], nodes_in[record.p]])
    return {"layer": record.l, "in": record.p, "out": record.q, "function": record.chosen.name,
            "a": a, "b": b, "c": c, "d": d, "r2": record.chosen.r2, "round": record.round,
            "importance": importance, "candidates": [_fit_json(f) for f in record.fits]}


def _write(folder: Path, report: dict, records: list[SnappedEdge], pruned, plots: bool) -> None:
    from .. import io

    io.atomic_write(folder / "symbolic.json",
                    lambda tmp: tmp.write_text(json.dumps(report, indent=2, default=float) + "\n"))
    lines = [f"# kanpde-symbolic: problem {report['problem']}, KAN {report['original_widths']} pruned to "
             f"{report['pruned_widths']}; rel_l2 {report['rel_l2']:.3e}, rel_h1 {report['rel_h1']:.3e}"]
    for name in report["outputs"]:
        if "latex" in report:
            lines.append(f"# LaTeX: {report['latex'][name]}")
            lines.append(f"# as written: {name} = {report['formulas'][name]}")
    for name in report["outputs"]:
        lines.append(f"{name} = {report.get('simplified', report['formulas'])[name]}")
    io.atomic_write(folder / "formula.txt", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    if plots:
        from .. import plotting
        from .plots import plot_fits

        plotting.plot_activations(pruned.model, folder / "pruned.png", title="pruned KAN")
        plot_fits(records, folder / "symbolic_fits.png")
