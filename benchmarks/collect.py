"""Throughput of collect_activations (writing to disk) over a bare transformers forward.

Two cases, each run in one process on the same model, prompts and batch for both sides:

- ``tiny``: a d_model 64, 4-layer random Llama (tests/tiny.py), 4,096 prompts of ~12 tokens,
  batch 64. The forward is cheap, so this case measures the kit's own per-batch work
  (tokenising, row indices, gathers, hooks); target >= 0.8 at position 'last' on CPU.
- ``20m``: a ~20M-parameter Llama-style model, 256 prompts of ~64 tokens, batch 16; target >= 0.9.
- ``smollm2``: the real SmolLM2-135M checkpoint (``probes.models.smollm2``, 30 layers), 128 word
  problems of ~40 tokens, batch 16; target >= 0.9 at position 'last'.

Each prints, for positions 'last' and 'all' (every layer's resid_post):
  ratio = prompts/s of collect_activations / prompts/s of model(..., output_hidden_states=True)
where the bare side gathers the same rows (each prompt's last real token, or every real token)
from every hidden state. Position 'all' runs the store in the model's dtype and a bfloat16 store
(``store_dtype="bfloat16"``) side by side (target: the bf16 store >= 0.9 on CPU). Then (unless
--skip-rss) the peak RSS of collecting 1,000 and 10,000 prompts (fresh subprocesses, a smaller
model) and their difference against the shard buffer.

Throughput is the steady state: prompts over the seconds of forward passes (and, for the kit,
gathering and writing shards), model loading excluded on both sides; the kit's split comes from
its own record (complete.json's timing). The ratio with loading included is printed beside it,
with each side's load seconds (a TransformerBridge boots in ~0.3 s, a bare model loads in ~0.05 s).
This VM's speed drifts by +-20% over seconds, so the sides run as interleaved rounds, rotating
which goes first; the estimate is the median of the per-round ratios, with its interquartile range.

    python benchmarks/collect.py [--case tiny|20m|smollm2|both] [--repeats 9]
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
from tests.tiny import SYMBOLS, make_checkpoint, make_tokenizer  # noqa: E402


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


def bare_forward(folder: Path, task: Task, batch: int, positions: str = "last") -> tuple[float, float, float]:
    """Load + forward with output_hidden_states, gathering the rows the kit stores (each prompt's
    last real token, or every real token). Returns (prompts/s with loading, prompts/s of the
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
            if positions == "last":
                last = enc.attention_mask.sum(1) - 1
                rows = torch.arange(len(last), device=last.device)
                _ = [h[rows, last].cpu() for h in out.hidden_states[1:]]
            else:
                keep = enc.attention_mask.bool()
                _ = [h[keep].cpu() for h in out.hidden_states[1:]]
    _sync()
    t2 = time.perf_counter()
    return len(task) / (t2 - t0), len(task) / (t2 - t1), t1 - t0


def kit(
    folder: Path, task: Task, batch: int, positions: str, n_layers: int, store_dtype: str | None = None
) -> tuple[float, float, float]:
    """Load + forward + write every layer's activations to disk (safetensors shards). Returns
    (prompts/s with loading, prompts/s of forward passes + writes, load seconds); the split is the
    store's own record (``<variant>/complete.json``: load_s, collect_s)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        fam = load_family({"base": str(folder)}, check=False, device=DEVICE, dtype=DTYPE)
        collect_activations(
            fam,
            task,
            f"resid_post:0-{n_layers - 1}",
            positions,
            out=d,
            batch_size=batch,
            progress=False,
            store_dtype=store_dtype,
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


#: (label, store_dtype) of the kit's arms at each position.
ARMS: dict[str, list[tuple[str, str | None]]] = {
    "last": [("model-dtype store", None)],
    "all": [("model-dtype store", None), ("bfloat16 store", "bfloat16")],
}


def run_case(
    name: str, folder: Path, task: Task, batch: int, n_layers: int, repeats: int
) -> dict[str, float]:
    """Interleaved rounds of the bare forward and each kit arm; the median ratio per arm."""
    print(f"[{name}] {len(task)} prompts, batch {batch}, {n_layers} layers; {DEVICE}, {DTYPE}")
    kit(folder, task.head(64), batch, "last", n_layers)  # warm-up
    results: dict[str, float] = {}
    for positions, arms in ARMS.items():
        sides = ["bare", *(label for label, _ in arms)]
        steady: dict[str, list[float]] = {label: [] for label, _ in arms}
        whole: dict[str, list[float]] = {label: [] for label, _ in arms}
        for r in range(repeats):
            got: dict[str, tuple[float, float, float]] = {}
            for side in sides[r % len(sides) :] + sides[: r % len(sides)]:  # rotate who goes first
                if side == "bare":
                    got[side] = bare_forward(folder, task, batch, positions)
                else:
                    dt = dict(arms)[side]
                    got[side] = kit(folder, task, batch, positions, n_layers, dt)
            base = got["bare"]
            line = [f"  [{name} {positions}] bare {base[1]:8.1f} prompts/s"]
            for label, _ in arms:
                steady[label].append(got[label][1] / base[1])
                whole[label].append(got[label][0] / base[0])
                line.append(f"{label} {got[label][1]:8.1f} -> {got[label][1] / base[1]:.3f}")
            print(";  ".join(line))
        for label, _ in arms:
            vals = steady[label]
            med = statistics.median(vals)
            q1, _, q3 = statistics.quantiles(vals, n=4) if len(vals) > 1 else (med,) * 3
            key = f"{name}/{positions}/{label}"
            results[key] = med
            results[f"{key}/with_loading"] = statistics.median(whole[label])
            print(
                f"[{name}] collect/bare, positions={positions!r}, {label}: steady state {med:.3f} "
                f"(median of {repeats} rounds, IQR {q1:.3f}-{q3:.3f}, range {min(vals):.3f}-{max(vals):.3f}); "
                f"including model load {statistics.median(whole[label]):.3f}"
            )
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="both", choices=["tiny", "20m", "smollm2", "both"])
    ap.add_argument("--prompts", type=int, default=None, help="prompts (default: 4096 tiny, 256 20m)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both sides run there)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--skip-rss", action="store_true", help="skip the 1k/10k-prompt peak-RSS runs")
    args = ap.parse_args()
    global DEVICE, DTYPE
    DEVICE, DTYPE = args.device, getattr(torch, args.dtype)
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.case in ("tiny", "both"):
            tiny = make_checkpoint("llama", Path(tmp) / "tiny", d_model=64, n_layers=4)
            task = make_task(args.prompts or 4096, 12)
            results.update(run_case("tiny", tiny, task, 64, 4, args.repeats))
        if args.case in ("20m", "both"):
            big = build(Path(tmp) / "m20", d_model=512, n_layers=6, ff=1376)
            n_params = sum(
                p.numel() for p in transformers.AutoModelForCausalLM.from_pretrained(big).parameters()
            )
            print(f"20m: Llama-style, {n_params / 1e6:.1f}M params, prompts of ~64 tokens")
            results.update(run_case("20m", big, make_task(args.prompts or 256, 64), 16, 6, args.repeats))
        if args.case == "smollm2":
            # the real checkpoint (probes.models.smollm2): 30 layers, d_model 576, its BPE tokenizer;
            # the task's questions as plain prompts (~40 tokens), last position, every layer
            from probes.models.smollm2 import arithmetic_problems, smollm2_family

            real = smollm2_family() / "base"
            qs = [
                {"id": p["id"], "prompt": p["question"], "answer": "a"}
                for p in arithmetic_problems(args.prompts or 128)
            ]
            results.update(run_case("smollm2", real, Task.from_records("smol", qs), 16, 30, args.repeats))
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
        print(
            json.dumps({**results, "rss_1k_mb": r1, "rss_10k_mb": r2, "device": DEVICE, "dtype": args.dtype})
        )


if __name__ == "__main__":
    main()
