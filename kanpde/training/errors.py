"""Runs refused before training (the ``kanpde`` command exits with 1 for these)."""
from __future__ import annotations

__all__ = ["SetupError", "RunFolderInUse", "ResumeMismatch"]


class SetupError(ValueError):
    """A run refused before training: the settings, the model, the problem or the run folder do
    not fit together."""


class RunFolderInUse(SetupError):
    """The output folder already holds a run that this call would overwrite."""


class ResumeMismatch(SetupError):
    """``resume=True`` asked to continue a run with settings other than the ones it was started
    with (beyond the changes a resume may make)."""
