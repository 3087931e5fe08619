"""Tests for kanpde.plotting: every figure is a real, non-blank PNG of the expected layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import _pylab_helpers
from matplotlib.image import imread

from kanpde import plotting
from kanpde.io import read_results, write_results
from kanpde.plotting import plot_activations, plot_history, plot_results, plot_solution

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(path):
    """Check ``path`` is a non-blank PNG and return its pixel array (H, W, channels)."""
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, img.shape
    assert img[..., :3].std() > 0.01, f"{path} is blank"
    return img


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    yield
    assert _pylab_helpers.Gcf.get_num_fig_managers() == 0, "a pyplot figure leaked"


def grid_points(n=20, lo=-1.0, hi=1.0, shuffle=True):
    g = np.linspace(lo, hi, n)
    xx, yy = np.meshgrid(g, g)
    x = np.column_stack([xx.ravel(), yy.ravel()])
    if shuffle:
        x = x[np.random.default_rng(0).permutation(len(x))]
    return x


def poisson_field(x, m=1, exact=True):
    u = np.sin(np.pi * x[:, :1]) * np.sin(np.pi * x[:, 1:2] ** 2)
    u = np.concatenate([u * (k + 1) for k in range(m)], axis=1)
    field = {"x": x, "u_pred": u + 1e-3 * np.cos(x[:, :1])}
    if exact:
        field["u_exact"] = u
    return field


def test_1d_with_and_without_exact(tmp_path):
    x = np.linspace(0.0, 1.0, 64)[::-1, None]  # unsorted on purpose
    u = np.sin(2 * np.pi * x)
    sol, err = plot_solution({"x": x, "u_pred": u + 1e-4 * x, "u_exact": u},
                             tmp_path / "solution.png", tmp_path / "error.png", title="1-D")
    assert (sol, err) == (tmp_path / "solution.png", tmp_path / "error.png")
    one = png(sol)
    png(err)
    sol2, err2 = plot_solution({"x": x[:, 0], "u_pred": u[:, 0]}, tmp_path / "s2.png", tmp_path / "e2.png")
    png(sol2)
    png(err2)  # a note that there is no exact solution, not a blank image
    assert imread(sol2).shape == one.shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2.png", "error.png", "s2.png", "solution.png"]


def test_2d_grid_detection():
    x = grid_points(7)
    grid = plotting._tensor_grid(x)
    assert grid is not None
    xs, ys, ix, iy = grid
    np.testing.assert_array_equal(xs, np.linspace(-1, 1, 7))
    img = np.full((7, 7), np.nan)
    img[iy, ix] = x[:, 0] + 10 * x[:, 1]
    np.testing.assert_allclose(img, xs[None, :] + 10 * ys[:, None])
    assert plotting._tensor_grid(x[1:]) is None                                   # a hole
    assert plotting._tensor_grid(np.vstack([x[:-1], x[:1]])) is None              # a repeat
    assert plotting._tensor_grid(np.random.default_rng(1).uniform(size=(49, 2))) is None


@pytest.mark.parametrize("kind", ["grid", "scattered"])
def test_2d_solution_and_error(tmp_path, kind):
    x = grid_points(20) if kind == "grid" else np.random.default_rng(2).uniform(-1, 1, (300, 2))
    sol, err = plot_solution(poisson_field(x), tmp_path / "solution.png", tmp_path / "error.png")
    both = png(sol)
    single = png(err)
    # prediction and exact side by side: twice the width of the one-panel error map
    assert both.shape[0] == single.shape[0] and both.shape[1] == 2 * single.shape[1]


def test_2d_multicomponent_one_row_per_component(tmp_path):
    x = grid_points(12)
    one = png(plot_solution(poisson_field(x, m=1), tmp_path / "s1.png", None)[0])
    three, none = plot_solution(poisson_field(x, m=3), tmp_path / "s3.png", None)
    assert none is None and not (tmp_path / "error.png").exists()
    three = png(three)
    assert three.shape[0] == 3 * one.shape[0] and three.shape[1] == one.shape[1]


def test_space_time_and_missing_exact(tmp_path):
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.uniform(0, 1, 400), rng.uniform(0, 2, 400)])  # (x, t)
    field = {"x": torch.as_tensor(x), "u_pred": torch.as_tensor(np.exp(-x[:, 1:]) * np.sin(np.pi * x[:, :1])),
             "u_exact": None}
    sol, err = plot_solution(field, tmp_path / "solution.png", tmp_path / "error.png", time_axis=1,
                             title="heat")
    pred_only = png(sol)
    png(err)
    with_exact = png(plot_solution(poisson_field(x), tmp_path / "s.png", None, time_axis=1)[0])
    assert with_exact.shape[1] == 2 * pred_only.shape[1]


@pytest.mark.parametrize("kind", ["grid", "scattered"])
def test_3d_is_sliced(tmp_path, kind):
    if kind == "grid":
        g = np.linspace(0, 1, 9)
        x = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    else:
        x = np.random.default_rng(4).uniform(0, 1, (3000, 3))
    u = np.sin(np.pi * x).prod(axis=1, keepdims=True)
    sol, err = plot_solution({"x": x, "u_pred": u * 1.01, "u_exact": u}, tmp_path / "solution.png",
                             tmp_path / "error.png", time_axis=2)
    png(sol)
    png(err)
    mask, caption = plotting._slice_to_2d(x, [0, 1], ["x", "y", "t"])
    assert mask.sum() >= 3 and caption.startswith(("t = 0.5", "|t - 0.5|"))
    if kind == "grid":
        assert mask.sum() == 81 and np.all(x[mask, 2] == 0.5)


def test_plot_solution_rejects_bad_input(tmp_path):
    x = grid_points(5)
    with pytest.raises(ValueError, match="'u_pred'"):
        plot_solution({"x": x}, tmp_path / "s.png", None)
    with pytest.raises(ValueError, match=r"'u_pred' must have shape \(N, m\) with N = 25"):
        plot_solution({"x": x, "u_pred": np.zeros((24, 1))}, tmp_path / "s.png", None)
    with pytest.raises(ValueError, match="time_axis.*5"):
        plot_solution(poisson_field(x), tmp_path / "s.png", None, time_axis=5)
    assert list(tmp_path.iterdir()) == []


def history(n=60, with_time=True):
    steps = np.arange(n)
    rel = np.full(n, np.nan)
    rel[::10] = np.geomspace(1.0, 1e-3, len(rel[::10]))
    h = {"step": steps, "loss": np.geomspace(1.0, 1e-6, n), "rel_l2": rel, "rel_h1": rel * 3,
         "loss_residual": np.geomspace(1.0, 1e-7, n), "loss_boundary": np.zeros(n)}
    h["loss"][5] = np.nan
    if with_time:
        h["time_s"] = np.linspace(0.0, 2.0, n)
    return h


def test_plot_history_panels(tmp_path):
    three = png(plot_history(history(), tmp_path / "history.png", title="run"))
    two = png(plot_history(history(with_time=False), tmp_path / "h2.png"))
    assert three.shape[0] == two.shape[0] and 2 * three.shape[1] == 3 * two.shape[1]
    # nothing finite to draw still gives a readable figure
    empty = {"step": np.arange(3), "loss": np.full(3, np.nan), "rel_l2": np.full(3, np.nan)}
    png(plot_history(empty, tmp_path / "h3.png"))
    with pytest.raises(ValueError, match="equal lengths"):
        plot_history({"step": np.arange(3), "loss": np.ones(4)}, tmp_path / "bad.png")
    # the training methods' columns get a fourth panel
    methods = {**history(), "weight_residual": np.geomspace(1, 30, 60), "causal_min_weight": np.linspace(0, 1, 60)}
    four = png(plot_history(methods, tmp_path / "h4.png"))
    assert four.shape[0] == three.shape[0] and 3 * four.shape[1] == 4 * three.shape[1]


class FakeKAN:
    """Stands in for a KAN: activation_curves(n) -> [{"x": (n, in), "phi": (n, in, out)}]."""

    def __init__(self, widths):
        self.widths = widths

    def activation_curves(self, n=200):
        layers = []
        for i, (n_in, n_out) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            x = torch.linspace(-1, 1, n)[:, None].repeat(1, n_in) * (i + 1)
            freq = torch.arange(1, n_out + 1, dtype=x.dtype)
            amp = torch.linspace(0.0, 1.0, n_in)[:, None]
            phi = torch.sin(x[:, :, None] * freq) * amp + 0.0 * torch.ones(1, requires_grad=True)
            layers.append({"x": x, "phi": phi})
        return layers


def test_plot_activations(tmp_path):
    small = png(plot_activations(FakeKAN([2, 5, 1]), tmp_path / "activations.png", n=50))
    wide = png(plot_activations(FakeKAN([16, 16]), tmp_path / "w16.png", n=20))
    wider = png(plot_activations(FakeKAN([40, 40]), tmp_path / "w40.png", n=20))
    assert wider.shape == wide.shape  # truncated at 16 x 16 panels
    assert wide.shape[1] > small.shape[1]
    capped = png(plot_activations(FakeKAN([40, 40]), tmp_path / "w4.png", n=20, max_edges=4))
    assert capped.shape[0] < wide.shape[0]


def test_plot_activations_rejects_non_kan(tmp_path):
    with pytest.raises(TypeError, match="activation_curves.*Linear"):
        plot_activations(torch.nn.Linear(2, 1), tmp_path / "a.png")

    class Broken:
        def activation_curves(self, n):
            return [{"x": torch.zeros(n, 2), "phi": torch.zeros(n, 3, 1)}]

    with pytest.raises(ValueError, match=r"layer 0.*\(10, 2\).*\(10, 3, 1\)"):
        plot_activations(Broken(), tmp_path / "a.png", n=10)
    assert not (tmp_path / "a.png").exists()


def test_plot_results_reads_what_the_run_wrote(tmp_path):
    h = history(20)
    path = write_results(tmp_path / "results.h5", attrs={"problem": "poisson", "model": "kan"},
                         metrics={"rel_l2": 1e-3}, history=h, field=poisson_field(grid_points(10)))
    written = plot_results(read_results(path), tmp_path / "plots")
    assert set(written) == {"solution", "error", "history"}
    for p in written.values():
        png(p)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["error.png", "history.png", "solution.png"]
