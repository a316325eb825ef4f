"""steering: the DIRECTIONS. Fitting and applying steering vectors, sweeps, behavioural
elicitation, the select-vs-create battery and report, and the ``elicit`` CLI.

``steering`` imports ``probes``; ``probes`` never imports ``steering``.
"""

from steering.apply import STEER_POSITIONS, apply
from steering.vector import METHODS, SteeringVector, VectorError, fit_vector, random_like

__all__ = [
    "SteeringVector",
    "VectorError",
    "fit_vector",
    "random_like",
    "METHODS",
    "apply",
    "STEER_POSITIONS",
]
