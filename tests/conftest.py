"""Fixtures shared by the whole suite: small problems and numerical settings."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def float64():
    """torch's default dtype is float64 inside the test (models built without a dtype)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(before)


@pytest.fixture
def one_thread():
    """One torch thread inside the test (small problems are dominated by thread hand-offs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def poisson1d():
    """u'' = f on [-1, 1] with u = sin(2 pi x) (a built-in problem)."""
    from kanpde.problems.poisson import Poisson1D
    return Poisson1D()


@pytest.fixture
def paper_poisson():
    """The KAN paper's 2-D Poisson problem (a built-in problem)."""
    from kanpde.problems.poisson import PaperPoisson
    return PaperPoisson()
