"""What a run is, for resuming it: the problem, the model as built, and every setting, flat.

A checkpoint stores :func:`run_signature` of the run that wrote it; ``resume=True`` compares it
with the resuming call's (:func:`signature_changes`) and refuses any difference outside
:data:`RESUME_MAY_CHANGE` -- a resumed run trained on another problem, with another learning
rate or seed, would carry the history of one run under the label of another.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any

__all__ = ["RESUME_MAY_CHANGE", "Change", "run_signature", "signature_changes"]

#: settings a resume may change (glob patterns over the flat keys): how long and how visibly
#: the run goes on, not what it computes
RESUME_MAY_CHANGE = ("progress", "stop.*", "optim.stages.*.steps", "eval.every")


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        out[f"{prefix}.len"] = len(value)
        for i, v in enumerate(value):
            _flat(v, f"{prefix}.{i}", out)
    else:
        out[prefix] = value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)


def run_signature(problem, model, options) -> dict[str, Any]:
    """Flat ``{key: value}`` of the problem (name and parameters), the model (its class and
    configuration as printed before training) and every option."""
    out: dict[str, Any] = {"problem": getattr(problem, "name", type(problem).__name__),
                           "model": repr(model)}
    _flat(dict(getattr(problem, "params", {}) or {}), "problem", out)
    if getattr(problem, "has_unknowns", False):
        _flat(problem.unknown_parameters.describe(), "unknowns", out)
    _flat(options, "", out)
    return out


@dataclass(frozen=True)
class Change:
    """One setting that differs between the saved run and the resuming call."""

    key: str
    old: Any
    new: Any

    @property
    def allowed(self) -> bool:
        return any(fnmatch.fnmatchcase(self.key, pattern) for pattern in RESUME_MAY_CHANGE)

    def __str__(self) -> str:
        old, new = (" ".join(str(v).split()) for v in (self.old, self.new))
        shorten = (lambda t: t if len(t) <= 80 else t[:77] + "...")
        return f"{self.key}: {shorten(old)} -> {shorten(new)}"


_MISSING = "<not set>"


def signature_changes(saved: dict | None, current: dict) -> list[Change]:
    """The differences, key by key (none when the checkpoint predates signatures)."""
    if saved is None:
        return []
    keys = sorted(set(saved) | set(current))
    # a setting added to kanpde after the checkpoint was written is unchanged while it has its
    # default None (the saved run did not have it, and ran as if it were None)
    return [Change(k, saved.get(k, _MISSING), current.get(k, _MISSING)) for k in keys
            if saved.get(k, _MISSING) != current.get(k, _MISSING)
            and not (k not in saved and current.get(k) is None)]
