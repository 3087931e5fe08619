"""Computational domains: where the PDE lives, and how to put collocation points in it.

Every domain is a :class:`Geometry`, a closed set of points in ``R^dim`` with a small protocol:

- ``dim``, ``bbox`` (``(lo, hi)`` float64 numpy arrays), ``time_axis`` (``None``, or
  ``dim - 1`` for space-time), ``parts`` (named boundary parts, always including
  ``"boundary"``), ``measure`` (length / area / volume) and ``boundary_measure``;
- point tests ``inside(x)``, ``on_boundary(x)``, ``part_mask(x, part)`` (alias ``on_part``) and
  the outward unit normal ``boundary_normal(x)``;
- samplers ``sample_interior(n, method, seed)`` and
  ``sample_boundary(n, method, seed, part) -> (x, normals)``, and a quadrature grid
  ``evaluation_points(n) -> (x, weights)`` for error norms;
- approximate distance functions ``distance(x, part) -> (N,)``: zero on the part, positive
  inside, ``|grad| = 1`` on the part, differentiable torch functions of the points (for exact
  boundary conditions, :mod:`kanpde.constraints`; R-functions in :mod:`kanpde.geometry.adf`).

Shapes: :class:`Interval`, :class:`Rectangle`, :class:`Box` (any dimension), :class:`Disk`,
:class:`Ball` (any dimension), :class:`Polygon` (2-D, convex or not).  They combine with
``a | b`` (:class:`Union`), ``a - b`` (:class:`Difference`), ``a & b`` (:class:`Intersection`),
and ``geom * TimeDomain(t0, t1)`` gives the space-time cylinder :class:`SpaceTime` (time in
the last column).

Conventions
-----------
*Points* are arrays of shape ``(N, dim)``.  The point tests accept torch tensors of any dtype
and device (the answer comes back on the same device; normals in the input's floating dtype)
or numpy arrays / nested lists (the answer is a numpy array).  Internally everything is
float64.  Samplers return float64 CPU torch tensors.

*Tolerance*: sets are closed.  ``tol=None`` means ``max(1e-8, 64 * eps) * scale``, with ``eps``
the machine epsilon of the input dtype (float64 for non-float input) and ``scale`` the largest
of 1, the bounding-box extents and the absolute bounding-box coordinates, so float32 points
sampled on a boundary still count as on it.

*Normals* are outward and of unit length.  Where several boundary pieces meet (a box corner, a
polygon vertex, the crossing of two CSG boundaries) the normal is the normalised sum of the
unit normals of the pieces that meet there.  For points off the boundary, primitives return
the normal of the nearest boundary piece and CSG geometries return zeros.

*CSG* operations are *regularised*: lower-dimensional leftovers are dropped, so in
``Box([0, 0], [2, 2]) - Box([1, 1], [2, 2])`` (an L-shape) the parts of the big square's edges
that border the removed square are neither inside nor on the boundary, and two boxes glued
face to face form one domain with no boundary between them.  Coincident boundary pieces are
told apart by comparing normals.  The normal of a difference ``a - b`` on ``b``'s boundary is
``-normal_b``: it points into the removed region.

*Sampling*: every sampler draws points of the unit cube with
:func:`kanpde.sampling.sample_unit_cube` (methods ``uniform``, ``grid``, ``lhs``, ``sobol``,
``halton``) and maps them onto the set with a measure-preserving map: affine for boxes, polar /
spherical coordinates for disks and 3-D balls (Gaussian directions for ``dim >= 4``),
arc-length parametrisation for polygon and box boundaries.  Where no such map exists
(polygons, CSG) points are drawn in the bounding box and rejected outside the set; the draw is
enlarged until at least ``n`` points survive, and the first ``n`` are kept (for ``grid``, a
seeded random subset of the surviving grid points, so no region is cut off).  Counts are
always exact and the same seed gives the same points.

Layout: ``base`` (the protocol and shared helpers), ``box``, ``ball``, ``polygon``, ``csg``,
``spacetime``, ``adf`` (distance-function building blocks); everything public is re-exported
here, so ``geometry.Rectangle(...)`` works.
"""
from __future__ import annotations

from kanpde.geometry.base import Geometry
from kanpde.geometry.ball import Ball, Disk
from kanpde.geometry.box import Box, Interval, Rectangle, TimeDomain
from kanpde.geometry.csg import CSG, Difference, Intersection, Union
from kanpde.geometry.polygon import Polygon
from kanpde.geometry.spacetime import SpaceTime
from kanpde.sampling import METHODS

__all__ = [
    "Geometry", "Box", "Interval", "Rectangle", "TimeDomain", "Ball", "Disk", "Polygon",
    "CSG", "Union", "Difference", "Intersection", "SpaceTime", "METHODS",
]
