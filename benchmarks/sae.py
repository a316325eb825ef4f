"""SAE training throughput: from the activation store vs sae_lens re-running the model.

One run prints tokens/s of (a) ``probes.dictionaries.sae.train_sae`` reading a stored ActivationSet and
(b) sae_lens's ``LanguageModelSAETrainingRunner``, which runs the language model on the same
tokens to produce activations while training, for the same BatchTopK SAE config and steps,
and their ratio. Everything is local: a tiny random Llama checkpoint (tests/tiny.py style,
d_model=128, 4 layers) and an in-memory ``datasets.Dataset`` of its token ids. The store's
one-off collection time is printed separately (it is paid once and reused by every SAE,
crosscoder and probe trained on the store).

    python benchmarks/sae.py [--steps 300] [--batch 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TQDM_DISABLE", "1")

import sys  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/tiny.py builds the local model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=512, help="tokens per SAE step")
    ap.add_argument("--ctx", type=int, default=64, help="tokens per text (BOS included)")
    ap.add_argument("--d-sae", type=int, default=1024)
    ap.add_argument("--k", type=float, default=16)
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import random

    import datasets
    import sae_lens
    from sae_lens.config import LanguageModelSAERunnerConfig, LoggingConfig

    from probes import Task, load_family
    from probes.data.activations import collect_activations
    from probes.dictionaries.sae import train_sae
    from tests.tiny import SYMBOLS, make_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="elicit-bench-sae-"))
    folder = make_checkpoint("llama", tmp / "model", seed=0, d_model=128, n_layers=4)
    n_tokens = args.steps * args.batch
    n_texts = -(-n_tokens // (args.ctx - 1)) + 1
    rng = random.Random(0)
    texts = [" ".join(rng.choice(SYMBOLS[:40]) for _ in range(args.ctx - 1)) for _ in range(n_texts)]
    task = Task.from_records(
        "bench", [{"id": f"t{i}", "prompt": t, "answer": "-"} for i, t in enumerate(texts)]
    )
    fam = load_family({"base": str(folder)})
    hook = f"resid_post.{args.layer}"
    hook_name = f"blocks.{args.layer}.hook_resid_post"

    t0 = time.perf_counter()
    acts = collect_activations(fam, task, hook, "all", out=tmp / "acts", batch_size=64, progress=False)
    t_collect = time.perf_counter() - t0

    t0 = time.perf_counter()
    train_sae(
        acts,
        "base",
        hook,
        "all",
        architecture="batchtopk",
        d_sae=args.d_sae,
        k=args.k,
        steps=args.steps,
        batch_size=args.batch,
        lr=3e-4,
        seed=0,
        outlier_factor=None,
    )
    t_store = time.perf_counter() - t0
    tps_store = n_tokens / t_store

    # sae_lens's runner re-runs the model over the same token ids (its own activation buffer)
    ids = fam.tokenizer()(texts)["input_ids"]
    ds = datasets.Dataset.from_dict({"input_ids": [r[: args.ctx] for r in ids if len(r) >= args.ctx]})
    sae_cfg = sae_lens.BatchTopKTrainingSAEConfig(
        d_in=128, d_sae=args.d_sae, k=args.k, normalize_activations="expected_average_only_in"
    )
    cfg = LanguageModelSAERunnerConfig(
        sae=sae_cfg,
        model_name="local-tiny-llama",
        hook_name=hook_name,
        dataset_path="local",
        is_dataset_tokenized=True,
        streaming=False,
        context_size=args.ctx,
        prepend_bos=False,
        training_tokens=n_tokens,
        train_batch_size_tokens=args.batch,
        store_batch_size_prompts=64,
        n_batches_in_buffer=8,
        lr=3e-4,
        lr_end=3e-5,
        lr_warm_up_steps=max(1, args.steps // 20),
        lr_decay_steps=args.steps // 5,
        logger=LoggingConfig(log_to_wandb=False),
        checkpoint_path=None,
        output_path=None,
        n_batches_for_norm_estimate=min(50, args.steps),
        device="cpu",
        seed=0,
        verbose=False,
    )
    runner_error = None
    with fam.open("base") as model:
        try:
            t0 = time.perf_counter()
            sae_lens.LanguageModelSAETrainingRunner(cfg, override_dataset=ds, override_model=model).run()
            t_runner = time.perf_counter() - t0
        except Exception as err:  # report exactly why the runner could not run offline
            runner_error = f"{type(err).__name__}: {err}"
    print(
        f"model: tiny Llama d_model=128, 4 layers, hook {hook_name}; SAE BatchTopK d_sae={args.d_sae} k={args.k}"
    )
    print(f"steps={args.steps} x {args.batch} tokens = {n_tokens} tokens, torch threads={args.threads}")
    print(f"store collection (once, reusable): {t_collect:.1f} s for {len(texts)} texts")
    print(f"train from store  : {t_store:7.1f} s  {tps_store:10.0f} tokens/s")
    if runner_error is None:
        tps_runner = n_tokens / t_runner
        print(f"sae_lens runner   : {t_runner:7.1f} s  {tps_runner:10.0f} tokens/s  (re-runs the model)")
        print(f"ratio store/runner: {tps_store / tps_runner:.2f}x")
    else:
        print(f"sae_lens runner could not run: {runner_error}")


if __name__ == "__main__":
    main()
