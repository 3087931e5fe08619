"""The README's code examples that claim to be tested run, and do what they say."""
from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def example(marker: str) -> str:
    """The first ```python block after the HTML comment ``<!-- example: marker -->``."""
    text = README.read_text()
    found = re.search(rf"<!-- example: {re.escape(marker)} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"README has no example marked {marker!r}"
    return found.group(1)


def test_the_trainer_plugin_example_refines_the_collocation_points(capsys):
    from kanpde.models import KAN
    from kanpde.problems.poisson import Poisson1D
    from kanpde.training import SolveOptions, Trainer

    namespace: dict = {}
    exec(compile(example("trainer plugin"), "README.md (trainer plugin)", "exec"), namespace)
    plugin, result = namespace["plugin"], namespace["result"]
    # 200 steps, a refinement at steps 50, 100, 150 and 200: 4 x 100 points added
    assert plugin.added == 400 and result.history["step"][-1] == 200
    assert result.metrics["rel_l2"] < 5e-2, result.metrics
    assert "rel_l2=" in capsys.readouterr().out
    # the points it adds are the pool's worst: at its first refinement, every added point's
    # residual is at least the largest residual of the pool points it left out
    added = namespace["AddWorstPoints"](every=50, n=100)
    trainer = Trainer(Poisson1D(), KAN([1, 8, 1], seed=0), SolveOptions.from_kwargs(
        optim={"stages": [{"optimizer": "lbfgs", "steps": 50}]}, progress=False), plugins=[added])
    trainer.run()
    assert trainer.collocation.shape == (2500 + 100, 1)
    pool = Poisson1D().domain.sample_interior(2000, seed=50).to(trainer.collocation).requires_grad_(True)
    r = trainer.problem.residual(pool, trainer.model(pool)).detach().abs()[:, 0]  # the model it chose with
    chosen = torch.isin(pool.detach()[:, 0], trainer.collocation[-100:, 0])
    assert added.added == 100 and int(chosen.sum()) == 100
    assert r[chosen].min() >= r[~chosen].max()
    assert len(example("trainer plugin").strip().splitlines()) <= 32  # short enough to read at a glance
