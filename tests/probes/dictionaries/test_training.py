"""Shared dictionary training (probes.dictionaries.training): kept rows, seeded batches, the trainer run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from probes.dictionaries.training import (
    Convergence,
    check_schedule,
    drops_first,
    inference_sae,
    keep_mask,
    plateau,
    position_key,
    row_batches,
    store_keep_mask,
    train_dictionary,
    until_converged,
)
from probes.errors import ElicitError, TaskError
from probes.models.positions import Last

torch.set_num_threads(min(2, torch.get_num_threads()))


def test_keep_mask_drops_each_prompts_first_row_and_outliers() -> None:
    # prompts 0, 0, 0, 1, 1; norms 1, 1, 50, 2, 1
    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [50.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    owner = torch.tensor([0, 0, 0, 1, 1])
    assert keep_mask(rows, owner, drop_first=True, outlier_factor=None).tolist() == [
        False,
        True,
        True,
        False,
        True,
    ]
    # rows kept so far 1, 2, 4: norms 1, 50, 1, median 1; 10 x 1 drops the row of norm 50
    assert keep_mask(rows, owner, drop_first=True, outlier_factor=10.0).tolist() == [
        False,
        True,
        False,
        False,
        True,
    ]
    # without dropping: median of 1, 1, 50, 2, 1 is 1, so only 50 goes
    assert keep_mask(rows, owner, drop_first=False, outlier_factor=10.0).tolist() == [
        True,
        True,
        False,
        True,
        True,
    ]
    assert keep_mask(rows[:0], owner[:0], drop_first=True, outlier_factor=10.0).tolist() == []


def test_drops_first_by_default_only_for_all_tokens() -> None:
    acts = SimpleNamespace(positions=("all", "last"))
    rows, owner = torch.ones(3, 2), torch.tensor([0, 0, 1])
    assert store_keep_mask(acts, None, rows, owner, drop_first=None, outlier_factor=None).tolist() == [  # type: ignore[arg-type]
        False,
        True,
        False,
    ]
    assert store_keep_mask(acts, "last", rows, owner, drop_first=None, outlier_factor=None).all()  # type: ignore[arg-type]
    assert position_key(acts, None) == "all" and position_key(acts, Last()) == "last"  # type: ignore[arg-type]
    assert drops_first(acts, None, None) is True  # type: ignore[arg-type]
    assert drops_first(acts, "last", None) is False  # type: ignore[arg-type]
    assert drops_first(acts, "last", True) is True  # type: ignore[arg-type]
    assert drops_first(acts, "all", False) is False  # type: ignore[arg-type]


def test_row_batches_are_seeded_epoch_permutations() -> None:
    rows = torch.arange(10.0).reshape(5, 2)
    batches = row_batches(rows, batch_size=2, seed=3)
    got = [next(batches) for _ in range(4)]
    # reference: one randperm per epoch from a generator seeded 3; 5 rows give 2 full batches an epoch
    g = torch.Generator().manual_seed(3)
    p1, p2 = torch.randperm(5, generator=g), torch.randperm(5, generator=g)
    want = [rows[p1[0:2]], rows[p1[2:4]], rows[p2[0:2]], rows[p2[2:4]]]
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    # fewer rows than a batch: each batch samples with replacement, still seeded
    small = row_batches(rows[:2], batch_size=4, seed=0)
    g = torch.Generator().manual_seed(0)
    torch.randperm(2, generator=g)
    assert torch.equal(next(small), rows[:2][torch.randint(0, 2, (4,), generator=g)])


def test_check_schedule_raises_the_given_error() -> None:
    check_schedule(1, 1)
    with pytest.raises(TaskError, match="steps=0, batch_size=4"):
        check_schedule(0, 4, TaskError)
    with pytest.raises(ElicitError, match="batch_size=0"):
        check_schedule(3, 0)


def _topk(d_in: int = 8, d_sae: int = 16):
    import sae_lens

    cfg = sae_lens.TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=2, normalize_activations="none")
    cfg.metadata = sae_lens.saes.sae.SAEMetadata(hook_name="blocks.0.hook_resid_post")
    return sae_lens.TopKTrainingSAE, cfg


def _train(seed: int, **kw):
    rows = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    cls, cfg = _topk()
    return train_dictionary(cls, cfg, rows, steps=4, batch_size=16, lr=1e-3, seed=seed, device="cpu", **kw)


def test_train_dictionary_is_seeded_and_hands_the_global_rng_back() -> None:
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a = _train(seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    b, c = _train(seed=1), _train(seed=2)
    assert torch.equal(a.W_dec, b.W_dec) and not torch.equal(a.W_dec, c.W_dec)
    with pytest.raises(TaskError, match="steps=0"):
        train_dictionary(
            *_topk(), torch.ones(4, 8), steps=0, batch_size=2, lr=1e-3, seed=0, device="cpu", error=TaskError
        )


def test_inference_sae_round_trips_and_removes_its_temporary_folder(tmp_path: Path) -> None:
    cls, cfg = _topk()
    torch.manual_seed(0)
    training = cls(cfg)  # an untrained training SAE: the weights of its init
    prefix = f"elicit-test-{tmp_path.name}-"
    sae = inference_sae(training, device="cpu", prefix=prefix)
    assert not list(Path(tempfile.gettempdir()).glob(prefix + "*"))
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # the inference SAE computes what the training one does (up to float rounding)
        torch.testing.assert_close(sae.encode(x), training.encode(x), atol=1e-6, rtol=1e-5)
    kept = inference_sae(training, device="cpu", out=tmp_path / "sae")
    assert (tmp_path / "sae" / "cfg.json").exists() and torch.equal(kept.W_dec, sae.W_dec)


def test_train_dictionary_records_each_steps_batch_fvu() -> None:
    curve: list[float] = []
    _train(seed=1, curve=curve)
    assert len(curve) == 4 and all(0.0 < c < 10.0 for c in curve)


def test_plateau_by_hand() -> None:
    # 100 steps, windows of 5 ending at steps 60 and 80: means 0.6 and 0.5 -> rel 0.2, not flat
    curve = [1.0] * 55 + [0.6] * 5 + [0.55] * 15 + [0.5] * 5 + [0.1] * 20
    ok, mid, late, rel = plateau(curve, tol=0.02)
    assert (ok, mid, late) == (False, pytest.approx(0.6), pytest.approx(0.5)) and rel == pytest.approx(0.2)
    assert plateau(curve, tol=0.25)[0]  # the same curve under a looser cut
    assert plateau(curve, abs_tol=0.2)[0]  # or a looser absolute cut (0.1 points of FVU < 0.2)
    # near-perfect reconstruction: 30% relative but 0.003 absolute -> a plateau
    assert plateau([0.5] * 50 + [0.013] * 10 + [0.011] * 10 + [0.010] * 30)[0]
    # the decay phase (last 20%) is ignored: a drop there does not count against the plateau
    assert plateau([0.5] * 80 + [0.1] * 20)[0]
    assert not plateau([1.0] * 9)[0]  # too short to judge


def test_until_converged_doubles_until_the_plateau_or_the_cap() -> None:
    calls: list[int] = []

    def fit(n: int) -> tuple[str, list[float]]:
        calls.append(n)
        # a curve that is still falling at 60-80% unless the run is >= 400 steps long
        falling = n < 400
        return f"sae{n}", [1.0 - (0.004 * i if falling else 0.0) for i in range(n)]

    sae, conv = until_converged(fit, 100, 1000)
    assert calls == [100, 200, 400] and sae == "sae400"
    assert (
        isinstance(conv, Convergence)
        and conv.converged
        and conv.steps == 400
        and conv.tried == (100, 200, 400)
    )
    calls.clear()
    sae, conv = until_converged(fit, 100, 250)  # capped: 200 is the last schedule that fits
    assert calls == [100, 200] and not conv.converged and conv.steps == 200
    assert conv.to_dict()["tried"] == [100, 200] and "60%" in conv.criterion
