"""Steering is exact: equal to a hand-written hook on the plain transformers model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from probes import Task, collect_activations, load_family
from probes.models.generation import generate
from steering import SteeringVector, apply, fit_vector, random_like
from tests.conftest import assert_close_in

PROMPTS = ["a b c = 1 2", "d e =", "f = g h i j", "k l m n ="]


def _blocks(model):
    return model.model.layers if hasattr(model, "model") else model.transformer.h


def reference_logits(
    folder: Path, prompts, layer, delta, alpha, which, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> list[torch.Tensor]:
    """Plain transformers + register_forward_hook adding alpha*delta at chosen positions, unpadded."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    delta = delta.to(device=device, dtype=dtype)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    out = []
    for i, p in enumerate(prompts):
        ids = tok(p, return_tensors="pt").input_ids.to(device)
        toks = tok.convert_ids_to_tokens(ids[0])
        pos = which(toks)
        a = alpha[i] if isinstance(alpha, list) else alpha

        def hook(mod, inp, o, pos=pos, a=a):
            h = o[0] if isinstance(o, tuple) else o
            h = h.clone()
            h[0, pos] += a * delta
            return (h, *o[1:]) if isinstance(o, tuple) else h

        handle = _blocks(model)[layer].register_forward_hook(hook)
        try:
            with torch.no_grad():
                out.append(model(ids).logits[0].float().cpu())
        finally:
            handle.remove()
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_forward_equals_hand_written_hook(arch, side, tiny_dir, device, dtype) -> None:
    folder = tiny_dir(arch)
    fam = load_family({"base": str(folder)}, device=device, dtype=dtype)
    torch.manual_seed(0)
    delta = torch.randn(64)
    vec = SteeringVector.from_direction(delta, layer=0)
    alphas = [0.5, 2.0, -1.0, 3.0]
    cases = {
        "match:=": lambda toks: [toks.index("=")],
        "all": lambda toks: list(range(len(toks))),
        "last": lambda toks: [len(toks) - 1],
        "match:=:-1:2": lambda toks: [toks.index("=") - 1, toks.index("=")],
    }
    with fam.open("base") as model:
        model.tokenizer.padding_side = side
        enc = model.tokenizer(PROMPTS, return_tensors="pt", padding=True).to(device)
        for positions, which in cases.items():
            ref = reference_logits(folder, PROMPTS, 0, delta, alphas, which, device, dtype)
            with apply(model, vec, layers=0, alpha=torch.tensor(alphas), positions=positions):
                got = model(enc.input_ids, attention_mask=enc.attention_mask)
            assert got.dtype == dtype and got.device.type == torch.device(device).type
            for i in range(len(PROMPTS)):
                real = enc.attention_mask[i].bool()
                assert_close_in(dtype, got[i][real], ref[i])


def test_unpatched_layers_bitwise_and_hooks_removed(tiny_dir) -> None:
    folder = tiny_dir("llama")
    fam = load_family({"base": str(folder)})
    torch.manual_seed(2)
    vec = SteeringVector.from_direction(torch.randn(64), layer=1)
    with fam.open("base") as model:
        ids = model.tokenizer(PROMPTS[:1], return_tensors="pt").input_ids
        clean_logits, clean = model.run_with_cache(ids)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with apply(model, vec, alpha=3.0, positions="all"):
            steered_logits, steered = model.run_with_cache(ids)
        # the steered forward equals plain transformers with a hand-written forward hook on block 1
        ref = reference_logits(
            folder, PROMPTS[:1], 1, vec.directions[1], 3.0, lambda toks: list(range(len(toks)))
        )
        torch.testing.assert_close(steered_logits[0], ref[0], atol=1e-5, rtol=0)
        assert not torch.allclose(steered_logits, clean_logits, atol=1e-3)
        # upstream of the patched site nothing moved, bit for bit
        for name in ("blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid"):
            assert torch.equal(clean[name], steered[name]), name
        torch.testing.assert_close(
            steered["blocks.1.hook_resid_post"], clean["blocks.1.hook_resid_post"] + 3.0 * vec.directions[1]
        )
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        # an exception inside the context removes every hook
        with pytest.raises(RuntimeError, match="boom"), apply(model, vec, alpha=1.0):
            raise RuntimeError("boom")
        assert all(len(hp.fwd_hooks) == 0 for hp in model.hook_dict.values())
        # after the context the model is the unsteered one again, bit for bit
        assert torch.equal(model(ids), clean_logits)
        _, again = model.run_with_cache(ids)
        assert torch.equal(again["blocks.1.hook_resid_post"], clean["blocks.1.hook_resid_post"])


def test_steered_minus_unsteered_is_alpha_v_at_the_match_only(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    torch.manual_seed(3)
    vec = SteeringVector.from_direction(torch.randn(64), layer=0)
    site = "blocks.0.hook_resid_post"
    with fam.open("base") as model:
        ids = model.tokenizer(["a b c = 1 2"], return_tensors="pt").input_ids
        eq = model.tokenizer.convert_tokens_to_ids("=")
        where = int((ids[0] == eq).nonzero()[0])
        _, clean = model.run_with_cache(ids, names_filter=site)
        with apply(model, vec, alpha=-2.5, positions="match:="):
            _, steered = model.run_with_cache(ids, names_filter=site)
    diff = steered[site][0] - clean[site][0]
    others = [i for i in range(ids.shape[1]) if i != where]
    torch.testing.assert_close(diff[where], -2.5 * vec.directions[0], atol=1e-5, rtol=0)
    assert torch.equal(diff[others], torch.zeros_like(diff[others]))


@pytest.mark.parametrize("positions", ["match:=", "all", "generated", "prompt"])
def test_cached_equals_uncached_and_per_row_alpha(positions, tiny_dir, device) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))}, device=device)
    torch.manual_seed(1)
    vec = SteeringVector.from_direction(torch.randn(64) * 3, layer=0)
    alphas = [0.0, 1.0, 2.5, -2.0]
    prompts = ["a b c =", "d e f g h =", "i =", "j k ="]
    with fam.open("base") as model:
        tok = model.tokenizer

        def steer(alpha):
            return lambda m, batch: apply(m, vec, alpha=alpha, positions=positions)

        per_row = generate(model, tok, prompts, max_new_tokens=6, intervention=steer(torch.tensor(alphas)))
        uncached = generate(
            model, tok, prompts, max_new_tokens=6, intervention=steer(torch.tensor(alphas)), use_cache=False
        )
        one_by_one = [
            generate(model, tok, [p], max_new_tokens=6, intervention=steer(a))[0]
            for p, a in zip(prompts, alphas, strict=True)
        ]
        plain = generate(model, tok, prompts, max_new_tokens=6)
    assert per_row == uncached == one_by_one
    assert per_row[0] == plain[0]  # alpha 0 is the unsteered model
    assert per_row != plain  # steering changes something


def test_fit_vector_methods_and_roundtrip(tiny_dir, tmp_path: Path) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    recs = [
        {
            "id": f"c{i}",
            "prompt": f"C {'a b' * (1 + i % 3)} =",
            "answer": "1",
            "label": "careful",
            "split": "train",
        }
        for i in range(6)
    ]
    recs += [
        {
            "id": f"d{i}",
            "prompt": f"D {'c d' * (1 + i % 3)} =",
            "answer": "1",
            "label": "direct",
            "split": "train",
        }
        for i in range(6)
    ]
    acts = collect_activations(
        fam, Task.from_records("t", recs), "resid_post:0-1", "match:=", out=tmp_path / "a", progress=False
    )
    X = acts.get("base", "resid_post.1")
    lab = acts.labels
    dm = X[[i for i, x in enumerate(lab) if x == "careful"]].mean(0) - X[
        [i for i, x in enumerate(lab) if x == "direct"]
    ].mean(0)
    v = fit_vector(acts, "base", "resid_post:0-1", ("careful", "direct"))
    torch.testing.assert_close(v.directions[1], dm)
    assert v.layers == (0, 1) and v.n == 12 and v.contrast == ("careful", "direct")
    import numpy as np

    C = X[[i for i, x in enumerate(lab) if x == "careful"]]
    D = X[[i for i, x in enumerate(lab) if x == "direct"]]
    for method in ("pca", "probe"):
        w = fit_vector(acts, "base", "resid_post.1", ("careful", "direct"), method=method, seed=3)
        # the projection onto the unit direction equals the diff-of-means projection
        u = w.directions[1] / w.directions[1].norm()
        assert abs(float(w.directions[1].norm()) - float(u @ dm)) < 1e-4
        again = fit_vector(acts, "base", "resid_post.1", ("careful", "direct"), method=method, seed=3)
        assert torch.equal(again.directions[1], w.directions[1])
        if method == "pca":
            # independent reference: numpy SVD of the same seeded pairing
            rng = np.random.default_rng(3)
            pi, ni = rng.permutation(6), rng.permutation(6)
            diffs = (C.numpy()[pi] - D.numpy()[ni]).astype(np.float64)
            signs = rng.choice([-1.0, 1.0], size=6)
            pc = np.linalg.svd(diffs * signs[:, None])[2][0]  # uncentred, random pair order (RepE)
            assert abs(abs(float(np.dot(pc, u.double().numpy()))) - 1) < 1e-5
        else:
            # the probe direction separates its training data
            assert float((C @ u).min()) > float((D @ u).max())
    path = v.save(tmp_path / "vec")
    back = SteeringVector.load(path)
    assert back.provenance() == v.provenance() and all(
        torch.equal(back.directions[k], v.directions[k]) for k in v.layers
    )
    r = random_like(v, seed=0)
    # independent reference: the seeded float64 Gaussian draw per layer, rescaled to the vector's norm
    g = torch.Generator().manual_seed(0)
    for k in v.layers:
        draw = torch.randn(64, generator=g, dtype=torch.float64)
        want = (draw / draw.norm() * v.directions[k].double().norm()).float()
        torch.testing.assert_close(r.directions[k], want, atol=1e-6, rtol=1e-6)
    assert abs(r.norm(1) - v.norm(1)) < 1e-4
    moved = v.to(dtype=torch.float64)
    assert moved.directions[1].dtype == torch.float64 and v.directions[1].dtype == torch.float32


def test_record_counts_steered_positions_and_keeps_the_pushed_next_token_distribution(tiny_dir) -> None:
    """The manipulation check: per-row steered positions (0 where the match token is missing) and
    the next-token log-probs after the prompt, equal to a hand-written hook's."""
    folder = tiny_dir("llama")
    fam = load_family({"base": str(folder)})
    torch.manual_seed(4)
    delta = torch.randn(64)
    vec = SteeringVector.from_direction(delta, layer=0)
    prompts = ["a b c =", "d e f", "g = h ="]  # the middle prompt has no decision token
    with fam.open("base") as model:
        model.tokenizer.padding_side = "left"  # as generate pads: the last column is each row's last token
        enc = model.tokenizer(prompts, return_tensors="pt", padding=True)
        with apply(model, vec, layers=0, alpha=2.0, positions="match:=", record_logits=True) as rec:
            model(enc.input_ids, attention_mask=enc.attention_mask)
        assert rec.positions.tolist() == [1, 0, 1] and rec.fired().tolist() == [True, False, True]
        assert rec.calls == 1
        with apply(model, vec, layers=0, alpha=2.0, positions="match:=:0:2") as wide:
            model(enc.input_ids, attention_mask=enc.attention_mask)
        assert (
            wide.positions.tolist() == [1, 0, 2] and wide.first_logprobs is None
        )  # window clipped at the end
        # cached generation: the prompt pass steers the match once; decode steps add nothing
        with apply(model, vec, layers=0, alpha=2.0, positions="match:=") as gen_rec:
            generate(model, model.tokenizer, prompts, max_new_tokens=4)
        assert gen_rec.positions.tolist() == [1, 0, 1] and gen_rec.calls > 1
    ref = reference_logits(
        folder, prompts, 0, delta, 2.0, lambda toks: [toks.index("=")] if "=" in toks else []
    )
    want = torch.stack([r[-1].log_softmax(-1) for r in ref])
    torch.testing.assert_close(rec.first_logprobs, want, atol=1e-5, rtol=0)


def test_the_hook_moves_the_vector_to_the_activation() -> None:
    """A block that hands its activation on another device or dtype than the vector (a model
    loaded with device_map) gets the vector moved to it, never a mismatch error."""
    from steering.apply import _add_hook, _Steerer

    steerer = _Steerer.__new__(_Steerer)
    steerer.idle = False
    steerer.mask = torch.tensor([[False, True, True]])
    delta = torch.tensor([1.0, 2.0, 3.0, 4.0])  # float32, on the CPU
    add = _add_hook(steerer, 0, delta, torch.tensor(0.5))
    x = torch.zeros(1, 3, 4, dtype=torch.bfloat16)
    out = add(x, None)
    assert out.dtype == torch.bfloat16 and out.device == x.device
    want = torch.zeros(1, 3, 4)
    want[0, 1:] = 0.5 * delta
    assert torch.equal(out.float(), want.to(torch.bfloat16).float())


@pytest.mark.parametrize("positions", ["all", "last"])
def test_shared_prefix_sampling_is_steered_like_a_hand_written_hook(positions, tiny_dir) -> None:
    """generate_samples under a steering vector: the prompt's cache repeated for 3 samples, each
    row equal to an uncached one-at-a-time loop on plain transformers with a forward hook adding
    alpha*delta at every position ("all") or at the last prompt token only ("last")."""
    from probes.models.generation import generate_samples
    from steering.intervention import steering_intervention

    folder = tiny_dir("llama")
    fam = load_family({"base": str(folder)})
    torch.manual_seed(0)
    delta, alpha, layer, budget = torch.randn(64), 3.0, 0, 5
    vec = SteeringVector.from_direction(delta, layer=layer)
    prompts, seeds = ["a b c =", "d e f g h ="], [[1, 2, 3], [4, 5, 6]]
    steer = steering_intervention(vec, layers=[layer], alpha=alpha, positions=positions)
    with fam.open("base") as model:
        tok = fam.tokenizer()
        got = generate_samples(model, tok, prompts, seeds=seeds, max_new_tokens=budget, intervention=steer)
        plain = generate_samples(model, tok, prompts, seeds=seeds, max_new_tokens=budget)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()

    def one(prompt: str, seed: int) -> str:
        u = torch.rand(budget, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        ids = tok(prompt).input_ids
        n_prompt, new = len(ids), []

        def hook(mod, inp, o):
            h = (o[0] if isinstance(o, tuple) else o).clone()
            if positions == "all":
                h[0] += alpha * delta
            else:
                h[0, n_prompt - 1] += alpha * delta
            return (h, *o[1:]) if isinstance(o, tuple) else h

        handle = _blocks(hf)[layer].register_forward_hook(hook)
        try:
            for t in range(budget):
                with torch.no_grad():
                    logits = hf(torch.tensor([ids + new])).logits[0, -1].double()
                cdf = torch.softmax(logits, -1).cumsum(-1)
                nxt = min(int(torch.searchsorted(cdf, u[t] * cdf[-1], right=True)), len(cdf) - 1)
                if nxt == tok.eos_token_id:
                    break
                new.append(nxt)
        finally:
            handle.remove()
        return str(tok.decode(new, skip_special_tokens=True)).strip()

    assert got == [[one(p, s) for s in ss] for p, ss in zip(prompts, seeds, strict=True)]
    assert got != plain  # the push changed what was sampled


def test_record_of_an_expanded_decoding_sums_each_prompts_samples(tiny_dir) -> None:
    """positions="all": each prompt row counts its real prompt tokens once, then one token per
    sample per decoding step (3 samples x 2 steps after the prefill's token, budget 3)."""
    from probes.models.generation import generate_samples

    fam = load_family({"base": str(tiny_dir("llama"))})
    vec = SteeringVector.from_direction(torch.randn(64, generator=torch.Generator().manual_seed(1)), layer=0)
    prompts = ["a b c =", "d e f g h ="]
    with fam.open("base") as model:
        tok = fam.tokenizer()
        lengths = [len(tok(p).input_ids) for p in prompts]
        with apply(model, vec, layers=[0], alpha=0.0, positions="all") as rec:
            generate_samples(
                model, tok, prompts, seeds=[[1, 2, 3], [4, 5, 6]], max_new_tokens=3, temperature=0.01
            )
    assert rec.positions is not None and rec.positions.tolist() == [n + 3 * 2 for n in lengths]


def test_the_hook_moves_per_row_alphas_and_the_mask_to_the_activation() -> None:
    """Per-row alphas (float32, CPU) and the steerer's mask reach a float16 activation in its
    own dtype: row i gets alpha_i * delta at its masked positions, computed here in float16."""
    from steering.apply import _add_hook, _Steerer

    steerer = _Steerer.__new__(_Steerer)
    steerer.idle = False
    steerer.mask = torch.tensor([[True, False], [False, True]])
    delta = torch.tensor([1.0, -2.0, 0.5])
    add = _add_hook(steerer, 1, delta, torch.tensor([2.0, -1.0]))
    x = torch.ones(2, 2, 3, dtype=torch.float16)
    out = add(x, None)
    assert out.dtype == torch.float16
    want = torch.ones(2, 2, 3, dtype=torch.float16)
    want[0, 0] += 2.0 * delta.half()
    want[1, 1] += -1.0 * delta.half()
    assert torch.equal(out, want)
