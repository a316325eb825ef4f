"""probes: the instruments that READ models.

Families, hook sites, positions, tasks, the activation store, SAEs and crosscoders,
weight geometry, linear probes, decoding measures, statistics, the model organism and
plot functions. Nothing here writes to a model's weights or imports ``steering``.
"""

from probes.errors import CacheError, ElicitError, FamilyError, HookError, PositionError, TaskError
from probes.family import ModelFamily, VariantSpec, load_family, resolve_checkpoint
from probes.hooks import SITES, HookSite, parse_hooks, validate_hooks
from probes.positions import All, Index, Last, Match, Position, Span, parse_position, parse_positions
from probes.tasks import Example, Score, Task, parse_gsm8k_answer, register_scorer

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "ElicitError", "FamilyError", "HookError", "PositionError", "TaskError", "CacheError",
    # families
    "ModelFamily", "VariantSpec", "load_family", "resolve_checkpoint",
    # hooks and positions
    "SITES", "HookSite", "parse_hooks", "validate_hooks",
    "Position", "Last", "All", "Index", "Match", "Span", "parse_position", "parse_positions",
    # tasks
    "Example", "Score", "Task", "parse_gsm8k_answer", "register_scorer",
]
