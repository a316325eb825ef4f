"""Steered generation on a real checkpoint (SmolLM2-135M, ``probes.models.smollm2``) vs plain
``transformers`` generate, in one run on the same prompts:

  ratio = generated tokens/s of the kit (TransformerBridge + the steering hook at one layer,
          every position, KV cache, the variant's chat template) / generated tokens/s of
          ``AutoModelForCausalLM.generate`` (greedy, no hooks) on the same rendered prompts

for a batch of 16 prompts x 64 new tokens (target >= 0.85). Both sides count the tokens they
actually generated (a row stops at EOS), so a push that changes the lengths does not bias the
ratio. The sides run as back-to-back pairs, alternating which goes first; the estimate is the
median of the paired ratios with its min-max spread. Model loading is outside the timings.

A third side, ``plain-eager``, is the same ``generate`` with ``attn_implementation="eager"``: the
Bridge computes attention itself (matmul + softmax, so that ``hook_attn_scores`` / ``hook_pattern``
fire) where plain ``transformers`` uses SDPA, and the ratio against eager shows how much of the gap
is that choice of the Bridge's rather than the kit's hooks.

    python benchmarks/real_generation.py [--pairs 5] [--prompts 16] [--new-tokens 64] [--alpha 0.25]
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402

from probes import load_family  # noqa: E402
from probes.models.generation import generate  # noqa: E402
from probes.models.smollm2 import arithmetic_problems, smollm2_family  # noqa: E402
from steering import SteeringVector, apply  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=0.25, help="push in residual-norm units (layer 15)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    fam = load_family(smollm2_family(), device=args.device)
    questions = [p["question"] for p in arithmetic_problems(args.prompts, seed=11)]
    proto = fam.protocol("base")
    tok = fam.tokenizer("base")
    tok.padding_side = "left"
    texts = [proto.render(q) for q in questions]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(args.device)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(fam.local_path("base"))).to(args.device).eval()
    hf_eager = (
        transformers.AutoModelForCausalLM.from_pretrained(
            str(fam.local_path("base")), attn_implementation="eager"
        )
        .to(args.device)
        .eval()
    )
    g = torch.Generator().manual_seed(0)
    vec = SteeringVector({15: torch.randn(576, generator=g)}, resid_norms={15: 50.0})

    def plain(model: object = hf) -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(  # type: ignore[attr-defined]
                **enc, max_new_tokens=args.new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
        dt = time.perf_counter() - t0
        new = out[:, enc.input_ids.shape[1] :]
        eos = tok.eos_token_id
        n = int(sum((row != eos).sum() + (1 if (row == eos).any() else 0) for row in new))
        return n / dt

    with fam.open("base") as model:

        def kit() -> float:
            ends: list[str] = []
            t0 = time.perf_counter()
            with apply(model, vec, alpha=args.alpha, positions="all", units="resid_norm"):
                outs = generate(
                    model,
                    model.tokenizer,
                    questions,
                    max_new_tokens=args.new_tokens,
                    protocol=proto,
                    batch_size=len(questions),
                    finish=ends,
                )
            dt = time.perf_counter() - t0
            n = sum(
                len(tok(o, add_special_tokens=False).input_ids) + (e == "stop")
                for o, e in zip(outs, ends, strict=True)
            )
            return n / dt

        def plain_eager() -> float:
            return plain(hf_eager)

        kit(), plain(), plain_eager()  # warm-up
        ratios, eager_ratios = [], []
        for r in range(args.pairs):
            order = [kit, plain, plain_eager] if r % 2 == 0 else [plain_eager, plain, kit]
            got = {f.__name__: f() for f in order}
            ratios.append(got["kit"] / got["plain"])
            eager_ratios.append(got["kit"] / got["plain_eager"])
            print(
                f"  round {r}: kit {got['kit']:.1f} tok/s, plain {got['plain']:.1f} tok/s -> {ratios[-1]:.3f}; "
                f"plain-eager {got['plain_eager']:.1f} tok/s -> {eager_ratios[-1]:.3f}"
            )
    print(
        f"steered generation / plain generate (SmolLM2-135M, {args.prompts} x {args.new_tokens} new tokens, "
        f"{args.device}): median {statistics.median(ratios):.3f} of {len(ratios)} pairs "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}); target >= 0.85"
    )
    print(
        f"steered generation / plain generate with eager attention: median {statistics.median(eager_ratios):.3f} "
        f"(range {min(eager_ratios):.3f}-{max(eager_ratios):.3f})"
    )


if __name__ == "__main__":
    main()
