"""Peak memory of ``elicit weights`` on two ~1 GB checkpoints (issue 6, acceptance).

Builds a Llama-shaped base checkpoint (float32, sharded safetensors with an index, no
tensor over 64 MB) and a tuned copy (low-rank + sparse updates), then runs
``elicit weights`` on them in a child process under ``/usr/bin/time -v`` and prints its
peak resident set size, wall time and the ratio to the memory two whole models need.
Without ``/usr/bin/time`` (Debian package ``time``) the child reports its own ``VmHWM``
(Linux), or, failing that, ``resource.getrusage(RUSAGE_CHILDREN)`` gives an upper bound;
the output names the method.

    python benchmarks/weights_memory.py            # ~1 GB per checkpoint
    python benchmarks/weights_memory.py --layers 1 # a quick ~0.3 GB run

The child imports torch, pandas, pyarrow and the whole ``probes`` package: the figure
includes the interpreter. ``--baseline`` also measures ``import probes`` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

MAX_TENSOR_BYTES = 64 * 10**6
D, FFN, KV, VOCAB = 2048, 5632, 512, 7680  # 7680 x 2048 float32 = 62.9 MB per embedding


def llama_shapes(n_layers: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB, D)}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        shapes.update(
            {
                p + "self_attn.q_proj.weight": (D, D),
                p + "self_attn.k_proj.weight": (KV, D),
                p + "self_attn.v_proj.weight": (KV, D),
                p + "self_attn.o_proj.weight": (D, D),
                p + "mlp.gate_proj.weight": (FFN, D),
                p + "mlp.up_proj.weight": (FFN, D),
                p + "mlp.down_proj.weight": (D, FFN),
                p + "input_layernorm.weight": (D,),
                p + "post_attention_layernorm.weight": (D,),
            }
        )
    shapes["model.norm.weight"] = (D,)
    shapes["lm_head.weight"] = (VOCAB, D)
    return shapes


def build_pair(root: Path, n_layers: int, shard_bytes: int = 256 * 10**6) -> tuple[Path, Path, int]:
    """Write base and tuned checkpoints shard by shard; return their folders and byte size."""
    shapes = llama_shapes(n_layers)
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": D,
        "intermediate_size": FFN,
        "num_hidden_layers": n_layers,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "vocab_size": VOCAB,
        "tie_word_embeddings": False,
    }
    folders = {"base": root / "base", "tuned": root / "tuned"}
    for f in folders.values():
        f.mkdir(parents=True)
        (f / "config.json").write_text(json.dumps(config))
    g = torch.Generator().manual_seed(0)
    shards: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        nbytes = 4 * int(torch.Size(shape).numel())
        assert nbytes <= MAX_TENSOR_BYTES, (name, nbytes)
        if shards[-1] and sum(4 * torch.Size(shapes[n]).numel() for n in shards[-1]) + nbytes > shard_bytes:
            shards.append([])
        shards[-1].append(name)
        size += nbytes
    weight_map: dict[str, str] = {}
    for i, names in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        base, tuned = {}, {}
        for name in names:
            shape = shapes[name]
            w = torch.ones(shape) if len(shape) == 1 else 0.02 * torch.randn(shape, generator=g)
            t = w.clone()
            if len(shape) == 2:
                # a rank-8 update plus a sparse one on every 7th entry (~14% of parameters)
                r = 8
                t += 1e-3 * torch.randn(shape[0], r, generator=g) @ torch.randn(r, shape[1], generator=g)
                flat = t.view(-1)
                flat[::7] += 1e-4 * torch.randn(flat[::7].shape, generator=g)
            base[name], tuned[name] = w, t
            weight_map[name] = fname
        save_file(base, str(folders["base"] / fname), metadata={"format": "pt"})
        save_file(tuned, str(folders["tuned"] / fname), metadata={"format": "pt"})
        del base, tuned
    index = {"metadata": {"total_size": size}, "weight_map": weight_map}
    for f in folders.values():
        (f / "model.safetensors.index.json").write_text(json.dumps(index))
    return folders["base"], folders["tuned"], size


_REPORT_HWM = (
    "\nimport re, sys; print('VmHWM', re.search(r'VmHWM:\\s+(\\d+)', "
    "open('/proc/self/status').read())[1], file=sys.stderr)"
)


def measure(code: str, argv: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Run ``python -c code *argv``; return (peak RSS bytes, wall seconds, method, stdout).

    ``/usr/bin/time -v`` if installed; else the child's own ``VmHWM`` (Linux); else
    ``getrusage(RUSAGE_CHILDREN)``, an upper bound: it also counts this parent, whose
    memory the child shares until it execs.
    """
    time_bin = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if time_bin is not None:
        cmd, how = [time_bin, "-v", sys.executable, "-c", code, *argv], f"{time_bin} -v"
    elif Path("/proc/self/status").exists():
        cmd, how = [sys.executable, "-c", code + _REPORT_HWM, *argv], "child VmHWM (/usr/bin/time missing)"
    else:
        cmd, how = [sys.executable, "-c", code, *argv], "getrusage(RUSAGE_CHILDREN), an upper bound"
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    if time_bin is not None:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        kib = int(m.group(1)) if m else 0
    elif "VmHWM" in how:
        kib = int(re.findall(r"^VmHWM (\d+)$", proc.stderr, re.M)[-1])
    else:
        kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return kib * 1024.0, wall, how, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=5, help="transformer blocks (5 -> ~1.03 GB per checkpoint)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the child")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir, removed)")
    ap.add_argument("--baseline", action="store_true", help="also measure `import probes` alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    root = Path(tempfile.mkdtemp(prefix="weights_mem_", dir=args.dir))
    try:
        t0 = time.perf_counter()
        base, tuned, size = build_pair(root, args.layers)
        build_s = time.perf_counter() - t0
        (root / "family.toml").write_text(
            f'name = "bench"\n[variants.base]\npath = "{base}"\n[variants.tuned]\npath = "{tuned}"\n'
        )
        dirs = root / "dirs.safetensors"
        save_file({"steer": torch.randn(4, D, generator=torch.Generator().manual_seed(1))}, str(dirs))
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(args.threads),
            "MKL_NUM_THREADS": str(args.threads),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        argv = [
            "weights",
            "--family",
            str(root / "family.toml"),
            "--variant",
            "tuned",
            "--out",
            str(root / "out"),
            "--directions",
            str(dirs),
        ]
        cli = "import sys; from steering.cli import app; app(sys.argv[1:], standalone_mode=False)"
        brss = None
        if args.baseline:  # first: the getrusage fallback reports the largest child so far
            brss, _, _, _ = measure("import probes, steering.cli, pyarrow.parquet", [], env)
        rss, wall, how, out = measure(cli, argv, env)
        summary = json.loads((root / "out" / "weights_tuned.json").read_text())
        gb = 1e9
        print(
            f"checkpoints: 2 x {size / gb:.3f} GB ({len(llama_shapes(args.layers))} tensors each, "
            f"largest {4 * VOCAB * D / 1e6:.1f} MB, sharded), built in {build_s:.1f} s"
        )
        print(f"elicit weights: {summary['n_params']} parameters, svd {summary['svd_methods']}")
        print(f"peak RSS ({how}): {rss / gb:.3f} GB   wall: {wall:.1f} s   threads: {args.threads}")
        print(f"two whole models: {2 * size / gb:.3f} GB  ->  peak RSS / two models = {rss / (2 * size):.2f}")
        if brss is not None:
            print(
                f"baseline (interpreter + torch + pandas + probes imported): {brss / gb:.3f} GB; "
                f"streaming adds {(rss - brss) / gb:.3f} GB"
            )
        print(out.strip().splitlines()[-1] if out.strip() else "")
        verdict = "PASS" if rss < 0.8 * gb else "FAIL"
        print(f"{verdict}: peak RSS {'<' if rss < 0.8 * gb else '>='} 0.8 GB")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
