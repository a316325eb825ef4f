"""A steering vector as an intervention for the probes' generation and sampling functions.

:mod:`probes` never writes to a model: :func:`probes.models.generation.generate` and
:func:`probes.decoding.sampling.sample_task` take an ``intervention(model, batch)`` callable that
returns a context manager active during each batched generate call. :func:`steering_intervention`
builds that callable from a vector and the arguments of :func:`steering.apply.apply`, checked
once when it is built::

    steer = steering_intervention(vec, layers=[2], alpha=4.0, positions="match:=")
    with family.open("base") as model:
        steered = sample_task(model, model.tokenizer, task, variant="base", intervention=steer)
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch

from probes.errors import ElicitError
from probes.models.generation import Intervention
from steering.apply import UNITS, apply, steer_positions_key
from steering.vector import SteeringVector

__all__ = ["steering_intervention"]


def steering_intervention(
    vector: SteeringVector,
    *,
    layers: Sequence[int] | int | None = None,
    alpha: float | torch.Tensor = 1.0,
    positions: str = "all",
    units: str = "vector",
) -> Intervention:
    """``intervention(model, batch)`` that opens ``apply(model, vector, layers=..., alpha=...,
    positions=..., units=...)`` around one generate call.

    The layers, positions and units are validated here, so a typo fails before any model runs.
    """
    if units not in UNITS:
        raise ElicitError(f"Unknown alpha units {units!r}. Valid: {list(UNITS)}.")
    steer_positions_key(positions)
    chosen = [layers] if isinstance(layers, int) else (None if layers is None else list(layers))
    if chosen is not None:
        vector.select(chosen)  # names the missing layers

    def intervene(model: Any, batch: Any) -> AbstractContextManager[Any]:
        return apply(model, vector, layers=chosen, alpha=alpha, positions=positions, units=units)

    return intervene
