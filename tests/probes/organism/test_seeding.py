"""Seeded scopes: the same draws for the same seed, and the caller's state handed back."""

from __future__ import annotations

import random

import numpy as np
import torch

from probes.organism.seeding import pinned_threads, seeded


def _draws() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_seeded_reproduces_the_global_seeding_it_replaces():
    with seeded(7):
        got = _draws()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    want = _draws()
    assert got[:2] == want[:2] and torch.equal(got[2], want[2])


def test_seeded_restores_rng_states_threads_and_determinism():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    py, npy, tor = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with seeded(3, threads=1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        _draws()
    assert random.getstate() == py and torch.equal(torch.random.get_rng_state(), tor)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), npy, strict=True))
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


def test_seeded_restores_on_error_and_pinned_threads_restores():
    before = torch.random.get_rng_state()
    try:
        with seeded(0):
            torch.rand(5)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.equal(torch.random.get_rng_state(), before)
    threads = torch.get_num_threads()
    with pinned_threads(1):
        assert torch.get_num_threads() == 1
    with pinned_threads(None):
        assert torch.get_num_threads() == threads
    assert torch.get_num_threads() == threads
