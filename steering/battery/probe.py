"""Battery test 3: the base's linear probe of the contrast, evaluated on each tuned variant (AUROC ratio)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.representation.transfer import probe_transfer
from steering.battery.config import BatteryConfig, balanced
from steering.battery.rows import BatteryRow, TestId

__all__ = ["probe_rows", "embedding_separability", "probe_prompts"]


def probe_prompts(ref: Task, cfg: BatteryConfig) -> Task:
    """The contrast prompts the probes read: at most ``max_fit`` fit-split prompts and
    ``max_test`` held-out (dev and test) ones, each balanced between the two sides."""
    sub = ref.filter(label=list(cfg.contrast), split=[cfg.fit_split, cfg.dev_split, cfg.test_split])
    return sub.with_examples(
        balanced(sub.filter(split=cfg.fit_split), cfg.contrast, cfg.max_fit)
        + balanced(sub.filter(split=[cfg.dev_split, cfg.test_split]), cfg.contrast, cfg.max_test)
    )


def embedding_separability(
    family: ModelFamily, ref: Task, cfg: BatteryConfig, workdir: Path, *, progress: bool = True
) -> tuple[float, int]:
    """Held-out AUROC of a logistic probe (scikit-learn) for the contrast on the base's token
    embeddings: ``resid_pre`` of layer 0 (the embedding, plus a learned position embedding
    where the model has one), averaged over each prompt's tokens, fit on the fit split and
    scored on dev and test. Returns (AUROC, held-out prompts); NaN when a split lacks a side.

    Averaged over the prompt, not read at the decision token: with rotary positions the
    decision token's layer-0 input is that one token's embedding, the same on both sides, so it
    could not see the wording; the average is a bag of the prompt's words. AUROC near 1 says the
    two sides are told apart by their words alone."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    sub = probe_prompts(ref, cfg)
    acts = collect_activations(
        family,
        sub,
        "resid_pre.0",
        "all",
        variants=["base"],
        out=workdir / "acts" / f"embed-{sub.hash}",
        progress=progress,
    )
    rows, owner = acts.get_tokens("base", "resid_pre.0", "all")
    n = len(acts.prompt_ids)
    sums = torch.zeros(n, rows.shape[1], dtype=torch.float64).index_add_(0, owner, rows.double())
    X = (sums / torch.bincount(owner, minlength=n).clamp(min=1)[:, None]).numpy()
    lab = np.asarray([str(x) for x in acts.labels])
    spl = np.asarray([str(x) for x in acts.splits])
    y = (lab == cfg.contrast[0]).astype(int)
    tr, ev = spl == cfg.fit_split, np.isin(spl, [cfg.dev_split, cfg.test_split])
    if len(set(y[tr])) < 2 or len(set(y[ev])) < 2:
        return float("nan"), int(ev.sum())
    probe = LogisticRegression(max_iter=5000, random_state=cfg.seed).fit(X[tr], y[tr])
    return float(roc_auc_score(y[ev], probe.decision_function(X[ev]))), int(ev.sum())


def probe_rows(
    family: ModelFamily,
    ref: Task,
    variants: Sequence[str],
    cfg: BatteryConfig,
    workdir: Path,
    *,
    progress: bool = True,
) -> list[BatteryRow]:
    """Base probe on tuned activations / tuned probe on tuned, per layer, at the decision token."""
    layers = f"resid_post:0-{family.layer_count() - 1}"
    sub = probe_prompts(ref, cfg)
    acts = collect_activations(
        family,
        sub,
        layers,
        cfg.decision,
        variants=["base", *[v for v in variants if v != "base"]],
        out=workdir / "acts" / f"probe-{sub.hash}",
        progress=progress,
    )
    rows = []
    for v in variants:
        if v == "base":
            continue
        for layer in range(family.layer_count()):
            p = probe_transfer(
                acts,
                v,
                f"resid_post.{layer}",
                cfg.contrast,
                train_split=cfg.fit_split,
                eval_split=(cfg.dev_split, cfg.test_split),
                seed=cfg.seed,
            )
            rows.append(
                BatteryRow.make(
                    TestId.PROBE,
                    v,
                    ref.name,
                    layer,
                    cfg.decision,
                    p["ratio"],
                    0.5 / max(p["auroc_own_probe"], 1e-9),
                    p["ratio_lo"],
                    p["ratio_hi"],
                    int(p["n"]),
                    f"AUROC base probe on {v} {p['auroc_base_probe']:.2f} / own probe {p['auroc_own_probe']:.2f}",
                    auroc_base_probe=p["auroc_base_probe"],
                    auroc_own_probe=p["auroc_own_probe"],
                )
            )
    return rows
