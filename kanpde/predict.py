"""``kanpde-predict``: evaluate a trained run at your own points, from the shell.

::

    kanpde-predict outputs/2026-12-07/12-00-00 --points pts.csv --out pred.h5
    kanpde-predict RUN --points pts.npz --derivatives grad,laplacian --out pred.h5

The points file is a ``.csv`` (a header row; columns named like the inputs -- x, y, z, t --
or just the input columns), an ``.npz`` or an ``.h5`` holding an ``(N, d)`` array ``x``
(``--name`` picks another array).  ``pred.h5`` holds ``x``, ``u`` ``(N, m)`` and each
derivative asked for (layouts of :meth:`kanpde.loading.Run.predict`), with the run folder, the
problem and the output names as attributes; ``--out`` ending in ``.csv`` writes a table of the
points and values instead (values only).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["main", "write_predictions"]


def write_predictions(path: str | Path, run, x: np.ndarray, values: dict) -> Path:
    """Write ``values`` (``{"u": ..., "grad": ...}``) at points ``x`` atomically to ``path``
    (``.h5`` or ``.csv``)."""
    from . import io

    path = Path(path)
    if path.suffix.lower() == ".csv":
        names = list(run.problem.input_names) + list(run.problem.component_names)
        table = np.concatenate([x, values["u"]], axis=1)

        def write_csv(tmp: Path) -> None:
            np.savetxt(tmp, table, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
        return io.atomic_write(path, write_csv)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"--out must end in .h5, .hdf5 or .csv, got {str(path)!r}")
    import h5py

    def write_h5(tmp: Path) -> None:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["run"] = str(run.folder)
            h5.attrs["problem"] = run.problem.name
            h5.attrs["input_names"] = ",".join(run.problem.input_names)
            h5.attrs["output_names"] = ",".join(run.problem.component_names)
            h5.create_dataset("x", data=x)
            for name, arr in values.items():
                h5.create_dataset(name, data=arr)
    return io.atomic_write(path, write_h5)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``kanpde-predict``."""
    from .cli_errors import EXIT_CONFIG, EXIT_PROBLEM
    from .datafiles import DataFileError, read_points
    from .loading import DERIVATIVES, LoadError, load, run_folder_parser

    ap = run_folder_parser("kanpde-predict", __doc__)
    ap.add_argument("--points", required=True, help="points file: .csv, .npz or .h5 with an (N, d) array")
    ap.add_argument("--name", default=None, help="the points array in an .npz/.h5 file (default x)")
    ap.add_argument("--out", required=True, help="where to write the predictions (.h5 or .csv)")
    ap.add_argument("--derivatives", default="", help=f"comma-separated, from {','.join(DERIVATIVES)}")
    args = ap.parse_args(argv)
    wanted = [d.strip() for d in args.derivatives.split(",") if d.strip()]
    try:
        run = load(args.run, device=args.device)
        x = read_points(args.points, run.problem.input_dim, args.name, run.problem.input_names)
        values = run.predict(x, derivatives=wanted)
        if not wanted:
            values = {"u": values}
        if Path(args.out).suffix.lower() == ".csv" and wanted:
            raise ValueError("--out .csv holds the values only; write derivatives to an .h5 file")
        out = write_predictions(args.out, run, x, values)
    except (LoadError, DataFileError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"kanpde-predict: error: {exc}", file=sys.stderr)
        return EXIT_PROBLEM if isinstance(exc, RuntimeError) else EXIT_CONFIG
    print(f"kanpde-predict: {x.shape[0]} points, {', '.join(values)} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
