"""Simple polygons (2-D, convex or not): :class:`Polygon`."""
from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry import adf
from kanpde.geometry.base import Geometry, _plain, _unit_normalise


def _cross2(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _segments_meet(p1, q1, p2, q2, eps: float, eps_len: float) -> str | None:
    """``"cross"`` or ``"touch"`` if the closed segments p1q1 and p2q2 share a point, else
    ``None``.  ``eps`` is the tolerance on cross products, ``eps_len`` on coordinates."""
    def orient(a, b, c):
        v = _cross2(b - a, c - a)
        return 0 if abs(v) <= eps else (1 if v > 0 else -1)

    def on_segment(a, b, c):  # c collinear with ab: is it between a and b?
        return (min(a[0], b[0]) - eps_len <= c[0] <= max(a[0], b[0]) + eps_len
                and min(a[1], b[1]) - eps_len <= c[1] <= max(a[1], b[1]) + eps_len)

    o1, o2 = orient(p1, q1, p2), orient(p1, q1, q2)
    o3, o4 = orient(p2, q2, p1), orient(p2, q2, q1)
    if o1 * o2 < 0 and o3 * o4 < 0:
        return "cross"
    if ((o1 == 0 and on_segment(p1, q1, p2)) or (o2 == 0 and on_segment(p1, q1, q2))
            or (o3 == 0 and on_segment(p2, q2, p1)) or (o4 == 0 and on_segment(p2, q2, q1))):
        return "touch"
    return None


class Polygon(Geometry):
    """A simple polygon (convex or not, no holes) given by its vertices in order.

    Either orientation is accepted (it is detected from the signed area, ``orientation`` is
    +1 for counter-clockwise input and -1 for clockwise, and normals are made outward either
    way); a closing vertex equal to the first is dropped.  Construction raises ``ValueError``
    for fewer than 3 vertices, repeated consecutive vertices, zero area, or edges that cross or
    touch (naming the two edges).

    Boundary parts: ``"boundary"`` and ``"edge{k}"``, the edge from ``vertices[k]`` to
    ``vertices[k+1]`` (``k = 0 .. K-1``, wrapping around), in the order given.  Interior
    samples come from rejection in the bounding box; boundary samples are uniform in arc
    length.  At a vertex the normal is the normalised sum of the two edge normals.
    """

    def __init__(self, vertices):
        try:
            v = np.asarray(_plain(vertices), dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"vertices must be a sequence of (x, y) pairs, "
                            f"got {vertices!r}") from None
        if v.ndim != 2 or v.shape[1] != 2:
            raise ValueError(f"vertices must have shape (K, 2), got shape {v.shape}")
        if len(v) > 1 and np.array_equal(v[0], v[-1]):
            v = v[:-1]
        if len(v) < 3:
            raise ValueError(f"a polygon needs at least 3 vertices, got {len(v)}: {v.tolist()}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"vertices must be finite, got {v.tolist()}")
        k = len(v)
        for i in range(k):
            if np.array_equal(v[i], v[(i + 1) % k]):
                raise ValueError(f"vertices {i} and {(i + 1) % k} coincide: {v[i].tolist()}")
        scale = float(np.max(np.abs(v)) + np.max(np.ptp(v, axis=0)))
        eps = 1e-12 * scale * scale
        for i in range(k):
            p1, q1 = v[i], v[(i + 1) % k]
            for j in range(i + 1, k):
                p2, q2 = v[j], v[(j + 1) % k]
                if j == i + 1 or (i == 0 and j == k - 1):
                    # Adjacent edges share a vertex; they may only fold back onto each other.
                    shared = j if j == i + 1 else 0
                    a, s, b = v[shared - 1], v[shared], v[(shared + 1) % k]
                    if abs(_cross2(s - a, b - s)) <= eps and np.dot(s - a, b - s) < 0:
                        raise ValueError(f"polygon edges {i} and {j} overlap (they fold back on "
                                         f"each other at vertex {shared}: {s.tolist()})")
                    continue
                how = _segments_meet(p1, q1, p2, q2, eps, 1e-12 * scale)
                if how:
                    raise ValueError(
                        f"polygon is self-intersecting: edges {i} and {j} {how} "
                        f"(edge {i}: {p1.tolist()} -> {q1.tolist()}, "
                        f"edge {j}: {p2.tolist()} -> {q2.tolist()})")
        after = np.roll(v, -1, axis=0)
        signed = 0.5 * float(np.sum(v[:, 0] * after[:, 1] - after[:, 0] * v[:, 1]))  # shoelace
        if abs(signed) <= eps:
            raise ValueError(f"polygon has zero area: {v.tolist()}")
        self.vertices = v
        self.orientation = 1 if signed > 0 else -1
        self._area = abs(signed)
        self.dim = 2
        self._start = torch.from_numpy(v.copy())
        self._edge = torch.from_numpy(np.roll(v, -1, axis=0) - v)
        self._length = self._edge.norm(dim=1)
        # Outward normal of a counter-clockwise edge (ex, ey) is (ey, -ex) / length.
        self._edge_normal = self.orientation * torch.stack(
            [self._edge[:, 1], -self._edge[:, 0]], dim=1) / self._length.unsqueeze(1)
        self._cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(self._length, 0)])

    def __repr__(self) -> str:
        return f"Polygon({self.vertices.tolist()})"

    @property
    def bbox(self):
        return self.vertices.min(axis=0), self.vertices.max(axis=0)

    @property
    def parts(self):
        return ("boundary",) + tuple(f"edge{k}" for k in range(len(self.vertices)))

    @property
    def measure(self) -> float:
        return self._area

    @property
    def boundary_measure(self) -> float:
        return float(self._length.sum())

    def _edge_distance(self, x: torch.Tensor) -> torch.Tensor:
        """Distances ``(N, K)`` from each point to each edge."""
        p, e = self._start.to(x.device), self._edge.to(x.device)
        rel = x.unsqueeze(1) - p  # (N, K, 2)
        t = ((rel * e).sum(-1) / (e * e).sum(-1)).clamp(0.0, 1.0)
        return (rel - t.unsqueeze(-1) * e).norm(dim=-1)

    def _classify(self, x, tol):
        dist = self._edge_distance(x)
        on = dist.min(dim=1).values <= tol
        # Even-odd rule: count edges crossed by the ray from x towards +x.
        p, e = self._start.to(x.device), self._edge.to(x.device)
        y0, y1 = p[:, 1], p[:, 1] + e[:, 1]
        y = x[:, 1:2]
        straddles = (y0 > y) != (y1 > y)
        dy = torch.where(e[:, 1] == 0, torch.ones_like(e[:, 1]), e[:, 1])
        x_cross = p[:, 0] + (y - y0) * e[:, 0] / dy
        crossings = (straddles & (x[:, 0:1] < x_cross)).sum(dim=1)
        return (crossings % 2 == 1) | on, on

    def _normals(self, x, tol):
        dist = self._edge_distance(x)
        near = dist <= tol
        none = ~near.any(dim=1)
        near[none, dist[none].argmin(dim=1)] = True
        return _unit_normalise(near.to(x.dtype) @ self._edge_normal.to(x.device))

    def _part_mask(self, x, part, tol):
        k = int(part[4:])
        return self._edge_distance(x)[:, k] <= tol

    def _edge_adfs(self, x: torch.Tensor, edges=None, side: int = 1) -> torch.Tensor:
        """Segment ADFs (:func:`~kanpde.geometry.adf.segment`) ``(N, K)`` of the edges (all, or
        the indices ``edges``), each oriented to be positive on the polygon's side (``side=1``)
        or on the outer side (``side=-1``)."""
        tol = adf.band(x, self._scale)
        v = self._constant(self.vertices, x)
        k = len(self.vertices)
        cols = []
        for i in range(k) if edges is None else edges:
            a, b = v[i], v[(i + 1) % k]
            # segment() is positive on the left of a -> b: the inside of a counter-clockwise polygon
            cols.append(adf.segment(x, a, b, tol) if self.orientation * side > 0
                        else adf.segment(x, b, a, tol))
        return torch.stack(cols, dim=1)

    def _part_adf(self, x, part, side=1):
        if part == "boundary":
            return super()._part_adf(x, part, side)
        return self._edge_adfs(x, [int(part[4:])], side)[:, 0]

    def _adf(self, x, part):
        """``"boundary"``: R-equivalence of the edges' segment ADFs (S&S sec. 4.1); an edge: its
        segment ADF."""
        if part == "boundary":
            return adf.join(self._edge_adfs(x))
        return self._edge_adfs(x, [int(part[4:])])[:, 0]

    def _solid(self, x):
        """The boundary ADF with the sign of the inside test: negative outside the polygon
        (beyond the tolerance band, where the segment ADFs are signed already)."""
        tol = adf.band(x, self._scale)
        inside = self._classify(x.detach().to(torch.float64), tol)[0].to(x.device)
        d = self._adf(x, "boundary")
        return torch.where(inside, d, -d)

    def _boundary_unit_dim(self, part):
        return 1

    def _boundary_from_unit(self, u, part):
        ok = torch.ones(len(u), dtype=torch.bool)
        if part == "boundary":
            s = u[:, 0] * self._cum[-1]
            k = (torch.searchsorted(self._cum, s, right=True) - 1).clamp(0, len(self.vertices) - 1)
            t = ((s - self._cum[k]) / self._length[k]).clamp(0.0, 1.0)
        else:
            k = torch.full((len(u),), int(part[4:]), dtype=torch.long)
            t = u[:, 0]
        x = self._start[k] + t.unsqueeze(1) * self._edge[k]
        normal = self._edge_normal[k].clone()
        if part == "boundary":
            # A sample may land on a vertex (the grid method does): use the vertex convention.
            tol = self._default_tol * 1e-3
            at_vertex = (t * self._length[k] <= tol) | ((1 - t) * self._length[k] <= tol)
            if at_vertex.any():
                normal[at_vertex] = self._normals(x[at_vertex], self._default_tol)
        return x, normal, ok
