"""Approximate distance functions of the geometries (Sukumar & Srivastava 2022): zero on the
part, positive inside, unit inward gradient on the part, finite second derivatives everywhere
in the closed domain, and the closed forms of the paper where they exist."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kanpde import geometry as g
from kanpde.geometry import adf

L_SHAPE = [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]
# a U-shaped hole: points of the domain between its arms see the arms' edges from behind
U_HOLE = [[-1, -1], [1, -1], [1, 1], [0.5, 1], [0.5, -0.5], [-0.5, -0.5], [-0.5, 1], [-1, 1]]

DOMAINS = {
    "interval": lambda: g.Interval(0.0, 2.0),
    "rectangle": lambda: g.Rectangle([0, 0], [2, 1]),
    "box3": lambda: g.Box([0, 0, 0], [1, 2, 3]),
    "disk": lambda: g.Disk([0.5, 0], 1.5),
    "ball3": lambda: g.Ball([0, 0, 0], 1),
    "l_shape": lambda: g.Polygon(L_SHAPE),
    "l_shape_cw": lambda: g.Polygon(L_SHAPE[::-1]),
    "union": lambda: g.Disk([0, 0], 1) | g.Rectangle([0, -0.5], [2, 0.5]),
    "difference": lambda: g.Rectangle([-1, -1], [1, 1]) - g.Disk([0, 0], 0.5),
    "triangle_hole": lambda: g.Rectangle([-1, -1], [1, 1]) - g.Polygon([[-0.5, -0.5], [0.5, -0.4], [0, 0.5]]),
    "u_hole": lambda: g.Polygon([[-2, -2], [2, -2], [2, 2], [-2, 2]]) - g.Polygon(U_HOLE),
    "intersection": lambda: g.Disk([0, 0], 1) & g.Rectangle([0, -2], [2, 2]),
    "disk_time": lambda: g.Disk([0, 0], 1) * g.TimeDomain(0.0, 1.0),
    "l_shape_time": lambda: g.Polygon(L_SHAPE) * g.TimeDomain(0.5, 1.5),
}


# CSG parts that are empty (a face inside the other operand) or duplicate another name
SKIP = {("union", "left"), ("union", "x0_min"), ("union", "x0_max"), ("union", "x1_min"),
        ("union", "x1_max"), ("intersection", "x0_min")}
SKIP |= {("intersection", p) for p in ("right", "bottom", "top", "x0_max", "x1_min", "x1_max")}


def _cases():
    for name, make in DOMAINS.items():
        for part in make().parts:
            if (name, part) not in SKIP:
                yield pytest.param(name, part, id=f"{name}-{part}")


def _derivatives(dom, x, part):
    x = x.clone().requires_grad_(True)
    d = dom.distance(x, part)
    (grad,) = torch.autograd.grad(d.sum(), x, create_graph=True)
    if not grad.requires_grad:  # a plane distance
        return d.detach(), grad, torch.zeros_like(grad)
    hess = torch.stack([torch.autograd.grad(grad[:, j].sum(), x, retain_graph=True, allow_unused=True,
                                            materialize_grads=True)[0][:, j] for j in range(x.shape[1])], 1)
    return d.detach(), grad.detach(), hess


@pytest.mark.parametrize("name, part", list(_cases()))
def test_zero_on_part_positive_inside_unit_inward_gradient(name, part):
    dom = DOMAINS[name]()
    xb, normals = dom.sample_boundary(300, seed=1, part=part)
    d, grad, hess = _derivatives(dom, xb, part)
    assert d.dtype == torch.float64 and d.shape == (300,)
    assert d.abs().max() <= 1e-14
    # normalised to first order: the gradient is the inward unit normal on the part
    torch.testing.assert_close((grad * normals).sum(1), -torch.ones(300, dtype=torch.float64),
                               rtol=0, atol=1e-9)
    torch.testing.assert_close(grad.norm(dim=1), torch.ones(300, dtype=torch.float64), rtol=0, atol=1e-9)
    assert torch.isfinite(hess).all()
    xi = dom.sample_interior(2000, seed=2)
    di, _, hess_i = _derivatives(dom, xi, part)
    assert (di > 0).all(), xi[di <= 0]
    assert torch.isfinite(hess_i).all()


@pytest.mark.parametrize("name", ["rectangle", "box3", "l_shape", "u_hole", "difference", "disk_time"])
def test_corners_are_zeros_with_finite_derivatives(name):
    """Grid samples hit corners and vertices, where pieces meet and the ADF is not smooth."""
    dom = DOMAINS[name]()
    xb, _ = dom.sample_boundary(400, method="grid", seed=0)
    d, grad, hess = _derivatives(dom, xb, "boundary")
    assert d.abs().max() <= 1e-14
    assert torch.isfinite(grad).all() and torch.isfinite(hess).all()


def test_closed_forms_of_boxes_disks_and_time():
    x = torch.tensor([[0.25], [1.0], [1.9]], dtype=torch.float64)
    # R-equivalence of the two end-point distances: 1 / (1/x + 1/(2 - x)) = x (2 - x) / 2
    torch.testing.assert_close(g.Interval(0, 2).distance(x), (x * (2 - x) / 2)[:, 0])
    rect = g.Rectangle([0, 0], [2, 1])
    p = torch.tensor([[0.3, 0.2], [1.5, 0.9]], dtype=torch.float64)
    torch.testing.assert_close(rect.distance(p, "left"), p[:, 0])
    torch.testing.assert_close(rect.distance(p, "top"), 1 - p[:, 1])
    faces = torch.stack([p[:, 0], 2 - p[:, 0], p[:, 1], 1 - p[:, 1]], 1)
    torch.testing.assert_close(rect.distance(p), 1 / (1 / faces).sum(1))
    disk = g.Disk([0.5, 0], 1.5)
    r2 = ((p - torch.tensor([0.5, 0.0], dtype=torch.float64)) ** 2).sum(1)
    torch.testing.assert_close(disk.distance(p), (1.5 ** 2 - r2) / 3.0)
    st = g.Disk([0, 0], 1) * g.TimeDomain(0.5, 2.0)
    q = torch.tensor([[0.1, 0.2, 0.7], [0.0, -0.5, 1.9]], dtype=torch.float64)
    torch.testing.assert_close(st.distance(q, "initial"), q[:, 2] - 0.5)
    torch.testing.assert_close(st.distance(q, "final"), 2.0 - q[:, 2])
    torch.testing.assert_close(st.distance(q, "boundary"), (1 - (q[:, :2] ** 2).sum(1)) / 2)


def _segment_reference(x: np.ndarray, a, b) -> np.ndarray:
    """The paper's segment ADF, eq. (13), written out independently (unsigned)."""
    (x1, y1), (x2, y2) = a, b
    length = math.hypot(x2 - x1, y2 - y1)
    f = ((x[:, 0] - x1) * (y2 - y1) - (x[:, 1] - y1) * (x2 - x1)) / length
    xc, yc = (x1 + x2) / 2, (y1 + y2) / 2
    t = ((length / 2) ** 2 - ((x[:, 0] - xc) ** 2 + (x[:, 1] - yc) ** 2)) / length
    rho = np.sqrt(t ** 2 + f ** 4)
    return np.sqrt(f ** 2 + ((rho - t) / 2) ** 2)


def test_polygon_matches_the_papers_segment_formula_and_r_equivalence():
    poly = g.Polygon(L_SHAPE)
    x = poly.sample_interior(500, seed=3)
    xn = x.numpy()
    k = len(L_SHAPE)
    edges = [_segment_reference(xn, L_SHAPE[i], L_SHAPE[(i + 1) % k]) for i in range(k)]
    for i in range(k):
        np.testing.assert_allclose(poly.distance(x, f"edge{i}").numpy(), edges[i], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(poly.distance(x).numpy(), 1 / sum(1 / e for e in edges), rtol=1e-12)


def test_distance_is_first_order_exact_near_the_boundary():
    """d(x) / dist(x, boundary) -> 1 as x approaches an edge (away from corners)."""
    poly = g.Polygon(L_SHAPE)
    for h in (1e-2, 1e-4):
        x = torch.tensor([[0.5, h], [1.5, 1 - h], [h, 1.3], [1 - h, 1.6]], dtype=torch.float64)
        ratio = poly.distance(x) / h
        assert (ratio - 1).abs().max() < 10 * h  # d = h - O(h^2): R-equivalence of order 1


def test_csg_r_functions_of_two_disks():
    a, b = g.Disk([0, 0], 1), g.Disk([0.8, 0], 0.6)
    x = (a | b).sample_interior(300, seed=4)
    pa = (1 - (x ** 2).sum(1)) / 2
    pb = (0.36 - ((x - torch.tensor([0.8, 0.0], dtype=torch.float64)) ** 2).sum(1)) / 1.2
    torch.testing.assert_close((a | b).distance(x), pa + pb + torch.sqrt(pa ** 2 + pb ** 2))
    y = (a - b).sample_interior(300, seed=5)
    qa = (1 - (y ** 2).sum(1)) / 2
    qb = (0.36 - ((y - torch.tensor([0.8, 0.0], dtype=torch.float64)) ** 2).sum(1)) / 1.2
    torch.testing.assert_close((a - b).distance(y), qa - qb - torch.sqrt(qa ** 2 + qb ** 2))


def test_csg_part_is_trimmed_to_the_piece_on_the_boundary():
    """A face of the union that runs through the other operand is interior there: its distance
    must not vanish on that stretch (only the plane distance would)."""
    dom = g.Rectangle([0, 0], [2, 1]) | g.Disk([2, 0.5], 0.3)
    inside_disk = torch.tensor([[2.0, 0.5], [2.0, 0.4]], dtype=torch.float64)  # on the plane x = 2
    assert (dom.distance(inside_disk, "right") > 0.05).all()
    on_face = torch.tensor([[2.0, 0.05], [2.0, 0.95]], dtype=torch.float64)
    assert dom.distance(on_face, "right").abs().max() <= 1e-14


def test_float32_and_numpy_inputs():
    disk = g.Disk([0, 0], 1)
    xb, _ = disk.sample_boundary(100, seed=0)
    d32 = disk.distance(xb.float())
    assert d32.dtype == torch.float32 and d32.abs().max() < 1e-6
    poly = g.Polygon(L_SHAPE)
    d = poly.distance(np.array([[0.5, 0.5], [1.5, 0.5]]))
    assert d.dtype == torch.float64 and (d > 0).all()


def test_join_and_weights_on_a_piece_and_where_pieces_meet():
    r = torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 1.0], [1.0, 2.0, 4.0]], dtype=torch.float64,
                     requires_grad=True)
    d = adf.join(r)
    torch.testing.assert_close(d.detach(), torch.tensor([0.0, 0.0, 1 / (1 + 0.5 + 0.25)], dtype=torch.float64))
    w = adf.transfinite_weights(r).detach()
    torch.testing.assert_close(w[0], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(w[1], torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(w[2], torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64) / 1.75)
    (grad,) = torch.autograd.grad(d.sum(), r)
    # on piece 0 alone, d = r_0 + O(r_0^2): the derivative with respect to r_0 is 1
    torch.testing.assert_close(grad[0], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.isfinite(grad).all()


def test_unknown_part_and_bad_points_are_refused():
    rect = g.Rectangle([0, 0], [1, 1])
    with pytest.raises(ValueError, match="unknown boundary part 'initial'.*left"):
        rect.distance(torch.zeros(3, 2), "initial")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        rect.distance(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="part must be a string"):
        rect.distance(torch.zeros(3, 2), 0)
