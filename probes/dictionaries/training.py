"""Training shared by the SAE and the crosscoder: which store rows are kept, seeded minibatches,
and one run of sae_lens's trainer.

docs/measures.md, "SAEs and crosscoders". Both dictionaries are sae_lens training SAEs fed
from the activation store: :func:`keep_mask` drops each prompt's first row (BOS) and rows of
outlier norm, :func:`row_batches` yields seeded shuffled minibatches, and
:func:`train_dictionary` (what :func:`~probes.dictionaries.sae.fit_sae` and
:func:`~probes.dictionaries.crosscoder.fit_crosscoder` call) runs ``sae_lens.SAETrainer`` on
them (no wandb, no checkpoints) and returns the inference SAE exactly as a reader of the saved
folder gets it (:func:`inference_sae`).

Glossary of dimensions: ``row`` is a token row of the activation store (all prompts
concatenated), ``d_in`` the width the dictionary reads.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float, Int

from probes.data.activations import ActivationSet
from probes.errors import ElicitError
from probes.models.positions import Position

__all__ = [
    "position_key",
    "drops_first",
    "keep_mask",
    "store_keep_mask",
    "check_schedule",
    "row_batches",
    "inference_sae",
    "train_dictionary",
]


def position_key(acts: ActivationSet, position: str | Position | None) -> str:
    """The store key of ``position`` (``None``: the store's first position)."""
    return position.key if isinstance(position, Position) else (position or acts.positions[0])


def drops_first(acts: ActivationSet, position: str | Position | None, drop_first: bool | None) -> bool:
    """Whether each prompt's first row (BOS) is dropped: by default only for position ``all``."""
    if drop_first is not None:
        return drop_first
    return position_key(acts, position) == "all"


def keep_mask(
    rows: Float[torch.Tensor, "row d_in"],
    owner: Int[torch.Tensor, " row"],
    drop_first: bool,
    outlier_factor: float | None,
) -> Bool[torch.Tensor, " row"]:
    """Rows kept for training: not a prompt's first row (when ``drop_first``; ``owner[i]`` is
    row i's prompt) and of norm at most ``outlier_factor`` times the median norm of those kept."""
    keep = torch.ones(len(rows), dtype=torch.bool)
    if drop_first and len(owner):
        first = torch.ones_like(keep)
        first[1:] = owner[1:] != owner[:-1]
        keep &= ~first
    if outlier_factor is not None and keep.any():
        norms = rows.norm(dim=-1)
        keep &= norms <= outlier_factor * norms[keep].median()
    return keep


def store_keep_mask(
    acts: ActivationSet,
    position: str | Position | None,
    rows: Float[torch.Tensor, "row d_in"],
    owner: Int[torch.Tensor, " row"],
    *,
    drop_first: bool | None,
    outlier_factor: float | None,
) -> Bool[torch.Tensor, " row"]:
    """:func:`keep_mask` of rows read from ``acts`` at ``position``, BOS dropped by :func:`drops_first`'s rule."""
    return keep_mask(rows, owner, drops_first(acts, position, drop_first), outlier_factor)


def check_schedule(steps: int, batch_size: int, error: type[ElicitError] = ElicitError) -> None:
    """Raise ``error`` unless ``steps`` and ``batch_size`` are both at least 1."""
    if steps < 1 or batch_size < 1:
        raise error(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}.")


def row_batches(rows: Float[torch.Tensor, "row d_in"], batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless shuffled minibatches of rows (one seeded permutation per epoch).

    With fewer rows than one batch, each batch samples rows with replacement.
    """
    gen = torch.Generator().manual_seed(seed)
    n = len(rows)
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            idx = perm[i : i + batch_size]
            if len(idx) < batch_size:  # fewer rows than one batch: sample with replacement
                idx = torch.randint(0, n, (batch_size,), generator=gen)
            yield rows[idx]


def _trainer_config(
    steps: int, batch_size: int, lr: float, device: str, dead_feature_window: int | None
) -> Any:
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    # sae_lens's defaults (1000 / 2000 steps) unless given: a shorter window turns on the
    # TopK auxiliary loss for dead latents sooner (short runs need it; it costs a second top-k)
    windows = (
        {}
        if dead_feature_window is None
        else {"dead_feature_window": dead_feature_window, "feature_sampling_window": 2 * dead_feature_window}
    )
    return SAETrainerConfig(
        total_training_samples=steps * batch_size,
        train_batch_size_samples=batch_size,
        lr=lr,
        lr_end=lr / 10,
        lr_warm_up_steps=max(1, steps // 20),
        lr_decay_steps=steps // 5,
        device=device,
        logger=LoggingConfig(log_to_wandb=False),
        n_batches_for_norm_estimate=min(50, steps),
        **windows,
    )


def inference_sae(
    trained: Any, *, device: str, out: str | Path | None = None, prefix: str = "elicit-sae-"
) -> Any:
    """The inference SAE of ``trained``: saved in sae_lens's format to ``out`` (a temporary folder,
    removed afterwards, when ``None``) and loaded back with ``sae_lens.SAE.load_from_disk``, so
    what you get is exactly what a reader of the folder gets."""
    import sae_lens

    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix=prefix)
        out = tmp
    try:
        trained.save_inference_model(str(out))  # BatchTopK -> JumpReLU with the learned threshold
        return sae_lens.SAE.load_from_disk(str(out), device=device)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def train_dictionary(
    cls: Any,
    cfg: Any,
    rows: Float[torch.Tensor, "row d_in"],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    dead_feature_window: int | None = None,
    out: str | Path | None = None,
    prefix: str = "elicit-sae-",
    error: type[ElicitError] = ElicitError,
) -> Any:
    """Train ``cls(cfg)`` (a sae_lens training SAE) on ``device`` with ``sae_lens.SAETrainer`` on
    seeded minibatches of ``rows``, and return its inference SAE (:func:`inference_sae`, saved to
    ``out``). The initial weights are seeded by ``seed``; ``error`` is raised for a schedule of
    fewer than one step or one row per batch.
    """
    import sae_lens

    check_schedule(steps, batch_size, error)
    cfg.device = device
    data = row_batches(rows, batch_size, seed)
    # sae_lens initialises the weights (and the trainer draws) from the *global* torch RNG, which
    # no local torch.Generator reaches: seed it inside fork_rng, which hands the caller's RNG
    # state back on exit (CPU, and the CUDA device trained on), so no process state leaks.
    on_cuda = torch.device(device).type == "cuda"
    with torch.random.fork_rng(devices=[torch.device(device)] if on_cuda else []):
        torch.manual_seed(seed)
        sae = cls(cfg)
        tcfg = _trainer_config(steps, batch_size, lr, device, dead_feature_window)
        trained = sae_lens.SAETrainer(tcfg, sae, data).fit()
    return inference_sae(trained, device=device, out=out, prefix=prefix)
