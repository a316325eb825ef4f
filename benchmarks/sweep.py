"""Steering-sweep throughput on the organism, in one run:

1. batched sweep (every alpha of a setting in one generate call, per-row alphas) vs a naive
   loop: (a) one generate call per (setting, prompt), (b) one call per setting (target >= 5x
   against the per-setting-and-prompt loop researchers usually write);
2. steered generation throughput (TransformerBridge + steering hooks, KV cache) over plain
   batched `transformers` generation without hooks on the same prompts (target >= 0.85).

    python benchmarks/sweep.py [--family DIR] [--prompts 48]
Uses $ELICIT_ORGANISM, else the cached seed-0 organism (trained on first use).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402

from probes import collect_activations, load_family  # noqa: E402
from probes.models.generation import generate  # noqa: E402
from probes.models.tokens import encode  # noqa: E402
from steering import apply, fit_vector  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default=os.environ.get("ELICIT_ORGANISM"))
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.family is None:
        from probes.organism import organism_family

        args.family = str(organism_family())
    fam = load_family(args.family)
    task = fam.load_task("parity")
    fit = task.filter(split="train", label=["careful", "direct"]).head(128)
    acts = collect_activations(fam, fit, "resid_post:all", "match:=", variants=["base"], progress=False)
    vec = fit_vector(acts, "base", "resid_post:all", ("careful", "direct"), position="match:=")
    prompts = list(task.filter(split="dev", label="neutral").head(args.prompts).prompts)
    alphas = [0.0, 1.0, 2.0, 4.0, 8.0]
    layer, max_new = 1, task.max_new_tokens
    print(
        f"organism {args.family}: {len(prompts)} prompts x {len(alphas)} alphas at layer {layer}, {max_new} new tokens"
    )

    with fam.open("base") as model:
        tok = model.tokenizer

        def batched() -> list[str]:
            rows = [p for _ in alphas for p in prompts]
            a = torch.tensor([x for x in alphas for _ in prompts])
            return generate(
                model,
                tok,
                rows,
                max_new_tokens=max_new,
                batch_size=len(rows),
                intervention=lambda m, b: apply(m, vec, layers=[layer], alpha=a, positions="match:="),
            )

        def per_setting() -> list[str]:
            out = []
            for x in alphas:
                out += generate(
                    model,
                    tok,
                    prompts,
                    max_new_tokens=max_new,
                    batch_size=len(prompts),
                    intervention=lambda m, b, x=x: apply(
                        m, vec, layers=[layer], alpha=x, positions="match:="
                    ),
                )
            return out

        def per_prompt() -> list[str]:
            out = []
            for x in alphas:
                for p in prompts:
                    out += generate(
                        model,
                        tok,
                        [p],
                        max_new_tokens=max_new,
                        batch_size=1,
                        intervention=lambda m, b, x=x: apply(
                            m, vec, layers=[layer], alpha=x, positions="match:="
                        ),
                    )
            return out

        t = {}
        for name, fn in (("batched", batched), ("per_setting", per_setting), ("per_prompt", per_prompt)):
            times = []
            for _ in range(args.repeats if name != "per_prompt" else 1):
                t0 = time.perf_counter()
                res = fn()
                times.append(time.perf_counter() - t0)
            t[name] = statistics.median(times)
            print(f"  {name:12s} {t[name]:7.2f} s  ({len(res)} completions)")
        assert batched() == per_prompt(), "batched per-row alphas must equal one-at-a-time runs"
        print(
            f"batched sweep vs naive per-(setting, prompt) loop: {t['per_prompt'] / t['batched']:.1f}x (target >= 5x)"
        )
        print(f"batched sweep vs per-setting loop:               {t['per_setting'] / t['batched']:.1f}x")

        # steered generation throughput vs plain transformers generation (no hooks). Both generate
        # exactly max_new tokens per row (no early stop at <eos>): unsteered neutral prompts answer in
        # 2 tokens while steered ones write the scratchpad, so eos-stopping would compare unequal work.
        rows = prompts * 4
        a = torch.full((len(rows),), 2.0)
        hf = transformers.AutoModelForCausalLM.from_pretrained(fam.local_path("base")).eval()
        enc = encode(tok, rows, padding_side="left")
        ratios = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with torch.inference_mode():
                ref = hf.generate(
                    input_ids=enc.input_ids,
                    attention_mask=enc.attention_mask,
                    max_new_tokens=max_new,
                    min_new_tokens=max_new,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                )
            t_hf = time.perf_counter() - t0
            t0 = time.perf_counter()
            with torch.inference_mode(), apply(model, vec, layers=[layer], alpha=a, positions="match:="):
                ours = model.generate(
                    enc.input_ids,
                    attention_mask=enc.attention_mask,
                    max_new_tokens=max_new,
                    do_sample=False,
                    stop_at_eos=False,
                    use_past_kv_cache=True,
                    return_type="tokens",
                    verbose=False,
                )
            t_kit = time.perf_counter() - t0
            assert ours.shape == ref.shape, (ours.shape, ref.shape)
            ratios.append(t_hf / t_kit)
            n_tok = len(rows) * max_new
            print(
                f"  plain transformers generate {n_tok / t_hf:8.0f} tok/s   steered Bridge generate {n_tok / t_kit:8.0f} tok/s"
                f"   ratio {t_hf / t_kit:.2f}  ({len(rows)} rows x {max_new} tokens each)"
            )
        print(
            f"steered / plain generation throughput: {statistics.median(ratios):.2f} (median of {args.repeats}, range {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.85)"
        )


if __name__ == "__main__":
    main()
