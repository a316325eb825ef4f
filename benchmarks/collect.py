"""Throughput of collect_activations (writing to disk) over a bare transformers forward.

Prints, in one run on the same ~20M-parameter Llama-style model, prompts and batch:
  ratio = prompts/s of collect_activations / prompts/s of model(..., output_hidden_states=True)
for positions 'last' and 'all' (target >= 0.9), then the peak RSS of collecting 1,000 and
10,000 prompts (fresh subprocesses, a smaller model) and their difference against the
shard buffer.

Throughput is the steady state: prompts over the seconds of forward passes (and, for the kit,
gathering and writing shards), model loading excluded on both sides; the kit's split comes from
its own record (complete.json's timing). The ratio with loading included is printed beside it,
with each side's load seconds (a TransformerBridge boots in ~0.3 s, a bare model loads in ~0.05 s).
This VM's speed drifts by +-20% over seconds, so the two sides run as many back-to-back pairs,
alternating which goes first (ABBA); the estimate is the median of the paired ratios, with its
interquartile range.

    python benchmarks/collect.py [--prompts 256] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402

from probes import Task, collect_activations, load_family  # noqa: E402
from probes.models.tokens import encode  # noqa: E402
from tests.tiny import SYMBOLS, make_tokenizer  # noqa: E402


def build(folder: Path, d_model: int, n_layers: int, ff: int) -> Path:
    tok = make_tokenizer()
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=d_model,
        intermediate_size=ff,
        num_hidden_layers=n_layers,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_task(n: int, length: int, seed: int = 0) -> Task:
    g = torch.Generator().manual_seed(seed)
    syms = SYMBOLS[:36]
    recs = []
    for i in range(n):
        k = length - int(torch.randint(0, max(1, length // 4), (1,), generator=g))
        idx = torch.randint(0, len(syms), (k,), generator=g).tolist()
        recs.append({"id": str(i), "prompt": " ".join(syms[j] for j in idx), "answer": "a"})
    return Task.from_records("bench", recs)


DEVICE, DTYPE = "cpu", torch.float32  # set from --device / --dtype in main()


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def bare_forward(folder: Path, task: Task, batch: int) -> tuple[float, float, float]:
    """Load + forward with output_hidden_states. Returns (prompts/s with loading, prompts/s of the
    forward passes alone, load seconds)."""
    t0 = time.perf_counter()
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPE).to(DEVICE).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    _sync()
    t1 = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(task), batch):
            enc = encode(tok, list(task.prompts[b : b + batch]), device=DEVICE)
            out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True)
            _ = [h[:, -1].clone() for h in out.hidden_states]
    _sync()
    t2 = time.perf_counter()
    return len(task) / (t2 - t0), len(task) / (t2 - t1), t1 - t0


def kit(folder: Path, task: Task, batch: int, positions: str, n_layers: int) -> tuple[float, float, float]:
    """Load + forward + write every layer's activations to disk (safetensors shards). Returns
    (prompts/s with loading, prompts/s of forward passes + writes, load seconds); the split is the
    store's own record (``<variant>/complete.json``: load_s, collect_s)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        fam = load_family({"base": str(folder)}, check=False, device=DEVICE, dtype=DTYPE)
        collect_activations(
            fam, task, f"resid_post:0-{n_layers - 1}", positions, out=d, batch_size=batch, progress=False
        )
        _sync()
        total = time.perf_counter() - t0
        timing = json.loads((Path(d) / "base" / "complete.json").read_text())["timing"]
        return len(task) / total, len(task) / timing["collect_s"], total - timing["collect_s"]


RSS_CHILD = """
import os, resource, sys, tempfile
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from collect import make_task
from probes import collect_activations, load_family
fam = load_family({{"base": {folder!r}}}, check=False)
task = make_task({n}, 16)
with tempfile.TemporaryDirectory() as d:
    collect_activations(fam, task, "resid_post:0-1", "all", out=d, batch_size=32, shard_size={shard}, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss(folder: Path, n: int, shard: int) -> float:
    code = RSS_CHILD.format(
        root=str(Path(__file__).resolve().parents[1]),
        bench=str(Path(__file__).parent),
        folder=str(folder),
        n=n,
        shard=shard,
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both sides run there)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--skip-rss", action="store_true", help="skip the 1k/10k-prompt peak-RSS runs")
    args = ap.parse_args()
    global DEVICE, DTYPE
    DEVICE, DTYPE = args.device, getattr(torch, args.dtype)
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    with tempfile.TemporaryDirectory() as tmp:
        big = build(Path(tmp) / "m20", d_model=512, n_layers=6, ff=1376)
        n_params = sum(p.numel() for p in transformers.AutoModelForCausalLM.from_pretrained(big).parameters())
        task = make_task(args.prompts, args.length)
        print(
            f"model: Llama-style, {n_params / 1e6:.1f}M params; {len(task)} prompts of ~{args.length} tokens; "
            f"batch {args.batch}; {DEVICE}, {args.dtype}"
        )
        kit(big, task.head(32), args.batch, "last", 6)  # warm-up
        results: dict[str, float] = {}
        for positions in ("last", "all"):
            steady, whole, loads = [], [], []
            for r in range(args.repeats):
                if r % 2 == 0:
                    base = bare_forward(big, task, args.batch)
                    ours = kit(big, task, args.batch, positions, 6)
                else:
                    ours = kit(big, task, args.batch, positions, 6)
                    base = bare_forward(big, task, args.batch)
                steady.append(ours[1] / base[1])
                whole.append(ours[0] / base[0])
                loads.append((base[2], ours[2]))
                print(
                    f"  [{positions}] steady state: bare {base[1]:7.1f} prompts/s, collect_activations {ours[1]:7.1f}"
                    f" -> {ours[1] / base[1]:.3f}   with loading: {base[0]:7.1f} vs {ours[0]:7.1f} -> {ours[0] / base[0]:.3f}"
                )
            med = statistics.median(steady)
            q1, _, q3 = statistics.quantiles(steady, n=4) if len(steady) > 1 else (med,) * 3
            results[positions] = med
            results[f"{positions}_with_loading"] = statistics.median(whole)
            print(
                f"collect/bare throughput ratio, positions={positions!r}: steady state {med:.3f} "
                f"(median of {args.repeats} pairs, IQR {q1:.3f}-{q3:.3f}; target >= 0.9); "
                f"including model load {statistics.median(whole):.3f}; load s: bare "
                f"{statistics.median(x for x, _ in loads):.2f}, TransformerBridge {statistics.median(y for _, y in loads):.2f}"
            )
        if args.skip_rss:
            print(json.dumps({**results, "device": DEVICE, "dtype": args.dtype}))
            return
        small = build(Path(tmp) / "m1", d_model=128, n_layers=2, ff=512)
        shard = 512
        r1 = peak_rss(small, 1_000, shard)
        r2 = peak_rss(small, 10_000, shard)
        buf_mb = shard * 16 * 2 * 128 * 4 / 2**20  # prompts x tokens x hooks x d_model x 4 bytes
        print(
            f"peak RSS: 1,000 prompts {r1:.0f} MB; 10,000 prompts {r2:.0f} MB; difference {r2 - r1:+.0f} MB "
            f"(shard buffer ~{buf_mb:.0f} MB; target: difference <= buffer)"
        )
        print(json.dumps({**results, "rss_1k_mb": r1, "rss_10k_mb": r2}))


if __name__ == "__main__":
    main()
