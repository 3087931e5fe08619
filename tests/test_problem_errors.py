"""A problem's own non-finite numbers are named before training, not reported as NaN errors
or as a learning-rate problem."""
from __future__ import annotations

import pytest
import torch

import kanpde
from kanpde import Problem, conditions, geometry
from kanpde import operators as op
from kanpde.models import KAN
from kanpde.training import TrainingDiverged
from tests.helpers import lbfgs, tiny


class Base(Problem):
    domain = geometry.Rectangle([0, 0], [1, 1])
    conditions = [conditions.Dirichlet("boundary", value=0.0)]

    def residual(self, x, u):
        return op.laplacian(u, x)


class NanSource(Base):
    def residual(self, x, u):
        return op.laplacian(u, x) - torch.log(x[:, :1] - 0.5)   # NaN for x < 0.5


class NanExact(Base):
    def exact(self, x):
        return torch.sqrt(x[:, :1] - 0.5)


class NanBoundary(Base):
    conditions = [conditions.Dirichlet("boundary", value=lambda x: torch.where(x[:, :1] > 0.9, torch.nan, 0.0))]


def run(problem, tmp_path):
    return kanpde.solve(problem, KAN([2, 3, 1], grid_size=5, seed=0), output_dir=tmp_path, plots=False,
                        **tiny(lbfgs(3)))


def test_a_nan_source_names_the_loss_term_not_the_learning_rate(tmp_path):
    with pytest.raises(TrainingDiverged) as info:
        run(NanSource(), tmp_path)
    text = str(info.value)
    assert "loss term(s) 'residual' of problem 'NanSource'" in text and "learning rate" not in text


def test_a_nan_exact_solution_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"exact\(\) is not finite at \d+ of the \d+ evaluation points, e.g. at x = "):
        run(NanExact(), tmp_path)
    assert not (tmp_path / "results.h5").exists()


def test_nan_boundary_values_are_named_with_a_point(tmp_path):
    with pytest.raises(ValueError) as info:
        run(NanBoundary(), tmp_path)
    text = str(info.value)
    assert "condition 'dirichlet_boundary' has non-finite value at" in text
    x = [float(v) for v in text.split("e.g. at x = [")[1].rstrip("]").split(",")]
    assert x[0] > 0.9  # the example point is one where the data are NaN
