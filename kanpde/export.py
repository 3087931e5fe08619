"""``kanpde-export``: a finished run re-evaluated on a fine grid, for ParaView and publication plots.

::

    kanpde-export outputs/2026-12-07/12-00-00 --grid 200x200
    kanpde-export RUN --grid 400x100                # space-time (x, t): 400 in x, 100 in t

The grid spans the domain's bounding box with the given number of nodes per input column
(boundary included); nodes outside the domain (a disk, an L-shape) get NaN values, so the
structured grid stays whole and ParaView's Threshold filter cuts them away.  Writes
``export_<grid>.h5`` (the ``results.h5`` layout: ``/field/x``, ``u_pred``, ``u_exact`` where
the problem has an exact solution) and its XDMF files (:mod:`kanpde.xdmf`) into the run
folder, or to ``--out``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["main", "export_grid", "grid_points"]


def _parse_grid(text: str, dim: int) -> list[int]:
    try:
        counts = [int(c) for c in text.lower().split("x")]
    except ValueError:
        counts = []
    if len(counts) != dim or any(c < 2 for c in counts):
        raise ValueError(f"--grid must give {dim} node counts >= 2 joined by 'x' (one per input column), "
                         f"e.g. {'x'.join(['200'] * dim)}; got {text!r}")
    return counts


def grid_points(lo: Sequence[float], hi: Sequence[float], counts: Sequence[int]) -> np.ndarray:
    """The nodes of the tensor grid ``counts[i]`` points from ``lo[i]`` to ``hi[i]`` per axis,
    ``(prod(counts), d)``, the last axis varying fastest."""
    axes = [np.linspace(a, b, n) for a, b, n in zip(lo, hi, counts)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def export_grid(run, counts: Sequence[int], out: str | Path | None = None) -> list[Path]:
    """Evaluate ``run`` (a :class:`kanpde.loading.Run`) on the grid of ``counts`` nodes per axis
    over its domain's bounding box and write ``export_<grid>.h5`` with its XDMF files; return the
    paths written."""
    from . import io, metrics, xdmf

    problem = run.problem
    lo, hi = problem.domain.bbox
    x = grid_points(lo, hi, counts)
    inside = np.asarray(problem.domain.inside(x), dtype=bool)
    u = np.full((x.shape[0], problem.output_dim), np.nan)
    if inside.any():
        u[inside] = run.predict(x[inside])
    field = {"x": x, "u_pred": u}
    if problem.has_exact:
        exact = np.full_like(u, np.nan)
        if inside.any():
            exact[inside] = metrics.exact_arrays(problem, torch.as_tensor(x[inside]), gradients=False)[0]
        field["u_exact"] = exact
    target = Path(out) if out is not None else run.folder / f"export_{'x'.join(map(str, counts))}.h5"
    names = dict(input_names=problem.input_names, output_names=problem.component_names, time_axis=problem.time_axis)
    field.update(xdmf.xdmf_datasets(field, **names))
    attrs = {"problem": problem.name, "run": str(run.folder), "grid": "x".join(map(str, counts)),
             "points_inside": int(inside.sum())}
    paths = [io.write_results(target, attrs=attrs, metrics={}, history={}, field=field)]
    paths += xdmf.write_xdmf(target.with_suffix(".xdmf"), target.name, field, **names)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``kanpde-export``."""
    from .cli_errors import EXIT_CONFIG
    from .loading import LoadError, load, run_folder_parser

    ap = run_folder_parser("kanpde-export", __doc__)
    ap.add_argument("--grid", required=True, help="nodes per input column, e.g. 200x200 (x, t for space-time)")
    ap.add_argument("--out", default=None, help="the .h5 file to write (default: RUN/export_<grid>.h5)")
    args = ap.parse_args(argv)
    try:
        run = load(args.run, device=args.device)
        counts = _parse_grid(args.grid, run.problem.input_dim)
        if args.out is not None and Path(args.out).suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"--out must end in .h5 or .hdf5, got {args.out!r}")
        paths = export_grid(run, counts, args.out)
    except (LoadError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"kanpde-export: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print("kanpde-export: wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
