"""The one exception type of the kit.

Every error a user can trigger is an :class:`ElicitError` (or a subclass). The message
names the bad value, the valid options and the fix.
"""

from __future__ import annotations

__all__ = [
    "ElicitError",
    "FamilyError",
    "HookError",
    "PositionError",
    "TaskError",
    "CacheError",
    "OrganismError",
    "CheckpointError",
]


class ElicitError(Exception):
    """Base class of every error raised by elicitkit for bad input or bad state."""


class FamilyError(ElicitError):
    """A model family could not be resolved, loaded or is inconsistent."""


class HookError(ElicitError):
    """A hook site is unknown for this model, or a requested hook did not fire."""


class PositionError(ElicitError):
    """A token position could not be resolved in a prompt."""


class TaskError(ElicitError):
    """A task is empty, malformed, or a prompt does not fit the model."""


class CacheError(ElicitError):
    """An on-disk artifact is missing, truncated, or does not match its metadata."""


class OrganismError(ElicitError):
    """The organism could not be trained to spec (a recipe value, the base gate), or a cached organism is unusable."""


class CheckpointError(ElicitError):
    """A checkpoint folder cannot be read as safetensors, or two checkpoints do not pair."""
