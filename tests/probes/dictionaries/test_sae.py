"""SAE measures equal hand computations; kit-saved SAEs load with plain sae_lens; a lossless and a
null splice give the known transfer measures; tiny end-to-end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sae_lens
import torch
import transformers

from probes import load_family
from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.dictionaries.sae import (
    SAEError,
    _kept_tokens,
    _reconstruction_sums,
    _transfer_stats,
    decoder_direction,
    fit_quality,
    fit_sae,
    fvu,
    l0,
    latent_shifts,
    load_sae,
    loss_recovered,
    sae_transfer,
    save_sae,
    token_rows,
    train_sae,
)
from tests.tiny import perturb_checkpoint

torch.set_num_threads(min(2, torch.get_num_threads()))


def test_fvu_l0_loss_recovered_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    x_hat = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    # mean (2/3, 2/3); Σ‖x − mean‖² = 5/9 + 5/9 + 2/9 = 4/3; Σ‖x − x̂‖² = 1
    assert fvu(x, x_hat) == pytest.approx(0.75)
    assert fvu(x, x) == 0.0
    assert l0(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])) == pytest.approx(1.0)
    assert loss_recovered(clean=2.0, spliced=2.5, ablated=4.0) == pytest.approx(0.75)
    with pytest.raises(SAEError):
        fvu(x, x_hat[:2])


def test_transfer_stats_by_hand() -> None:
    # three prompts with per-prompt sums, as sae_transfer accumulates them
    a = {
        "err": np.array([1.0, 2.0, 3.0]),
        "sq": np.array([10.0, 20.0, 30.0]),
        "xsum": np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]),
        "ntok": np.array([2.0, 3.0, 5.0]),
        "l0": np.array([4.0, 9.0, 10.0]),
        "excl": np.zeros(3),
        "ce_c": np.array([2.0, 3.0, 5.0]),
        "ce_s": np.array([3.0, 4.0, 6.0]),
        "ce_a": np.array([6.0, 9.0, 10.0]),
        "kl_s": np.array([1.0, 1.0, 2.0]),
        "kl_a": np.array([4.0, 5.0, 7.0]),
        "npred": np.array([2.0, 3.0, 5.0]),
    }
    out = _transfer_stats(a, n_resamples=200, confidence=0.95, seed=0)
    den = 60.0 - (2.0**2 + 3.0**2) / 10.0  # Σ‖x‖² − ‖Σx‖²/N
    assert out["fvu"] == pytest.approx(6.0 / den)
    assert out["l0"] == pytest.approx(23.0 / 10.0)
    assert out["ce_recovered"] == pytest.approx((25.0 - 13.0) / (25.0 - 10.0))
    assert out["kl_recovered"] == pytest.approx((16.0 - 4.0) / 16.0)
    assert out["ce_clean"] == pytest.approx(1.0) and out["n_tokens"] == 10 and out["n_prompts"] == 3
    for m in ("fvu", "l0", "ce_recovered", "kl_recovered"):
        assert out[f"{m}_lo"] <= out[m] + 1e-12 and out[m] <= out[f"{m}_hi"] + 1e-12


def test_kept_tokens_and_reconstruction_sums_by_hand() -> None:
    # one text of 4 tokens, d_model 2; token 0 is BOS, token 3 has an outlier norm (10 > 2 x median 1)
    x = torch.tensor([[[5.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 0.0]]])
    mask = torch.ones(1, 4, dtype=torch.long)
    real = torch.tensor([[False, True, True, True]])
    keep = _kept_tokens(x, real, outlier_factor=2.0)
    assert keep.tolist() == [[False, True, True, False]]
    assert _kept_tokens(x, real, outlier_factor=None).tolist() == real.tolist()
    x_hat = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]])
    f = torch.tensor([[[1.0, 0.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])
    sums = _reconstruction_sums(x, x_hat, f, keep, mask)
    # kept tokens 1 and 2: error 1 + 0, ‖x‖² 1 + 1, Σx = (1, 1), active latents 2 + 1
    assert sums["err"].tolist() == [1.0] and sums["sq"].tolist() == [2.0]
    assert sums["xsum"].tolist() == [[1.0, 1.0]] and sums["ntok"].tolist() == [2.0]
    assert sums["l0"].tolist() == [3.0]
    assert sums["excl"].tolist() == [1.0]  # the outlier; the BOS is not counted


class _FixedSAE:
    """A stand-in SAE: ``encode`` is the identity, ``decode`` returns ``scale · f`` (1: lossless, 0: zero)."""

    def __init__(self, d_model: int, scale: float, hook_name: str = "blocks.1.hook_resid_post") -> None:
        self.scale = scale
        self.cfg = type(
            "Cfg",
            (),
            {"d_in": d_model, "d_sae": d_model, "metadata": type("Meta", (), {"hook_name": hook_name})()},
        )()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return self.scale * f


def test_lossless_and_zero_splices_give_the_known_transfer_measures(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    task = _task()
    lossless = sae_transfer(fam, _FixedSAE(64, 1.0), task, n_resamples=50, outlier_factor=None).iloc[0]
    # the splice puts back exactly the activation: nothing lost, so everything is recovered
    assert lossless.fvu == 0.0 and lossless.ce_spliced == lossless.ce_clean
    assert lossless.ce_recovered == pytest.approx(1.0) and lossless.kl_recovered == pytest.approx(1.0)
    assert lossless.l0 == pytest.approx(64.0)  # identity "latents": every residual coordinate is non-zero
    assert lossless.n_excluded == 0
    zero = sae_transfer(
        fam, {"resid_post.1": _FixedSAE(64, 0.0)}, task, n_resamples=50, outlier_factor=None
    ).iloc[0]
    # a zero reconstruction *is* the ablation: nothing recovered, and FVU = Σ‖x‖² / Σ‖x − mean‖² > 1
    assert zero.ce_spliced == zero.ce_ablated and zero.ce_recovered == pytest.approx(0.0)
    assert zero.kl_recovered == pytest.approx(0.0) and zero.fvu > 1.0
    assert zero.hook == "resid_post.1" and zero.layer == 1


def test_sae_transfer_errors_name_the_bad_value(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    sae = _FixedSAE(64, 1.0)
    with pytest.raises(SAEError, match="variants is empty"):
        sae_transfer(fam, sae, _task(), variants=[])
    with pytest.raises(SAEError, match="batch_size"):
        sae_transfer(fam, sae, _task(), batch_size=0)
    with pytest.raises(SAEError, match="empty mapping"):
        sae_transfer(fam, {}, _task())
    with pytest.raises(SAEError, match="outlier_factor"):
        sae_transfer(fam, sae, _task(), outlier_factor=0.0)
    with pytest.raises(SAEError, match="d_in=32"):
        sae_transfer(fam, _FixedSAE(32, 1.0), _task(), n_resamples=10)


def _rows(n: int = 1024, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(32, d, generator=g)
    z = (torch.rand(n, 32, generator=g) < 0.1).float() * torch.rand(n, 32, generator=g)
    return z @ dirs


@pytest.mark.parametrize("arch", ["batchtopk", "topk", "standard", "jumprelu"])
def test_saved_sae_loads_with_plain_sae_lens(arch: str, tmp_path: Path) -> None:
    x = _rows()
    sae = fit_sae(
        x,
        architecture=arch,
        d_sae=32,
        k=4,
        steps=20,
        batch_size=64,
        lr=1e-3,
        out=tmp_path / "sae",
        hook_name="blocks.0.hook_resid_post",
    )
    plain = sae_lens.SAE.load_from_disk(str(tmp_path / "sae"))
    assert type(plain) is type(sae)
    assert torch.equal(plain.encode(x), sae.encode(x))
    assert torch.equal(plain.decode(plain.encode(x)), sae.decode(sae.encode(x)))
    assert plain.cfg.metadata.hook_name == "blocks.0.hook_resid_post"
    again = load_sae(save_sae(plain, tmp_path / "copy"))
    assert torch.equal(again.encode(x), sae.encode(x))


@pytest.mark.parametrize(("arch", "saved_as"), [("batchtopk", "jumprelu"), ("topk", "topk")])
def test_fit_quality_names_the_trained_architecture_and_recomputes_fvu_l0_dead(
    arch: str, saved_as: str
) -> None:
    x = _rows()
    sae = fit_sae(x, architecture=arch, d_sae=64, k=4, steps=20, batch_size=64, lr=1e-3)
    q = fit_quality(sae, x)
    assert (q.architecture, q.saved_as, q.n_rows, q.d_sae) == (arch, saved_as, len(x), 64)
    # plain torch, from the definitions
    with torch.no_grad():
        f = sae.encode(x)
        x_hat = sae.decode(f)
    want_fvu = float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
    assert q.fvu == pytest.approx(want_fvu, rel=1e-5)
    assert q.l0 == pytest.approx(float((f != 0).sum(1).float().mean()))
    assert q.dead_share == pytest.approx(float((f.abs().sum(0) == 0).float().mean()))
    if arch == "topk":
        assert q.l0 == 4.0
    text = str(q)
    assert text.startswith(f"{arch} SAE") and "FVU" in text and "L0" in text and "dead latents" in text
    assert ("saved by sae_lens as jumprelu" in text) == (arch == "batchtopk")
    with pytest.raises(SAEError, match="d_in=16"):
        fit_quality(sae, x[:, :8])


def test_training_is_seeded_and_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    x = _rows()
    torch.manual_seed(11)
    before = torch.random.get_rng_state()
    a = fit_sae(x, architecture="topk", d_sae=32, k=4, steps=20, batch_size=64, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = fit_sae(x, architecture="topk", d_sae=32, k=4, steps=20, batch_size=64, seed=3)
    c = fit_sae(x, architecture="topk", d_sae=32, k=4, steps=20, batch_size=64, seed=4)
    assert torch.equal(a.W_dec, b.W_dec) and not torch.equal(a.W_dec, c.W_dec)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(SAEError, match="cfg.json"):
        load_sae(tmp_path / "nothing")
    with pytest.raises(SAEError, match="architecture"):
        fit_sae(_rows(), architecture="gated", steps=1)
    with pytest.raises(SAEError, match="k must be"):
        fit_sae(_rows(), architecture="topk", d_sae=8, k=20, steps=1)
    with pytest.raises(SAEError, match="steps and batch_size"):
        fit_sae(_rows(), architecture="topk", d_sae=8, k=2, steps=0)


def _task() -> Task:
    recs = []
    for i in range(12):
        bits = " ".join("1" if (i >> b) & 1 else "0" for b in range(4))
        label = "careful" if i % 2 else "direct"
        recs.append(
            {
                "id": f"p{i}",
                "prompt": f"{'C' if i % 2 else 'D'} {bits} = {bits} # a b",
                "answer": "1",
                "label": label,
            }
        )
    return Task.from_records("toy", recs)


def test_end_to_end_tiny_llama(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    tuned = perturb_checkpoint(base, tmp_path / "tuned", scale=0.02)
    fam = load_family({"base": str(base), "tuned": str(tuned)})
    task = _task()
    acts = collect_activations(fam, task, "resid_post.1", "all", out=tmp_path / "acts", progress=False)
    sae = train_sae(
        acts,
        "base",
        "resid_post.1",
        "all",
        architecture="topk",
        d_sae=128,
        k=8,
        steps=60,
        batch_size=64,
        lr=3e-3,
        out=tmp_path / "sae",
    )
    assert sae.cfg.metadata.hook_name == "blocks.1.hook_resid_post"
    assert sae.cfg.metadata.elicit_variant == "base"
    assert sae.cfg.metadata.elicit_position == "all" and sae.cfg.d_sae == 128
    rows, owner = token_rows(acts, "base", "resid_post.1", "all")
    all_rows, _ = acts.get_tokens("base", "resid_post.1", "all")
    assert (
        sae.cfg.metadata.elicit_n_rows == len(rows) <= len(all_rows) - len(task.prompts)
    )  # BOS rows dropped

    table = sae_transfer(fam, sae, task, n_resamples=200)
    assert list(table["variant"]) == ["base", "tuned"] and list(table["layer"]) == [1, 1]
    n_tok = sum(len(t) - 1 for t in fam.tokenizer()(list(task.prompts))["input_ids"])  # all but BOS
    for _, row in table.iterrows():
        assert row.n_prompts == 12 and row.n_tokens + row.n_excluded == n_tok
        assert row.l0 == pytest.approx(8.0)  # TopK: exactly k per kept token
        for m in ("fvu", "ce_recovered", "kl_recovered"):
            assert np.isfinite(row[m]) and row[f"{m}_lo"] <= row[m] + 1e-9 <= row[f"{m}_hi"] + 2e-9

    # clean CE equals plain transformers' next-token loss, token-weighted over the prompts
    model = transformers.AutoModelForCausalLM.from_pretrained(base).eval()
    tok = transformers.AutoTokenizer.from_pretrained(base)
    tot, cnt = 0.0, 0
    for p in task.prompts:
        ids = tok(p, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            tot += float(model(ids, labels=ids).loss) * (ids.shape[1] - 1)
        cnt += ids.shape[1] - 1
    assert table.iloc[0].ce_clean == pytest.approx(tot / cnt, rel=1e-4)

    shifts = latent_shifts(acts, sae, variants=["tuned"], contrast=("careful", "direct"))
    assert len(shifts) == 2 * 128
    base_rows = shifts[shifts.variant == "base"]
    assert (base_rows.freq_shift == 0).all()
    assert shifts.contrast_auroc.between(0, 1).all()
    assert sorted(shifts[shifts.variant == "tuned"].shift_rank) == list(range(1, 129))
    vec = decoder_direction(sae, 5)
    assert vec.shape == (64,) and torch.equal(vec, sae.W_dec[5].detach())
    assert decoder_direction(sae, 5, normalize=True).norm() == pytest.approx(1.0)
