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

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
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
    "Convergence",
    "plateau",
    "until_converged",
    "PLATEAU_TOL",
    "PLATEAU_ABS_TOL",
]

#: Largest relative improvement of the training FVU over the last fifth of the constant-rate phase
#: (from 60% to 80% of the steps) that still counts as a plateau.
PLATEAU_TOL = 0.02
#: ... or largest absolute improvement (share of variance): a dictionary whose FVU falls from 0.013
#: to 0.010 still improves by 30% relative but by 0.3 points of explained variance, which is a
#: plateau for every use the battery makes of it. Measured on organism seed 0 (layer 1, 4,416 rows,
#: a 2x crosscoder of base and dpo): FVU 0.013 -> 0.010 over 60-80% of 500 steps, 0.006 -> 0.005 of
#: 1,000, 0.004 -> 0.003 of 2,000: relative gains stay near 30% while absolute ones vanish.
PLATEAU_ABS_TOL = 0.005


@dataclass(frozen=True)
class Convergence:
    """Whether a dictionary's training reached a plateau, by :func:`plateau`'s stated criterion.

    ``steps`` is the schedule of the run kept, ``tried`` every schedule run (doubling from the
    first until converged or ``max_steps``), ``fvu_mid`` / ``fvu_late`` the window means of the
    per-step training FVU at 60% and 80% of ``steps``, ``rel_improvement`` their relative
    difference and ``tol`` the cut. A dictionary that has not converged is reported as such and
    does not feed a verdict.
    """

    converged: bool
    steps: int
    tried: tuple[int, ...]
    fvu_mid: float
    fvu_late: float
    rel_improvement: float
    tol: float
    abs_tol: float = PLATEAU_ABS_TOL
    criterion: str = (
        "training FVU (window mean) improves by less than tol (relative) or abs_tol (absolute, share of "
        "variance) from 60% to 80% of the steps (the end of the constant learning rate, before its final decay)"
    )

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["tried"] = list(self.tried)
        return d


def plateau(
    curve: list[float], tol: float = PLATEAU_TOL, abs_tol: float = PLATEAU_ABS_TOL
) -> tuple[bool, float, float, float]:
    """``(converged, fvu_mid, fvu_late, rel)`` of a per-step training-FVU curve: the means of the
    windows of ``max(5, n // 20)`` steps ending at 60% and at 80% of the ``n`` steps, and
    ``rel = (fvu_mid − fvu_late) / fvu_late``; converged when ``rel < tol`` or
    ``fvu_mid − fvu_late < abs_tol``. The last 20% are left out because the learning rate decays
    there, which flattens any curve.

    >>> flat = [1.0] * 50 + [0.5] * 150                       # dropped early, then flat
    >>> plateau(flat)[0], plateau(flat)[3]
    (True, 0.0)
    >>> falling = [1.0 - 0.004 * i for i in range(200)]       # still falling 0.16 per 40 steps
    >>> ok, mid, late, rel = plateau(falling); ok, round(rel, 3)
    (False, 0.419)
    """
    n = len(curve)
    if n < 10:
        return False, math.nan, math.nan, math.nan
    w = max(5, n // 20)
    i_mid, i_late = int(0.6 * n), int(0.8 * n)
    mid = sum(curve[i_mid - w : i_mid]) / w
    late = sum(curve[i_late - w : i_late]) / w
    rel = (mid - late) / late if late > 0 else (0.0 if mid <= 0 else math.inf)
    return bool(rel < tol or mid - late < abs_tol), mid, late, rel


def until_converged(
    fit: Callable[[int], tuple[Any, list[float]]],
    steps: int,
    max_steps: int | None = None,
    tol: float = PLATEAU_TOL,
    abs_tol: float = PLATEAU_ABS_TOL,
) -> tuple[Any, Convergence]:
    """Run ``fit(steps)`` (which returns the dictionary and its per-step training FVU) and, while
    :func:`plateau` says it has not converged and ``2·steps <= max_steps``, run it again from the
    start with twice the steps (a fresh seeded schedule, not a continuation: sae_lens's learning
    rate warms up and decays over the whole run). Returns the last dictionary and its
    :class:`Convergence`."""
    max_steps = steps if max_steps is None else max(max_steps, steps)
    tried = []
    while True:
        sae, curve = fit(steps)
        tried.append(steps)
        ok, mid, late, rel = plateau(curve, tol, abs_tol)
        if ok or 2 * steps > max_steps:
            return sae, Convergence(ok, steps, tuple(tried), mid, late, rel, tol, abs_tol)
        steps *= 2


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
    curve: list[float] | None = None,
) -> Any:
    """Train ``cls(cfg)`` (a sae_lens training SAE) on ``device`` with ``sae_lens.SAETrainer`` on
    seeded minibatches of ``rows``, and return its inference SAE (:func:`inference_sae`, saved to
    ``out``). The initial weights are seeded by ``seed``; ``error`` is raised for a schedule of
    fewer than one step or one row per batch. ``curve`` (a list) receives each step's training
    FVU, ``Σ‖x − x̂‖² / Σ‖x − mean(x)‖²`` on that step's batch (what :func:`plateau` reads).
    """
    import sae_lens

    class _Recording(sae_lens.SAETrainer):  # type: ignore[misc,name-defined]
        # sae_lens logs its losses only to wandb; this records each step's batch FVU through the
        # trainer's public per-step seam (`step`), nothing else changes
        def step(self, batch: torch.Tensor) -> Any:
            out = super().step(batch)
            if curve is not None:
                with torch.no_grad():
                    x, xh = out.sae_in.detach(), out.sae_out.detach()
                    den = float((x - x.mean(0)).pow(2).sum())
                    curve.append(float((xh - x).pow(2).sum()) / den if den > 0 else math.nan)
            return out

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
        trained = _Recording(tcfg, sae, data).fit()
    return inference_sae(trained, device=device, out=out, prefix=prefix)
