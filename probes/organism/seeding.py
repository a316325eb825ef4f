"""Seeded, pinned-thread scopes for the organism's training: set inside, restored on exit.

The organism trains with third-party code (transformers' model init, TRL's trainers, HF
``generate`` sampling) that draws from the *global* RNGs of python, numpy and torch, and
TRL's ``Trainer`` reseeds them itself. A local ``torch.Generator`` cannot reach those draws,
so bit-identical weights need the global RNGs seeded; :func:`seeded` does that inside a
scope and hands the caller's RNG states, intra-op thread count and deterministic-algorithm
flags back on exit, so calling the kit changes no process state.

    >>> import torch
    >>> before = torch.random.get_rng_state()
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b), torch.equal(torch.random.get_rng_state(), before)
    (True, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["pinned_threads", "seeded"]


@contextmanager
def pinned_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (``None``: unchanged); restore the count after."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def seeded(seed: int, threads: int | None = None) -> Iterator[None]:
    """Seed python / numpy (legacy global) / torch (CPU) with ``seed``, ask torch for
    deterministic kernels and, when given, pin ``threads``; all of it is undone on exit.

    The organism trains on CPU, so only the CPU torch generator is forked (``devices=[]``).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    det, det_warn = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    with torch.random.fork_rng(devices=[]), pinned_threads(threads):
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.use_deterministic_algorithms(det, warn_only=det_warn)
