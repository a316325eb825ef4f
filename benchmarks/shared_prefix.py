"""Shared-prefix sampling (n samples from one prompt forward) over sampling n repeated prompts.

Prints, in one run on the same Llama-style model, prompts and token budget:
  ratio = seconds of n = 16 repeated prompts / seconds of n = 16 shared-prefix samples
where both sides are the kit's sampler (probes.models.generation.generate_samples, each row from
its own generator): the shared side gives each prompt 16 seeds (one prefill, the KV cache
repeated 16 times), the repeated side gives 16 copies of each prompt one seed each (16 prefills).
Their completions are equal row for row (checked), so the ratio is the cost of the prefix alone.
A third line times transformers' own sampler on the repeated prompts
(probes.models.generation.generate, do_sample) for scale.

The sides run as back-to-back pairs, alternating which goes first (ABBA); the estimate is the
median of the paired ratios with its min-max spread. Long prompts and short completions are where
sharing pays; --prompt-len and --new-tokens move along that axis.

    python benchmarks/shared_prefix.py [--prompts 8] [--n 16] [--prompt-len 192] [--new-tokens 16] [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# before torch loads: spinning OpenMP threads slow every side several-fold on a shared CPU
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402

from probes import load_family  # noqa: E402
from probes.models.generation import generate, generate_samples  # noqa: E402
from tests.tiny import SYMBOLS, make_tokenizer  # noqa: E402


def build(folder: Path, d_model: int, n_layers: int, ctx: int) -> Path:
    tok = make_tokenizer()
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=d_model,
        intermediate_size=4 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=ctx,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def prompts(n: int, length: int, seed: int = 0) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    syms = SYMBOLS[:36]
    return [
        " ".join(syms[j] for j in torch.randint(0, len(syms), (length,), generator=g).tolist())
        for _ in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--prompt-len", type=int, default=192)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.pairs < 5:
        raise SystemExit(f"--pairs must be >= 5 for a median with a spread, got {args.pairs}.")
    with tempfile.TemporaryDirectory() as d:
        folder = build(Path(d) / "m", args.d_model, args.layers, args.prompt_len + args.new_tokens + 8)
        fam = load_family({"base": str(folder)}, check=False, device=args.device)
        texts = prompts(args.prompts, args.prompt_len)
        seeds = [[1000 * i + j for j in range(args.n)] for i in range(len(texts))]
        rows = len(texts) * args.n
        kw = dict(max_new_tokens=args.new_tokens, batch_size=rows)
        with fam.open("base") as model:
            tok = fam.tokenizer()

            def shared() -> list[list[str]]:
                return generate_samples(model, tok, texts, seeds=seeds, **kw)

            def repeated() -> list[list[str]]:
                rep = [t for t in texts for _ in range(args.n)]
                return generate_samples(model, tok, rep, seeds=[[s] for row in seeds for s in row], **kw)

            def hf_repeated() -> list[str]:
                rep = [t for t in texts for _ in range(args.n)]
                return generate(model, tok, rep, do_sample=True, seed=0, **kw)

            def timed(fn) -> float:  # type: ignore[no-untyped-def]
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                return time.perf_counter() - t0

            a, b = shared(), repeated()  # warm-up, and the check that both draw the same rows
            same = sum(x == y[0] for x, y in zip([c for row in a for c in row], b, strict=True))
            hf_repeated()
            ratios, hf_ratios, t_shared = [], [], []
            for k in range(args.pairs):
                order = (shared, repeated) if k % 2 == 0 else (repeated, shared)
                t = {fn.__name__: timed(fn) for fn in order}
                t["hf_repeated"] = timed(hf_repeated)
                ratios.append(t["repeated"] / t["shared"])
                hf_ratios.append(t["hf_repeated"] / t["shared"])
                t_shared.append(t["shared"])
    print(
        f"{len(texts)} prompts x n={args.n}, prompt {args.prompt_len} tokens, {args.new_tokens} new tokens, "
        f"Llama d_model {args.d_model} x {args.layers} layers, {args.device}, torch threads {torch.get_num_threads()}"
    )
    print(f"rows equal between the two sides: {same} of {rows}")
    print(f"shared-prefix seconds: median {statistics.median(t_shared):.3f}")
    print(
        f"ratio repeated / shared (kit sampler): median {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {args.pairs} ABBA pairs)"
    )
    print(
        f"ratio transformers generate on repeated prompts / shared: median {statistics.median(hf_ratios):.2f} "
        f"(min {min(hf_ratios):.2f}, max {max(hf_ratios):.2f})"
    )


if __name__ == "__main__":
    main()
