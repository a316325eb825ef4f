"""Pretraining the base: seeded bits, the sharding checks, and no process state left behind."""

from __future__ import annotations

import os

import pytest
import torch

from probes.errors import ElicitError, OrganismError
from probes.organism.pretrain import ModelConfig, PretrainConfig, _batch, new_model, pretrain
from probes.organism.world import PAD_ID, VOCAB, encode, make_splits


def _short(seed: int, **cfg):
    sp = make_splits(2, seed)
    return pretrain(
        None, sp, sp, seed=seed, cfg=PretrainConfig(steps=8, batch_size=16, **cfg), progress=False
    )


def test_same_seed_gives_bit_identical_weights():
    a, b, c = _short(0), _short(0), _short(1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # training moved the weights away from the seeded initialisation
    init = new_model(ModelConfig(), 0).state_dict()
    assert not torch.equal(init["model.embed_tokens.weight"], sa["model.embed_tokens.weight"])


def test_pretrain_leaves_the_process_state_unchanged():
    env, threads = dict(os.environ), torch.get_num_threads()
    rng, det = torch.random.get_rng_state(), torch.are_deterministic_algorithms_enabled()
    _short(2)
    assert dict(os.environ) == env and torch.get_num_threads() == threads
    assert (
        torch.equal(torch.random.get_rng_state(), rng) and torch.are_deterministic_algorithms_enabled() == det
    )


def test_new_model_is_seeded_and_leaves_the_rng_alone():
    before = torch.random.get_rng_state()
    a, b = new_model(ModelConfig(), 5), new_model(ModelConfig(), 5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert a.config.vocab_size == len(VOCAB) and a.config.tie_word_embeddings


def test_batch_pads_right_and_masks_pads_from_the_loss():
    inp, labels = _batch(["N 1 0 = 1", "C1 1 ="])
    first, second = encode("N 1 0 = 1", eos=True), encode("C1 1 =", eos=True)
    assert inp[0].tolist() == first and inp[1].tolist() == second + [PAD_ID] * (len(first) - len(second))
    assert labels[1].tolist() == second + [-100] * (len(first) - len(second))


@pytest.mark.parametrize(
    ("cfg", "rank", "rendezvous", "match"),
    [
        (PretrainConfig(shards=3), None, None, "shards must be 1 or 2, got 3"),
        (PretrainConfig(shards=1), 0, "/tmp/x", r"shards == 2 \(got 1\)"),
        (PretrainConfig(), 1, None, "a rendezvous file"),
        (PretrainConfig(), 2, "/tmp/x", r"rank 0 or 1 \(got 2\)"),
    ],
)
def test_bad_sharding_is_an_organism_error(cfg, rank, rendezvous, match):
    sp = make_splits(2, 0)
    with pytest.raises(OrganismError, match=match) as err:
        pretrain(None, sp, sp, cfg=cfg, rank=rank, rendezvous=rendezvous, progress=False)
    assert isinstance(err.value, ElicitError)
