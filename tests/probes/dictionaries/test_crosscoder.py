"""A crosscoder trained on planted paired data recovers shared, base-only and variant-only directions;
the per-model stacking and split, and the store-backed entry point, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sae_lens
import torch

from probes import load_family
from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.dictionaries.crosscoder import (
    Crosscoder,
    CrosscoderError,
    crosscoder_latents,
    crosscoder_summary,
    fit_crosscoder,
    latent_scaling,
    paired_rows,
    train_crosscoder,
)
from tests.tiny import perturb_checkpoint

torch.set_num_threads(min(2, torch.get_num_threads()))
KINDS = ("shared", "base_only", "variant_only")


def planted(n: int = 6000, d: int = 32, n_each: int = 10, p: float = 0.05, seed: int = 0):
    """Orthonormal features: shared ones in both models, base-only in the base, variant-only in the variant."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:, : 3 * n_each].T
    z = (torch.rand(n, 3 * n_each, generator=g) < p).float() * (
        0.5 + 1.5 * torch.rand(n, 3 * n_each, generator=g)
    )
    s, b, v = slice(0, n_each), slice(n_each, 2 * n_each), slice(2 * n_each, 3 * n_each)
    h_base = z[:, s] @ feats[s] + z[:, b] @ feats[b]
    h_variant = z[:, s] @ feats[s] + z[:, v] @ feats[v]
    zero = torch.zeros(n_each, d)
    dec = torch.cat(
        [torch.cat([feats[s], feats[s]], 1), torch.cat([feats[b], zero], 1), torch.cat([zero, feats[v]], 1)]
    )
    kinds = np.repeat(np.array(KINDS), n_each)
    return h_base, h_variant, dec, kinds


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    hb, hv, dec, kinds = planted()
    out = tmp_path_factory.mktemp("cc") / "cc"
    cc = fit_crosscoder(hb, hv, d_sae=64, k=1.5, steps=700, batch_size=256, lr=3e-3, seed=0, out=out)
    return cc, hb, hv, dec, kinds, out


def test_recovers_planted_classes(trained) -> None:
    cc, hb, hv, dec, kinds, _ = trained
    lat = crosscoder_latents(cc, rows=(hb, hv))
    # match every live latent to the planted feature its (scaled) decoder row is closest to
    w = cc.sae.W_dec.detach()
    w = w / w.norm(dim=1, keepdim=True)
    planted_dirs = dec / dec.norm(dim=1, keepdim=True)
    best = (w @ planted_dirs.T).max(1)
    alive = lat["alive"].to_numpy()
    matched = alive & (best.values.numpy() > 0.9)
    assert matched.sum() >= 0.9 * alive.sum()
    truth = kinds[best.indices.numpy()]
    pred = lat["cls"].to_numpy()
    for kind in KINDS:
        sel = matched & (pred == kind)
        precision = (truth[sel] == kind).mean()
        found = {int(i) for i in best.indices.numpy()[sel & (truth == kind)]}
        recall = len(found) / int((kinds == kind).sum())
        assert precision >= 0.9 and recall >= 0.9, (kind, precision, recall)
    summary = crosscoder_summary(lat)
    assert summary.loc[0, "n_variant_only"] >= 9 and summary.loc[0, "n_base_only"] >= 9
    # latent scaling: variant-only latents are absent from the base (ν ≈ 0)
    assert lat.loc[(lat.cls == "variant_only") & lat.alive, "nu"].abs().max() < 0.1


def test_latent_scaling_detects_a_split_latent(trained) -> None:
    cc, hb, hv, _, _, _ = trained
    lat = crosscoder_latents(cc, rows=(hb, hv))
    j = int(lat[(lat.cls == "variant_only") & lat.alive].latent.iloc[0])
    # plant the variant-only direction into the base as well: ν must move to ≈ 1
    d_v = cc.decoders[j, 1] / cc.scales[1]
    f = cc.encode(hb, hv)[:, j : j + 1]
    hb2 = hb + (f * d_v) * cc.scales[1] / cc.scales[0]
    nu = latent_scaling(cc, hb2, hv, [j]).nu.iloc[0]
    assert nu == pytest.approx(1.0, abs=0.15)


def test_saved_crosscoder_round_trip(trained) -> None:
    cc, hb, hv, _, _, out = trained
    again = Crosscoder.load(out)
    assert again.models == cc.models and again.scales == pytest.approx(cc.scales)
    assert torch.equal(again.encode(hb, hv), cc.encode(hb, hv))
    plain = sae_lens.SAE.load_from_disk(str(out))  # the dictionary is an ordinary sae_lens folder
    assert plain.cfg.d_in == 2 * hb.shape[1]
    assert not any(p.suffix in (".pkl", ".pt", ".bin") for p in Path(out).iterdir())
    rb, rv = cc.decode(cc.encode(hb[:5], hv[:5]))
    assert rb.shape == hb[:5].shape and rv.shape == hv[:5].shape


def test_relative_norm_by_hand(trained) -> None:
    cc = trained[0]
    lat = crosscoder_latents(cc)
    d = cc.decoders
    j = 3
    nb, nv = float(d[j, 0].norm()), float(d[j, 1].norm())
    # Minder et al.'s relative norm difference, by hand
    assert lat.rel_norm.iloc[j] == pytest.approx(0.5 * ((nv - nb) / max(nv, nb) + 1), rel=1e-5)
    assert isinstance(lat, pd.DataFrame) and set(lat.cls) <= set(KINDS)


class _LinearSAE:
    """A stand-in dictionary: ``encode`` is the identity, ``decode`` is ``f @ W_dec``."""

    def __init__(self, W_dec: torch.Tensor) -> None:
        self.W_dec = W_dec
        self.cfg = type("Cfg", (), {"d_sae": W_dec.shape[0], "d_in": W_dec.shape[1]})()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec


def test_stacking_and_per_model_split_by_hand() -> None:
    W_dec = torch.arange(12.0).reshape(3, 4)  # d_sae 3, d_model 2: row j = [d_j^base; d_j^variant]
    cc = Crosscoder(_LinearSAE(W_dec), scales=(2.0, 4.0))
    assert cc.d_model == 2 and cc.d_sae == 3
    assert cc.decoders[1].tolist() == [[4.0, 5.0], [6.0, 7.0]]  # [model, d_model]
    x = cc.encode(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]))
    assert x.tolist() == [[2.0, 4.0, 12.0, 16.0]]  # [s_b·h_base; s_v·h_variant]
    rb, rv = cc.decode(torch.tensor([[1.0, 0.0, 0.0]]))  # W_dec[0] = [0, 1, 2, 3] in scaled units
    assert rb.tolist() == [[0.0, 0.5]] and rv.tolist() == [[0.5, 0.75]]
    with pytest.raises(CrosscoderError, match=r"\[..., 2\]"):
        cc.encode(torch.zeros(1, 3), torch.zeros(1, 3))


def test_latent_scaling_nu_and_nu_r_by_hand() -> None:
    # identity dictionary over [h_base; h_variant] (d_model 2, d_sae 4): latent j's decoder row is
    # e_j, so latent 2 is variant-only (base half 0, variant half e_0), f = x and the error is 0.
    cc = Crosscoder(_LinearSAE(torch.eye(4)), scales=(1.0, 1.0))
    hb = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    hv = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    got = latent_scaling(cc, hb, hv, [2]).iloc[0]
    # error target h - h_hat + f_j d_j^m: base 0 (d_j^base = 0), variant f_j e_0 -> beta 0 and 1
    assert got.beta_base == pytest.approx(0.0) and got.beta_variant == pytest.approx(1.0)
    assert got.nu == pytest.approx(0.0)
    # reconstruction target h_hat: beta^r_base = sum f h_b[0] / sum f^2 = (2*1 + 1*2) / (4 + 1) = 0.8,
    # beta^r_variant = (2*2 + 1*1) / 5 = 1 -> nu^r 0.8 (the base's reconstruction carries e_0)
    assert got.beta_base_r == pytest.approx(0.8) and got.beta_variant_r == pytest.approx(1.0)
    assert got.nu_r == pytest.approx(0.8) and got.n_active == 2


def test_summary_counts_truly_variant_only_by_both_ratios() -> None:
    lat = pd.DataFrame(
        {
            "cls": ["variant_only"] * 3 + ["shared"],
            "alive": [True] * 4,
            "nu": [0.1, 0.1, 0.9, 0.0],
            "nu_r": [0.2, 0.8, 0.1, 0.0],
        }
    )
    row = crosscoder_summary(lat).iloc[0]
    assert row.n_variant_only == 3 and row.n_variant_only_low_nu == 1  # only the first passes both
    assert row.nu_median == pytest.approx(0.1) and row.nu_r_median == pytest.approx(0.2)


def test_convergence_is_recorded_and_doubles_until_plateau() -> None:
    hb, hv, _, _ = planted(n=2000)
    cc = fit_crosscoder(hb, hv, d_sae=64, k=1.5, steps=40, max_steps=640, batch_size=256, lr=3e-3, seed=0)
    conv = cc.meta["convergence"]
    assert conv["tried"][0] == 40 and all(
        b == 2 * a for a, b in zip(conv["tried"], conv["tried"][1:], strict=False)
    )
    assert conv["steps"] == conv["tried"][-1] == cc.meta["steps"]
    # either it converged (rel < tol) or it ran out of steps (the next doubling exceeds max_steps)
    drop = conv["fvu_mid"] - conv["fvu_late"]
    assert conv["converged"] == (conv["rel_improvement"] < conv["tol"] or drop < conv["abs_tol"])
    assert conv["converged"] or 2 * conv["steps"] > 640
    assert len(conv["tried"]) > 1  # 40 steps is too short to plateau on this data


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(CrosscoderError, match="paired"):
        fit_crosscoder(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(CrosscoderError, match="steps and batch_size"):
        fit_crosscoder(torch.ones(4, 3), torch.ones(4, 3), steps=0)
    with pytest.raises(CrosscoderError, match="k must be"):
        fit_crosscoder(torch.ones(4, 3), torch.ones(4, 3), d_sae=4, k=5)
    with pytest.raises(CrosscoderError, match="No crosscoder"):
        Crosscoder.load(tmp_path)
    (tmp_path / "cfg.json").write_text("{}")
    (tmp_path / "crosscoder.json").write_text('{"format": 1, "models": ["base", "v"]}')
    with pytest.raises(CrosscoderError, match="'scales'"):
        Crosscoder.load(tmp_path)
    (tmp_path / "crosscoder.json").write_text('{"models": ["base"], "scales": [1.0]}')
    with pytest.raises(CrosscoderError, match="two of each"):
        Crosscoder.load(tmp_path)


def test_train_crosscoder_reads_the_store(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    fam = load_family(
        {"base": str(base), "tuned": str(perturb_checkpoint(base, tmp_path / "tuned", scale=0.02))}
    )
    recs = [
        {
            "id": f"p{i}",
            "prompt": " ".join("1" if (i >> b) & 1 else "0" for b in range(4)) + " =",
            "answer": "1",
        }
        for i in range(8)
    ]
    acts = collect_activations(
        fam, Task.from_records("toy", recs), "resid_post.1", "all", out=tmp_path / "acts", progress=False
    )
    cc = train_crosscoder(
        acts, "base", "tuned", "resid_post.1", d_sae=16, k=2, steps=5, batch_size=32, seed=0
    )
    hb, hv, owner = paired_rows(acts, "base", "tuned", "resid_post.1", "all")
    assert (
        len(hb) == len(hv) == len(owner) == cc.meta["n_rows"] == 8 * 5
    )  # 8 prompts of 6 tokens, BOS dropped
    assert (
        cc.models == ("base", "tuned") and cc.meta["site"] == "resid_post.1" and cc.meta["position"] == "all"
    )
    assert cc.meta["steps"] == 5 and cc.d_sae == 16
    assert cc.scales[0] == pytest.approx(
        64**0.5 / float(hb.norm(dim=-1).mean()), rel=1e-6
    )  # norm sqrt(d_model)
    lat = crosscoder_latents(cc, acts)  # reads the same rows again from its own metadata
    assert len(lat) == 16 and "freq" in lat
