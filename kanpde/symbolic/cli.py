"""``kanpde-symbolic``: read a finished KAN run as a formula.

::

    kanpde-symbolic outputs/2026-12-07/12-00-00
    kanpde-symbolic RUN --prune 0.05 --library "x|cos,sin,x^2"    # linear first-layer edges

Prunes the run's KAN (edges below ``--prune`` of their layer's largest go), snaps every edge to a
function of ``--library`` (comma-separated; ``|`` separates per-layer libraries), fine-tunes the
formula's constants against the PDE with L-BFGS, and writes ``symbolic.json``, ``formula.txt``
(last line ``u = <expression>``, sympy syntax), ``pruned.png`` and ``symbolic_fits.png`` into the
run folder.  Only runs of a B-spline KAN (no hard constraints, no input features) can be read.
"""
from __future__ import annotations

import sys
from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``kanpde-symbolic``."""
    from ..cli_errors import EXIT_CONFIG, EXIT_PROBLEM
    from ..loading import LoadError, run_folder_parser
    from .library import DEFAULT_LIBRARY
    from .report import symbolic_run

    ap = run_folder_parser("kanpde-symbolic", __doc__)
    ap.add_argument("--prune", type=float, default=0.01,
                    help="pruning threshold, relative to each layer's largest edge (default 0.01)")
    ap.add_argument("--library", default=None,
                    help=f"candidate functions, comma-separated ('|' between layers); default: {','.join(DEFAULT_LIBRARY)}")
    ap.add_argument("--steps", type=int, default=100, help="L-BFGS steps after each snapping round (default 100)")
    ap.add_argument("--final-steps", type=int, default=500, help="L-BFGS steps of the final fine-tuning (default 500)")
    ap.add_argument("--no-plots", action="store_true", help="skip pruned.png and symbolic_fits.png")
    args = ap.parse_args(argv)
    try:
        symbolic_run(args.run, threshold=args.prune, library=args.library, tune_steps=args.steps,
                     final_steps=args.final_steps, device=args.device, plots=not args.no_plots)
    except (LoadError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"kanpde-symbolic: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RuntimeError as exc:
        print(f"kanpde-symbolic: error: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
