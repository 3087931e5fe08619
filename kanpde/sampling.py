"""Point sets in the unit cube, and reproducible seeds for resampling.

Every collocation point in kanpde starts life here: :func:`sample_unit_cube` draws ``n``
points of ``[0, 1)^d`` and the geometries (:mod:`kanpde.geometry`) map them onto their
interior or boundary.  The methods:

- ``"uniform"``: independent pseudo-random points (``numpy.random.Generator.random``).
- ``"grid"``: a regular cell-centred grid.  With ``m`` the smallest integer such that
  ``m**d >= n``, the points are the cell centres ``(i + 1/2) / m`` of the ``m**d`` grid (in
  lexicographic order, last axis fastest).  When ``m**d > n`` a subset of exactly ``n`` of
  them is chosen at random with ``seed`` (kept in grid order), so the count is always exact;
  with ``m**d == n`` the seed plays no role.
- ``"lhs"``: Latin hypercube (``scipy.stats.qmc.LatinHypercube``, seeded).
- ``"sobol"``: scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``); ``2**k >= n`` points are
  drawn with ``random_base2`` and the first ``n`` kept, so scipy's balance warning for
  non-powers of two never fires.
- ``"halton"``: scrambled Halton sequence (``scipy.stats.qmc.Halton``).

The same ``(n, d, method, seed)`` always gives the same points; an integer seed is the way
to make a run reproducible.  For training loops that redraw collocation points every few
steps, :func:`round_seed` and :class:`Resampler` derive a fresh, reproducible seed for each
resampling round (and each named stream, e.g. ``"interior"`` and ``"boundary"``) from one
base seed.

This module imports nothing from the rest of kanpde.
"""
from __future__ import annotations

import numbers
import zlib
from typing import Union

import numpy as np
from scipy.stats import qmc

#: Names accepted by :func:`sample_unit_cube` (and by every geometry's samplers).
METHODS: tuple[str, ...] = ("uniform", "grid", "lhs", "sobol", "halton")

#: What a ``seed`` argument may be.
SeedLike = Union[None, int, np.integer, np.random.Generator]

# Largest grid (m**d points) enumerated in full before a subset is chosen; beyond this the
# subset is drawn as random multi-indices instead (high dimension, where m is tiny).
_MAX_ENUMERATED_GRID = 4_000_000

# Largest value in [0, 1) as float64: sequences are clipped to it so no point equals 1.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def check_count(n, name: str = "n") -> int:
    """Return ``n`` as a Python ``int`` if it is a positive integer, else raise ``ValueError``
    naming ``name`` and the value (``bool`` and floats such as ``10.0`` are rejected)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer, got {n!r} ({type(n).__name__})")
    if n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def check_method(method) -> str:
    """Return the canonical (lower-case) sampling method name, or raise.

    ``TypeError`` if ``method`` is not a string; ``ValueError`` listing :data:`METHODS` if it
    is not one of them.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {', '.join(METHODS)}; "
                        f"got {method!r} ({type(method).__name__})")
    key = method.strip().lower()
    if key not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; available methods: "
                         f"{', '.join(METHODS)}")
    return key


def check_seed(seed) -> SeedLike:
    """Return ``seed`` if it is ``None``, a non-negative integer or a ``numpy`` Generator;
    else raise ``TypeError``/``ValueError`` naming it."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, a non-negative integer or a numpy.random.Generator, "
                        f"got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _generator(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _qmc_engine(engine, d: int, rng: np.random.Generator):
    # scipy >= 1.15 names the argument `rng`; older releases call it `seed`.
    try:
        return engine(d, scramble=True, rng=rng)
    except TypeError:
        return engine(d, scramble=True, seed=rng)


def _grid(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n`` cell centres of the smallest ``m**d >= n`` grid (see module docstring)."""
    m = 1
    while m ** d < n:
        m += 1
    total = m ** d
    if total == n:
        index = np.arange(n)
        digits = np.stack(np.unravel_index(index, (m,) * d), axis=1)
    elif total <= _MAX_ENUMERATED_GRID:
        index = np.sort(rng.choice(total, size=n, replace=False))
        digits = np.stack(np.unravel_index(index, (m,) * d), axis=1)
    else:
        # Too many cells to enumerate: draw random multi-indices until n distinct ones.
        chosen = np.empty((0, d), dtype=np.int64)
        while len(chosen) < n:
            extra = rng.integers(0, m, size=(2 * (n - len(chosen)) + 8, d))
            chosen = np.unique(np.concatenate([chosen, extra]), axis=0)
        digits = chosen[np.sort(rng.choice(len(chosen), size=n, replace=False))]
    return (digits + 0.5) / m


def sample_unit_cube(n: int, d: int, method: str = "uniform", seed: SeedLike = None) -> np.ndarray:
    """Draw ``n`` points of the unit cube ``[0, 1)^d``.

    Args:
        n: number of points, a positive integer; exactly ``n`` rows are returned for every
            method.
        d: dimension, a positive integer.
        method: one of :data:`METHODS` (see the module docstring for what each does).
        seed: ``None`` (fresh OS entropy), a non-negative integer, or a
            ``numpy.random.Generator``.  The same integer seed gives the same points.

    Returns:
        ``np.ndarray`` of shape ``(n, d)``, dtype float64, every entry in ``[0, 1)``.

    Raises:
        ValueError: ``n`` or ``d`` not a positive integer, unknown ``method`` (the message lists
            the available ones), negative ``seed``.
        TypeError: ``method`` not a string, ``seed`` of the wrong type.
    """
    n = check_count(n, "n")
    d = check_count(d, "d")
    method = check_method(method)
    rng = _generator(check_seed(seed))
    if method == "uniform":
        points = rng.random((n, d))
    elif method == "grid":
        points = _grid(n, d, rng)
    elif method == "lhs":
        points = _qmc_engine(qmc.LatinHypercube, d, rng).random(n)
    elif method == "sobol":
        power = max(0, int(np.ceil(np.log2(n))))
        points = _qmc_engine(qmc.Sobol, d, rng).random_base2(power)[:n]
    else:  # halton
        points = _qmc_engine(qmc.Halton, d, rng).random(n)
    points = np.ascontiguousarray(points, dtype=np.float64)
    return np.clip(points, 0.0, _BELOW_ONE, out=points)


def _stream_key(stream) -> int:
    if isinstance(stream, str):
        # crc32, not hash(): Python salts str hashes per process, which would break reproducibility.
        return zlib.crc32(stream.encode("utf-8"))
    if (isinstance(stream, (bool, np.bool_)) or not isinstance(stream, numbers.Integral)
            or stream < 0):
        raise TypeError(f"stream must be a string or a non-negative integer, got {stream!r}")
    return int(stream)


def round_seed(seed: int | None, round_index: int, stream: str | int = 0) -> int | None:
    """The seed for resampling round ``round_index`` of ``stream``, derived from ``seed``.

    The derivation goes through ``numpy.random.SeedSequence([seed, stream, round_index])``, so
    distinct ``(round_index, stream)`` pairs give statistically independent draws and the same
    triple always gives the same seed (a Python ``int`` in ``[0, 2**63)``).  ``stream`` may be
    a name (``"interior"``, ``"boundary"``, ...) or a non-negative integer.  With
    ``seed=None`` the result is ``None`` (fresh entropy every round, not reproducible).
    """
    if seed is None:
        return None
    seed = check_seed(seed)
    if isinstance(seed, np.random.Generator):
        raise TypeError("seed must be None or a non-negative integer to derive round seeds, "
                        "got a numpy.random.Generator")
    if isinstance(round_index, (bool, np.bool_)) or not isinstance(round_index, numbers.Integral) \
            or round_index < 0:
        raise ValueError(f"round_index must be a non-negative integer, got {round_index!r}")
    words = np.random.SeedSequence([seed, _stream_key(stream), int(round_index)]).generate_state(
        2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class Resampler:
    """Reproducible seeds for collocation points that are redrawn during training.

    One base seed drives every round; each round and each named stream gets its own seed
    (see :func:`round_seed`)::

        seeds = Resampler(seed=0)
        for step in range(steps):
            if step % resample_every == 0:
                x = domain.sample_interior(n, "sobol", seed=seeds.seed("interior"))
                xb, nb = domain.sample_boundary(m, "sobol", seed=seeds.seed("boundary"))
                seeds.advance()

    With ``seed=None`` a base seed is drawn once from OS entropy and kept in
    :attr:`base_seed`, so an unseeded run can still be replayed afterwards.

    Attributes:
        base_seed: the integer all round seeds derive from.
        round: the current round (starts at 0, incremented by :meth:`advance`).
    """

    def __init__(self, seed: int | None = None):
        seed = check_seed(seed)
        if isinstance(seed, np.random.Generator):
            raise TypeError("Resampler: seed must be None or a non-negative integer, "
                            "got a numpy.random.Generator")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
        self.base_seed: int = seed
        self.round: int = 0

    def seed(self, stream: str | int = 0) -> int:
        """The seed of ``stream`` for the current round."""
        return round_seed(self.base_seed, self.round, stream)

    def advance(self) -> int:
        """Move to the next round; returns the new round index."""
        self.round += 1
        return self.round

    def __repr__(self) -> str:
        return f"Resampler(base_seed={self.base_seed}, round={self.round})"
