"""Geometries: point tests, normals, samplers, measures, quadrature grids (kanpde.geometry)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from kanpde import geometry
from kanpde.geometry import (Ball, Box, Difference, Disk, Intersection, Interval, Polygon,
                             Rectangle, SpaceTime, TimeDomain, Union)
from kanpde.sampling import METHODS

ALPHA = 1e-3  # significance level of the distribution tests (fixed seeds: deterministic)
F64 = torch.float64

L_VERTICES = [[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]]  # L-shape, area 3, perimeter 8


def l_polygon():
    return Polygon(L_VERTICES)


def shapes():
    """name -> geometry, covering every class and CSG operation."""
    return {
        "interval": Interval(-1, 2),
        "rectangle": Rectangle([-1, 0], [1, 3]),
        "box3": Box([0, 0, 0], [1, 2, 3]),
        "disk": Disk([0.5, -1], 2),
        "ball3": Ball([0, 0, 1], 1.5),
        "ball5": Ball([0] * 5, 1),
        "l_polygon": l_polygon(),
        "l_csg": Rectangle([0, 0], [2, 2]) - Rectangle([1, 1], [2, 2]),
        "disk_union": Disk([0, 0], 1) | Disk([1, 0], 1),
        "lens": Disk([0, 0], 1) & Disk([1, 0], 1),
        "holed_square": Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5),
        "nested": (Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5)) | Disk([1, 1], 0.5),
        "rect_time": Rectangle([-1, -1], [1, 1]) * TimeDomain(0, 2),
        "disk_time": Disk([0, 0], 1) * TimeDomain(0.5, 1),
        "interval_time": Interval(0, 1) * TimeDomain(0, 1),
    }


SHAPES = shapes()


# ---------------------------------------------------------------------------------------------
# samples land where they should, with exact counts, for every shape and method
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(SHAPES))
def test_samples_counts_membership_and_normals(name, method):
    g = SHAPES[name]
    x = g.sample_interior(37, method, seed=1)
    assert x.shape == (37, g.dim) and x.dtype == F64 and x.device.type == "cpu"
    assert bool(g.inside(x).all())
    xb, nb = g.sample_boundary(23, method, seed=1)
    assert xb.shape == nb.shape == (23, g.dim) and xb.dtype == nb.dtype == F64
    assert bool(g.on_boundary(xb).all())
    torch.testing.assert_close(nb.norm(dim=1), torch.ones(23, dtype=F64))
    torch.testing.assert_close(nb, g.boundary_normal(xb))


def outward_probe(g, x, n, h=1e-5):
    """Normals point out: stepping along +n leaves the set, along -n stays inside."""
    assert not bool(g.inside(x + h * n, tol=0.0).any())
    assert bool(g.inside(x - h * n, tol=0.0).all())


@pytest.mark.parametrize("name", [k for k in SHAPES if k not in ("interval_time",)])
def test_boundary_normals_point_outward(name):
    g = SHAPES[name]
    x, n = g.sample_boundary(400, "uniform", seed=5)
    if g.time_axis is not None:  # lateral boundary: probe in space at fixed time
        inside_t = (x[:, -1] > g.t0 + 1e-3) & (x[:, -1] < g.t1 - 1e-3)
        x, n = x[inside_t], n[inside_t]
    outward_probe(g, x, n)


# ---------------------------------------------------------------------------------------------
# analytic normals
# ---------------------------------------------------------------------------------------------

def test_box_normals_are_face_normals():
    g = Box([0, 0, 0], [1, 2, 3])
    x, n = g.sample_boundary(600, "sobol", seed=0)
    expected = torch.zeros_like(x)
    lo, hi = torch.tensor([0.0, 0, 0], dtype=F64), torch.tensor([1.0, 2, 3], dtype=F64)
    expected[(x - lo).abs() < 1e-12] = -1.0
    expected[(x - hi).abs() < 1e-12] = 1.0
    assert bool((expected.abs().sum(dim=1) == 1).all())  # no corner was sampled
    torch.testing.assert_close(n, expected)


def test_box_corner_normal_is_normalised_average():
    g = Rectangle([0, 0], [1, 1])
    n = g.boundary_normal(torch.tensor([[1.0, 1.0], [0.0, 0.5]]))
    torch.testing.assert_close(n, torch.tensor([[1 / math.sqrt(2), 1 / math.sqrt(2)], [-1.0, 0.0]]))


def test_interval_boundary_alternates_ends_with_outward_normals():
    g = Interval(-1, 2)
    x, n = g.sample_boundary(4, "uniform", seed=0)
    torch.testing.assert_close(x, torch.tensor([[-1.0], [2.0], [-1.0], [2.0]], dtype=F64))
    torch.testing.assert_close(n, torch.tensor([[-1.0], [1.0], [-1.0], [1.0]], dtype=F64))
    x, n = g.sample_boundary(3, "sobol", seed=0, part="right")
    torch.testing.assert_close(x, torch.full((3, 1), 2.0, dtype=F64))
    torch.testing.assert_close(n, torch.ones((3, 1), dtype=F64))
    st = g * TimeDomain(0, 1)
    x, n = st.sample_boundary(64, "sobol", seed=0, part="left")
    assert bool((x[:, 0] == -1).all()) and bool((n == torch.tensor([-1.0, 0.0], dtype=F64)).all())
    np.testing.assert_array_equal(np.sort(np.floor(x[:, 1].numpy() * 64)), np.arange(64))


@pytest.mark.parametrize("g", [Disk([0.5, -1], 2), Ball([0, 0, 1], 1.5), Ball([1, 2, 3, 4], 0.5)])
def test_ball_normals_are_radial(g):
    x, n = g.sample_boundary(300, "halton", seed=0)
    c = torch.tensor(g.center, dtype=F64)
    torch.testing.assert_close(n, (x - c) / g.radius)
    torch.testing.assert_close((x - c).norm(dim=1), torch.full((300,), g.radius, dtype=F64))


def l_shape_expected_normal(x):
    """Outward normal of the L-shape [0,2]^2 minus (1,2]^2 at non-corner boundary points."""
    X, Y = x[:, 0], x[:, 1]
    close = lambda a, b: (a - b).abs() < 1e-9  # noqa: E731
    n = torch.full_like(x, float("nan"))
    for mask, normal in [
        (close(Y, 0), (0.0, -1.0)), (close(X, 0), (-1.0, 0.0)),
        (close(X, 2) & (Y < 1), (1.0, 0.0)), (close(Y, 1) & (X > 1), (0.0, 1.0)),
        (close(X, 1) & (Y > 1), (1.0, 0.0)), (close(Y, 2) & (X < 1), (0.0, 1.0)),
    ]:
        n[mask] = torch.tensor(normal, dtype=F64)
    return n


@pytest.mark.parametrize("g", [l_polygon(), Polygon(L_VERTICES[::-1]),
                               Rectangle([0, 0], [2, 2]) - Rectangle([1, 1], [2, 2])],
                         ids=["ccw", "clockwise", "csg"])
def test_l_shape_normals(g):
    x, n = g.sample_boundary(500, "uniform", seed=3)
    expected = l_shape_expected_normal(x)
    assert not bool(expected.isnan().any())  # every sample is on one of the six true edges
    torch.testing.assert_close(n, expected)


def test_l_shape_rejects_the_removed_square_and_its_edges():
    for g in (l_polygon(), Rectangle([0, 0], [2, 2]) - Rectangle([1, 1], [2, 2])):
        pts = torch.tensor([[1.5, 1.5], [0.5, 0.5], [1.5, 0.5], [1.5, 2.0], [2.0, 1.5], [1.0, 1.5],
                            [1.5, 1.0], [3.0, 0.5]], dtype=F64)
        assert g.inside(pts).tolist() == [False, True, True, False, False, True, True, False]
        assert g.on_boundary(pts).tolist() == [False, False, False, False, False, True, True, False]


def test_polygon_vertex_normal_and_reentrant_corner():
    g = l_polygon()
    n = g.boundary_normal(torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(n, torch.tensor([[s, -s], [s, s]]))


def test_union_of_disks_normals():
    g = Disk([0, 0], 1) | Disk([1, 0], 1)
    x, n = g.sample_boundary(400, "uniform", seed=1)
    left = x[:, 0] < 0.5  # the left arc belongs to the first disk
    expected = torch.where(left.unsqueeze(1), x, x - torch.tensor([1.0, 0.0], dtype=F64))
    torch.testing.assert_close(n, expected)
    # arcs: the left arc is |x| = 1 with x <= 0.5, the right one |x - (1,0)| = 1 with x >= 0.5
    assert bool(((x[left].norm(dim=1) - 1).abs() < 1e-12).all())


def test_intersection_of_disks_normals():
    g = Disk([0, 0], 1) & Disk([1, 0], 1)
    x, n = g.sample_boundary(400, "uniform", seed=1)
    on_first = (x.norm(dim=1) - 1).abs() < 1e-12  # the right arc of the lens
    assert bool((x[on_first, 0] >= 0.5 - 1e-12).all())
    expected = torch.where(on_first.unsqueeze(1), x, x - torch.tensor([1.0, 0.0], dtype=F64))
    torch.testing.assert_close(n, expected)


def test_difference_normals_point_into_the_hole():
    g = Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5)
    x, n = g.sample_boundary(600, "uniform", seed=2)
    hole = (x.norm(dim=1) - 0.5).abs() < 1e-12
    assert 50 < int(hole.sum()) < 350
    torch.testing.assert_close(n[hole], -x[hole] / 0.5)
    outer = ~hole
    torch.testing.assert_close(n[outer], Rectangle([-1, -1], [1, 1]).boundary_normal(x[outer]))


def test_glued_boxes_have_no_inner_boundary():
    g = Rectangle([0, 0], [1, 1]) | Rectangle([1, 0], [2, 1])
    pts = torch.tensor([[1.0, 0.5], [1.0, 1.0], [0.5, 0.0], [1.5, 1.0]], dtype=F64)
    assert g.on_boundary(pts).tolist() == [False, True, True, True]
    torch.testing.assert_close(g.boundary_normal(pts[1:]),
                               torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0]], dtype=F64))
    x, _ = g.sample_boundary(300, "uniform", seed=0)
    assert not bool(((x[:, 0] - 1).abs() < 1e-9).logical_and(x[:, 1] % 1 != 0).any())
    assert g.measure == pytest.approx(2.0, abs=1e-12)
    assert g.boundary_measure == pytest.approx(6.0, rel=5e-3)


def test_overlapping_collinear_edges_are_not_counted_twice():
    g = Rectangle([0, 0], [1, 1]) | Rectangle([0.5, 0], [2, 1])  # a 2 x 1 rectangle, perimeter 6
    assert g.boundary_measure == pytest.approx(6.0, rel=5e-3)
    x, n = g.sample_boundary(4000, "uniform", seed=0)
    shared = (x[:, 1] == 0) & (x[:, 0] > 0.5) & (x[:, 0] < 1)  # bottom piece both operands have
    assert stats.binomtest(int(shared.sum()), 4000, 0.5 / 6).pvalue > ALPHA
    torch.testing.assert_close(n, Rectangle([0, 0], [2, 1]).boundary_normal(x))


# ---------------------------------------------------------------------------------------------
# parts
# ---------------------------------------------------------------------------------------------

def test_rectangle_parts():
    g = Rectangle([-1, 0], [1, 3])
    assert g.parts[:5] == ("boundary", "left", "right", "bottom", "top")
    for part, axis, value, normal in [("left", 0, -1.0, (-1, 0)), ("right", 0, 1.0, (1, 0)),
                                      ("bottom", 1, 0.0, (0, -1)), ("top", 1, 3.0, (0, 1)),
                                      ("x1_max", 1, 3.0, (0, 1))]:
        x, n = g.sample_boundary(20, "sobol", seed=0, part=part)
        assert bool((x[:, axis] == value).all())
        torch.testing.assert_close(n, torch.tensor(normal, dtype=F64).expand(20, 2))
        assert bool(g.part_mask(x, part).all())
        others = [p for p in ("left", "right", "bottom", "top") if p != part and
                  p not in (("top",) if part == "x1_max" else ())]
        assert not any(bool(g.on_part(x, p).any()) for p in others)


def test_box3d_face_sampling_is_proportional_to_area():
    g = Box([0, 0, 0], [1, 2, 3])  # face areas 6, 3, 2 (each twice)
    x, _ = g.sample_boundary(6000, "uniform", seed=4)
    counts = [int(g.part_mask(x, p).sum()) for p in g.parts[1:]]
    expected = 6000 * np.repeat([6, 3, 2], 2) / 22
    assert sum(counts) == 6000
    assert stats.chisquare(counts, expected).pvalue > ALPHA


def test_polygon_edges_are_parts_and_sampled_by_length():
    g = l_polygon()
    assert g.parts == ("boundary",) + tuple(f"edge{k}" for k in range(6))
    x, n = g.sample_boundary(5, "uniform", seed=0, part="edge3")  # (1,1) -> (1,2)
    assert bool((x[:, 0] == 1).all()) and bool(((x[:, 1] >= 1) & (x[:, 1] <= 2)).all())
    torch.testing.assert_close(n, torch.tensor([1.0, 0.0], dtype=F64).expand(5, 2))
    x, _ = g.sample_boundary(4000, "uniform", seed=1)
    counts = [int(g.part_mask(x, f"edge{k}").sum()) for k in range(6)]
    assert stats.chisquare(counts, 4000 * np.array([2, 1, 1, 1, 1, 2]) / 8).pvalue > ALPHA


def test_csg_keeps_unique_operand_parts():
    g = Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5)
    assert "left" in g.parts and "top" in g.parts
    x, n = g.sample_boundary(10, "uniform", seed=0, part="left")
    assert bool((x[:, 0] == -1).all())
    torch.testing.assert_close(n, torch.tensor([-1.0, 0.0], dtype=F64).expand(10, 2))
    # a part cut away by the difference is not on the result
    cut = Rectangle([0, 0], [2, 2]) - Disk([2, 1], 0.5)
    assert cut.part_mask(torch.tensor([[2.0, 1.0], [2.0, 0.2]], dtype=F64), "right").tolist() \
        == [False, True]
    x, _ = cut.sample_boundary(50, "uniform", seed=0, part="right")
    assert bool((x[:, 0] == 2).all()) and bool(((x[:, 1] - 1).abs() >= 0.5 - 1e-9).all())


def test_space_time_parts_and_normals():
    g = Rectangle([-1, -1], [1, 1]) * TimeDomain(0.5, 2)
    assert isinstance(g, SpaceTime)
    assert g.dim == 3 and g.time_axis == 2
    assert {"boundary", "initial", "left", "top"} <= set(g.parts)
    np.testing.assert_array_equal(g.bbox[0], [-1, -1, 0.5])
    np.testing.assert_array_equal(g.bbox[1], [1, 1, 2])

    x, n = g.sample_boundary(300, "sobol", seed=0)
    assert bool((n[:, 2] == 0).all())
    torch.testing.assert_close(n[:, :2], Rectangle([-1, -1], [1, 1]).boundary_normal(x[:, :2]))
    assert bool(((x[:, 2] >= 0.5) & (x[:, 2] <= 2)).all())

    x, n = g.sample_boundary(100, "halton", seed=0, part="initial")
    assert bool((x[:, 2] == 0.5).all()) and bool(g.part_mask(x, "initial").all())
    torch.testing.assert_close(n, torch.tensor([0.0, 0.0, -1.0], dtype=F64).expand(100, 3))
    assert bool((x[:, :2].abs() <= 1).all())
    assert not bool(g.part_mask(x + torch.tensor([0, 0, 0.1], dtype=F64), "initial").any())
    torch.testing.assert_close(g.boundary_normal(x[:1] * torch.tensor([0.5, 0.5, 1.0], dtype=F64)),
                               torch.tensor([[0.0, 0.0, -1.0]], dtype=F64))

    x, n = g.sample_boundary(50, "uniform", seed=0, part="left")
    assert bool((x[:, 0] == -1).all())
    torch.testing.assert_close(n, torch.tensor([-1.0, 0.0, 0.0], dtype=F64).expand(50, 3))
    assert g.measure == pytest.approx(4 * 1.5)


def test_space_time_interior_is_jointly_uniform():
    g = Disk([0, 0], 1) * TimeDomain(0, 3)
    x = g.sample_interior(3000, "uniform", seed=8)
    assert stats.kstest(x[:, 2].numpy() / 3, "uniform").pvalue > ALPHA
    assert stats.kstest((x[:, :2].norm(dim=1) ** 2).numpy(), "uniform").pvalue > ALPHA
    # with sobol, the joint (3-D) sequence is balanced: times are stratified
    x = g.sample_interior(1024, "sobol", seed=8)
    np.testing.assert_array_equal(np.sort(np.floor(x[:, 2].numpy() / 3 * 1024)), np.arange(1024))


def test_space_time_needs_a_time_domain():
    with pytest.raises(TypeError, match="TimeDomain"):
        Rectangle([0, 0], [1, 1]) * Interval(0, 1)
    with pytest.raises(TypeError, match="time axis"):
        (Interval(0, 1) * TimeDomain(0, 1)) * TimeDomain(0, 1)
    with pytest.raises(TypeError, match="time axis"):
        (Interval(0, 1) * TimeDomain(0, 1)) | (Interval(0, 1) * TimeDomain(0, 1))


def test_unknown_part_lists_parts():
    g = Rectangle([0, 0], [1, 1])
    with pytest.raises(ValueError) as info:
        g.sample_boundary(5, part="front")
    message = str(info.value)
    assert "'front'" in message and all(p in message for p in ("boundary", "left", "top"))
    with pytest.raises(ValueError, match="'edge9'.*edge5"):
        l_polygon().part_mask(torch.zeros(1, 2), "edge9")


# ---------------------------------------------------------------------------------------------
# uniformity
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["uniform", "sobol", "halton", "lhs"])
def test_box_interior_is_uniform(method):
    g = Box([-1, 0, 2], [1, 1, 5])
    x = g.sample_interior(3000, method, seed=6)
    u = (x - torch.tensor([-1.0, 0, 2], dtype=F64)) / torch.tensor([2.0, 1, 3], dtype=F64)
    for j in range(3):
        assert stats.kstest(u[:, j].numpy(), "uniform").pvalue > ALPHA


@pytest.mark.parametrize("method", ["uniform", "sobol", "halton", "lhs"])
def test_disk_interior_is_uniform_in_area(method):
    g = Disk([1, 2], 3)
    x = g.sample_interior(3000, method, seed=9) - torch.tensor([1.0, 2.0], dtype=F64)
    r2 = (x.norm(dim=1) / 3) ** 2
    angle = (torch.atan2(x[:, 1], x[:, 0]) / (2 * math.pi)) % 1
    assert stats.kstest(r2.numpy(), "uniform").pvalue > ALPHA
    assert stats.kstest(angle.numpy(), "uniform").pvalue > ALPHA


def test_disk_boundary_angle_is_uniform():
    g = Disk([0, 0], 2)
    x, _ = g.sample_boundary(2000, "uniform", seed=1)
    angle = (torch.atan2(x[:, 1], x[:, 0]) / (2 * math.pi)) % 1
    assert stats.kstest(angle.numpy(), "uniform").pvalue > ALPHA


@pytest.mark.parametrize("dim", [3, 5])
def test_ball_interior_and_sphere_are_uniform(dim):
    g = Ball([0.5] * dim, 2)
    x = g.sample_interior(3000, "uniform", seed=3) - 0.5
    assert stats.kstest(((x.norm(dim=1) / 2) ** dim).numpy(), "uniform").pvalue > ALPHA
    # each coordinate of a uniform point on the sphere S^{d-1}: (z+1)/2 ~ Beta((d-1)/2, (d-1)/2)
    xb, _ = g.sample_boundary(3000, "uniform", seed=3)
    z = ((xb[:, 0] - 0.5) / 2 + 1) / 2
    a = (dim - 1) / 2
    assert stats.kstest(z.numpy(), stats.beta(a, a).cdf).pvalue > ALPHA


def test_l_shape_interior_is_uniform_over_its_three_squares():
    g = l_polygon()
    x = g.sample_interior(3000, "uniform", seed=2)
    cell = (x[:, 0] >= 1).long() + 2 * (x[:, 1] >= 1).long()
    counts = torch.bincount(cell, minlength=4).tolist()
    assert counts[3] == 0
    assert stats.chisquare(counts[:3]).pvalue > ALPHA


def test_csg_boundary_is_split_by_arc_length():
    g = Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5)  # perimeters 8 and pi
    x, _ = g.sample_boundary(3000, "uniform", seed=0)
    hole = int(((x.norm(dim=1) - 0.5).abs() < 1e-12).sum())
    assert stats.binomtest(hole, 3000, math.pi / (8 + math.pi)).pvalue > ALPHA
    u = Disk([0, 0], 1) | Disk([1, 0], 1)  # two arcs of angle 4pi/3 each, uniform in angle
    x, _ = u.sample_boundary(3000, "uniform", seed=0)
    left = x[:, 0] < 0.5
    assert stats.binomtest(int(left.sum()), 3000, 0.5).pvalue > ALPHA
    angle = torch.atan2(x[left, 1], x[left, 0]) % (2 * math.pi)  # in [pi/3, 5pi/3]
    fraction = (angle - math.pi / 3) / (4 * math.pi / 3)
    assert stats.kstest(fraction.numpy(), "uniform").pvalue > ALPHA


# ---------------------------------------------------------------------------------------------
# reproducibility
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rectangle", "disk", "l_polygon", "holed_square", "disk_time"])
@pytest.mark.parametrize("method", ["uniform", "sobol", "grid"])
def test_seeds_reproduce(name, method):
    g = SHAPES[name]
    a, b, c = (g.sample_interior(60, method, seed=s) for s in (1, 1, 2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    (xa, na), (xb, nb), (xc, _) = (g.sample_boundary(60, method, seed=s) for s in (1, 1, 2))
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)
    torch.testing.assert_close(na, nb, rtol=0, atol=0)
    if method != "grid":  # a complete grid does not depend on the seed
        assert not torch.equal(a, c)
        assert not torch.equal(xa, xc)


def test_grid_interior_is_a_grid():
    x = Rectangle([0, 0], [2, 1]).sample_interior(16, "grid")
    assert sorted(set(x[:, 0].tolist())) == [0.25, 0.75, 1.25, 1.75]
    assert sorted(set(x[:, 1].tolist())) == [0.125, 0.375, 0.625, 0.875]


# ---------------------------------------------------------------------------------------------
# measures and evaluation grids
# ---------------------------------------------------------------------------------------------

def lens_area(r, d):
    return 2 * r * r * math.acos(d / (2 * r)) - d / 2 * math.sqrt(4 * r * r - d * d)


@pytest.mark.parametrize("g, area, tol", [
    (Interval(-1, 2), 3.0, 1e-12),
    (Box([0, 0, 0], [1, 2, 3]), 6.0, 1e-12),
    (Disk([3, 4], 2), 4 * math.pi, 1e-12),
    (Ball([0, 0, 0], 2), 32 * math.pi / 3, 1e-12),
    (Ball([0] * 4, 1), math.pi ** 2 / 2, 1e-12),
    (l_polygon(), 3.0, 1e-12),
    (Rectangle([0, 0], [2, 2]) - Rectangle([1, 1], [2, 2]), 3.0, 1e-12),
    (Rectangle([0, 0], [2, 2]) | Rectangle([1, 1], [3, 3]), 7.0, 1e-12),
    (Disk([0, 0], 1) | Disk([1, 0], 1), 2 * math.pi - lens_area(1, 1), 2e-3),
    (Disk([0, 0], 1) & Disk([1, 0], 1), lens_area(1, 1), 2e-3),
    (Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5), 4 - math.pi / 4, 2e-3),
    (Disk([0, 0], 1) * TimeDomain(0, 2), 2 * math.pi, 1e-12),
])
def test_measure(g, area, tol):
    assert g.measure == pytest.approx(area, rel=tol)


@pytest.mark.parametrize("g, length, tol", [
    (Rectangle([0, 0], [2, 1]), 6.0, 1e-12),
    (Box([0, 0, 0], [1, 2, 3]), 22.0, 1e-12),
    (Disk([0, 0], 2), 4 * math.pi, 1e-12),
    (Ball([0, 0, 0], 2), 16 * math.pi, 1e-12),
    (l_polygon(), 8.0, 1e-12),
    (Disk([0, 0], 1) & Disk([1, 0], 1), 4 * math.pi / 3, 5e-3),
    (Rectangle([-1, -1], [1, 1]) - Disk([0, 0], 0.5), 8 + math.pi, 5e-3),
])
def test_boundary_measure(g, length, tol):
    assert g.boundary_measure == pytest.approx(length, rel=tol)


@pytest.mark.parametrize("name", list(SHAPES))
def test_evaluation_points_weights_sum_to_measure(name):
    g = SHAPES[name]
    x, w = g.evaluation_points(2000)
    assert x.dtype == w.dtype == F64 and w.shape == (len(x),)
    assert 0.6 * 2000 < len(x) < 1.5 * 2000
    assert bool(g.inside(x).all())
    assert float(w.sum()) == pytest.approx(g.measure, rel=1e-12)


def test_evaluation_points_integrate_accurately():
    x, w = Rectangle([0, 0], [1, 2]).evaluation_points(5000)
    assert float((w * x[:, 0] ** 2 * x[:, 1]).sum()) == pytest.approx(2 / 3, rel=1e-3)
    x, w = Disk([0, 0], 1).evaluation_points(5000)
    assert float((w * (x ** 2).sum(dim=1)).sum()) == pytest.approx(math.pi / 2, rel=5e-3)
    x, w = (Interval(0, 1) * TimeDomain(0, 2)).evaluation_points(4000)
    assert float((w * x[:, 0] * x[:, 1]).sum()) == pytest.approx(1.0, rel=1e-3)
    x, w = Interval(0, math.pi).evaluation_points(100)
    assert len(x) == 100
    assert float((w * torch.sin(x[:, 0])).sum()) == pytest.approx(2.0, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------

def test_point_tests_accept_tensors_of_any_dtype_and_numpy():
    g = Disk([0, 0], 1)
    pts = [[1.0, 0.0], [0.0, 0.5], [2.0, 0.0]]
    x32 = torch.tensor(pts, dtype=torch.float32)
    mask = g.inside(x32)
    assert mask.dtype == torch.bool and mask.tolist() == [True, True, False]
    assert g.on_boundary(x32).tolist() == [True, False, False]
    assert g.boundary_normal(x32).dtype == torch.float32
    assert g.inside(torch.tensor([[1, 0], [2, 0]])).tolist() == [True, False]  # integer input
    np_mask = g.on_boundary(np.array(pts))
    assert isinstance(np_mask, np.ndarray) and np_mask.tolist() == [True, False, False]
    assert isinstance(g.boundary_normal(pts), np.ndarray)


def test_float32_boundary_samples_stay_on_the_boundary():
    g = Disk([0.3, 0.1], 1.7) - Rectangle([-2, -2], [0, 0])
    x, _ = g.sample_boundary(500, "uniform", seed=0)
    assert bool(g.on_boundary(x.float()).all())
    assert bool(g.inside(g.sample_interior(500, seed=0).float()).all())


def test_tolerance_argument():
    g = Rectangle([0, 0], [1, 1])
    x = torch.tensor([[1.0 + 1e-4, 0.5]], dtype=F64)
    assert not bool(g.on_boundary(x)[0])
    assert bool(g.on_boundary(x, tol=1e-3)[0])
    with pytest.raises(ValueError, match="tol must be >= 0, got -1"):
        g.inside(x, tol=-1)


def test_points_must_have_the_right_shape():
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\), got \(5, 3\)"):
        Disk([0, 0], 1).inside(torch.zeros(5, 3))


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_polygon_needs_three_vertices():
    with pytest.raises(ValueError, match="at least 3 vertices, got 2"):
        Polygon([[0, 0], [1, 0]])
    with pytest.raises(ValueError, match="at least 3 vertices, got 2"):
        Polygon([[0, 0], [1, 0], [0, 0]])  # closing vertex dropped


def test_bow_tie_names_the_crossing_edges():
    with pytest.raises(ValueError, match=r"edges 0 and 2 cross") as info:
        Polygon([[0, 0], [1, 1], [1, 0], [0, 1]])
    assert "[0.0, 0.0] -> [1.0, 1.0]" in str(info.value)


def test_polygon_other_degeneracies():
    with pytest.raises(ValueError, match="overlap"):
        Polygon([[0, 0], [2, 0], [1, 0], [1, 1]])
    with pytest.raises(ValueError, match="vertices 1 and 2 coincide"):
        Polygon([[0, 0], [1, 0], [1, 0], [1, 1]])
    with pytest.raises(ValueError, match="edges 0 and 2 touch"):  # a vertex touching an edge
        Polygon([[0, 0], [2, 0], [2, 2], [1, 0], [0, 2]])
    with pytest.raises(ValueError, match=r"shape \(K, 2\)"):
        Polygon([[0, 0, 0], [1, 0, 0], [0, 1, 0]])


def test_box_bounds_must_be_ordered():
    with pytest.raises(ValueError, match=r"lo must be < hi.*lo=\[0.0, 1.0\], hi=\[1.0, 1.0\]"):
        Rectangle([0, 1], [1, 1])
    with pytest.raises(ValueError, match="a=2.0, b=1.0"):
        Interval(2, 1)
    with pytest.raises(ValueError, match="t0=1.0, t1=1.0"):
        TimeDomain(1, 1)
    with pytest.raises(ValueError, match="hi must have 2 components, got 3"):
        Box([0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="lo must have 2 components"):
        Rectangle([0, 0, 0], [1, 1, 1])


@pytest.mark.parametrize("radius", [0, -1.5])
def test_radius_must_be_positive(radius):
    with pytest.raises(ValueError, match=f"radius must be > 0, got {radius}"):
        Disk([0, 0], radius)
    with pytest.raises(ValueError, match="radius must be > 0"):
        Ball([0, 0, 0], radius)


def test_geometry_sampler_argument_errors():
    g = Disk([0, 0], 1)
    with pytest.raises(ValueError,
                       match="unknown sampling method 'random'.*uniform, grid, lhs, sobol, halton"):
        g.sample_interior(10, "random")
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        g.sample_interior(0)
    with pytest.raises(ValueError, match="n must be a positive integer, got -2"):
        g.sample_boundary(-2)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        g.evaluation_points(0)


def test_csg_argument_errors():
    with pytest.raises(ValueError, match="different dimensions"):
        Disk([0, 0], 1) | Ball([0, 0, 0], 1)
    with pytest.raises(ValueError, match="empty"):
        Rectangle([0, 0], [1, 1]) & Rectangle([2, 2], [3, 3])
    with pytest.raises(TypeError):
        Disk([0, 0], 1) | 3
    with pytest.raises(TypeError, match="Geometry"):
        Union(Disk([0, 0], 1), "disk")


def test_public_names():
    for name in ("Geometry", "Interval", "Rectangle", "Box", "Disk", "Ball", "Polygon", "Union",
                 "Difference", "Intersection", "TimeDomain", "SpaceTime"):
        assert hasattr(geometry, name)
    assert isinstance(Disk([0, 0], 1) - Disk([1, 0], 1), Difference)
    assert isinstance(Disk([0, 0], 1) & Disk([1, 0], 1), Intersection)
    assert Interval(0, 1).time_axis is None and TimeDomain(0, 1).time_axis == 0
