"""What the report flags for a reader: conditions under which its numbers mean less than they seem.

Each check is a free function over saved results (the sweep rows, the SAE-transfer and weight
tables, the embedding probe) returning :class:`Caveat` values; :func:`report_caveats` runs them
all. ``report.md`` lists them under "Warnings" and ``report.json`` under ``warnings``. None of
them changes a verdict.

The checks, and their thresholds (module constants, written into every warning's message):

* ``small_split``: a dev or test split with fewer than :data:`~steering.battery.config.MIN_SPLIT`
  (32) evaluated prompts; at 32 prompts the 95% interval of an accuracy near 0.5 is about
  +/- 0.17, wider than the rule's ``min_gap``.
* ``split_mismatch``: the base's accuracy on dev and on test differ more than chance allows:
  Fisher's exact test of the 2x2 table (correct / wrong by split), two-sided p below
  :data:`MISMATCH_P` (0.05). Layer and alpha are chosen on dev, so a dev split much harder or
  easier than test chooses them for other prompts than those reported.
* ``budget``: the share of a variant's completions cut off by the token budget (``finish ==
  "budget"``) above :data:`BUDGET_SHARE` (10%): a cut-off completion has no final answer and
  scores wrong. Counted per variant on the sweep's unsteered rows, on the base's steered rows,
  and on the base's forced-format completions.
* ``embedding_separable``: the contrast's two sides are told apart by a logistic probe on the
  base's token embeddings (``resid_pre`` of layer 0, mean over the prompt's tokens) with
  held-out AUROC above :data:`EMBEDDING_AUROC` (0.9): the sides differ in their words, so the
  fitted direction can carry the wording as well as the mode.
* ``ce_recovered_above_1``: the base SAE spliced in gives a *lower* loss than the clean model;
  see :func:`steering.battery.sae.ce_note`.
* ``weights_noise_floor``: most of a variant's principal-subspace angles are at their float noise
  floor (:func:`probes.weights.measures.angle_noise_floor`): no rotation was measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from steering.battery.config import MIN_SPLIT
from steering.battery.rows import TestId

__all__ = [
    "Caveat",
    "BUDGET_SHARE",
    "MISMATCH_P",
    "EMBEDDING_AUROC",
    "split_caveats",
    "budget_caveats",
    "forced_budget_caveats",
    "embedding_caveats",
    "ce_caveats",
    "weight_caveats",
    "report_caveats",
]

#: a variant whose completions hit the token budget more often than this is flagged
BUDGET_SHARE = 0.10
#: dev and test base accuracies whose Fisher exact test gives a two-sided p below this are flagged
MISMATCH_P = 0.05
#: a held-out embedding-probe AUROC above this flags the contrast as separable by its wording
EMBEDDING_AUROC = 0.9
#: a variant is flagged when at least this share of its matrices' angles is at the noise floor
FLOOR_SHARE = 0.5


@dataclass(frozen=True)
class Caveat:
    """One warning of the report: which check, about what, its value, and what it means."""

    check: str
    message: str
    task: str = ""
    variant: str = ""
    value: float = float("nan")

    def to_record(self) -> dict[str, object]:
        rec = asdict(self)
        rec["value"] = None if np.isnan(self.value) else float(self.value)
        return rec


def _base_unsteered(sweep: pd.DataFrame, split: str) -> pd.Series:
    """The base's unsteered correctness per prompt on ``split`` (one row per prompt)."""
    rows = sweep[(sweep.control == "none") & (sweep.variant == "base") & (sweep.split == split)]
    return rows.drop_duplicates("prompt_id").set_index("prompt_id").correct.astype(float)


def split_caveats(
    sweep: pd.DataFrame, task: str, dev_split: str = "dev", test_split: str = "test", minimum: int = MIN_SPLIT
) -> list[Caveat]:
    """``small_split`` for a split under ``minimum`` prompts; ``split_mismatch`` when the base's
    dev and test accuracies differ (Fisher's exact test, two-sided p < :data:`MISMATCH_P`)."""
    from scipy.stats import fisher_exact

    dev, test = _base_unsteered(sweep, dev_split), _base_unsteered(sweep, test_split)
    out = []
    for split, s in ((dev_split, dev), (test_split, test)):
        if len(s) < minimum:
            out.append(
                Caveat(
                    "small_split",
                    f"task {task!r}: the {split} split has {len(s)} evaluated prompt{'' if len(s) == 1 else 's'}, "
                    f"fewer than {minimum}; "
                    f"its accuracies carry intervals of about +/- {1.96 * 0.5 / max(len(s), 1) ** 0.5:.2f}. "
                    "Add prompts (or raise --max-dev / --max-test) before reading small gaps.",
                    task=task,
                    value=float(len(s)),
                )
            )
    if len(dev) and len(test):
        k_d, k_t = int(dev.sum()), int(test.sum())
        p = float(fisher_exact([[k_d, len(dev) - k_d], [k_t, len(test) - k_t]]).pvalue)
        if p < MISMATCH_P:
            out.append(
                Caveat(
                    "split_mismatch",
                    f"task {task!r}: the base scores {dev.mean():.2f} on {dev_split} ({len(dev)} prompts) but "
                    f"{test.mean():.2f} on {test_split} ({len(test)}); Fisher's exact test p = {p:.3g} < "
                    f"{MISMATCH_P}. Steering settings chosen on {dev_split} were chosen on prompts unlike those "
                    "reported; draw the splits from one pool (e.g. a hashed split).",
                    task=task,
                    value=p,
                )
            )
    return out


def budget_caveats(sweep: pd.DataFrame, task: str, share: float = BUDGET_SHARE) -> list[Caveat]:
    """``budget`` for each variant (its unsteered completions; ``base (steered)`` for the base
    under every steered setting) whose share of budget-cut completions exceeds ``share``."""
    if "finish" not in sweep:
        return []
    steered = sweep.control != "none"
    groups = [(str(v), g) for v, g in sweep[~steered].groupby("variant", sort=False)]
    if steered.any():
        groups.append(("base (steered)", sweep[steered]))
    out = []
    for name, g in groups:
        cut = float((g["finish"] == "budget").mean())
        if cut > share:
            out.append(
                Caveat(
                    "budget",
                    f"task {task!r}: {cut:.0%} of {name}'s {len(g)} completions were cut off by the token budget "
                    f"(more than {share:.0%}); a cut-off completion has no final answer and scores wrong. "
                    "Raise the budget with --max-new-tokens (or max_new_tokens in the task or [battery] table).",
                    task=task,
                    variant=name,
                    value=cut,
                )
            )
    return out


def forced_budget_caveats(tests: pd.DataFrame, share: float = BUDGET_SHARE) -> list[Caveat]:
    """``budget`` for the base's forced-format completions (``budget_share`` of the forced-format
    rows, one per task) above ``share``: a prefilled reasoning format is the longest completion."""
    if tests.empty or "budget_share" not in tests:
        return []
    rows = tests[(tests.test == TestId.FORCED_FORMAT.value) & tests.budget_share.notna()]
    out = []
    for task, g in rows.groupby("task", sort=False):
        cut = float(g.budget_share.iloc[0])
        if cut > share:
            out.append(
                Caveat(
                    "budget",
                    f"task {task!r}: {cut:.0%} of the base's forced-format completions were cut off by the token "
                    f"budget (more than {share:.0%}); the forced-format gap recovered then undercounts the base. "
                    "Raise the budget with --max-new-tokens (or max_new_tokens in the task or [battery] table).",
                    task=str(task),
                    variant="base (forced format)",
                    value=cut,
                )
            )
    return out


def embedding_caveats(auroc: float, n: int, task: str, threshold: float = EMBEDDING_AUROC) -> list[Caveat]:
    """``embedding_separable`` when the held-out embedding-probe AUROC exceeds ``threshold``."""
    if not np.isfinite(auroc) or auroc <= threshold:
        return []
    return [
        Caveat(
            "embedding_separable",
            f"task {task!r}: a linear probe on the base's token embeddings (layer 0 resid_pre, mean over the "
            f"prompt) tells the contrast's two sides apart with held-out AUROC {auroc:.2f} (> {threshold}, "
            f"{n} prompts): the sides differ in their words, before any layer has computed anything. The fitted "
            "direction then partly encodes the prompt wording; lean on the random-direction control and the "
            "held-out probe test, and prefer a contrast whose sides share their words.",
            task=task,
            value=auroc,
        )
    ]


def ce_caveats(sae_table: pd.DataFrame) -> list[Caveat]:
    """``ce_recovered_above_1`` for each variant whose base-SAE splice beats the clean model."""
    from steering.battery.sae import ce_note

    out: list[Caveat] = []
    if "ce_recovered" not in sae_table:
        return out
    for r in sae_table.to_dict("records"):
        note = ce_note(r["ce_recovered"], r.get("ce_recovered_lo"), r.get("ce_recovered_hi"))
        if note:
            out.append(
                Caveat(
                    "ce_recovered_above_1",
                    f"{r['variant']} (layer {r.get('layer', '?')}): {note}",
                    variant=str(r["variant"]),
                    value=float(r["ce_recovered"]),
                )
            )
    return out


def weight_caveats(weights: pd.DataFrame, share: float = FLOOR_SHARE) -> list[Caveat]:
    """``weights_noise_floor`` for each variant with at least ``share`` of its matrix angles
    (every ``angle_*_at_floor@k`` column) at the float noise floor."""
    cols = [c for c in weights.columns if c.startswith("angle_") and "_at_floor@" in c]
    if weights.empty or not cols:
        return []
    out = []
    for v, g in weights.groupby("variant", sort=False):
        flags = g[cols].to_numpy(dtype=float)
        flags = flags[np.isfinite(flags)]
        if not len(flags) or flags.mean() < share:
            continue
        angles = g[[c.replace("_at_floor@", "_mean@") for c in cols]].to_numpy(dtype=float)
        floors = g[["angle_out_floor", "angle_in_floor"]].to_numpy(dtype=float)
        out.append(
            Caveat(
                "weights_noise_floor",
                f"{v}: {flags.mean():.0%} of its principal-subspace angles are at their float noise floor "
                f"(mean angles up to {np.nanmax(angles):.3g} deg against floors of {np.nanmin(floors):.3g}-"
                f"{np.nanmax(floors):.3g} deg): no rotation of the principal subspaces was measured; read "
                "these angles as 0 (an identical copy reads the same).",
                variant=str(v),
                value=float(flags.mean()),
            )
        )
    return out


def report_caveats(
    sweeps: Sequence[pd.DataFrame],
    *,
    dev_split: str = "dev",
    test_split: str = "test",
    embedding: tuple[float, int, str] | None = None,
    sae_tables: Sequence[pd.DataFrame] = (),
    weights: pd.DataFrame | None = None,
    tests: pd.DataFrame | None = None,
) -> list[Caveat]:
    """Every check over a battery run's tables (``sweeps``: one per task, with a ``task`` column;
    ``tests``: the battery rows, for the forced format's budget)."""
    out: list[Caveat] = []
    for sweep in sweeps:
        task = str(sweep["task"].iloc[0]) if "task" in sweep and len(sweep) else ""
        out += split_caveats(sweep, task, dev_split, test_split)
        out += budget_caveats(sweep, task)
    if tests is not None:
        out += forced_budget_caveats(tests)
    if embedding is not None:
        out += embedding_caveats(*embedding)
    for t in sae_tables:
        out += ce_caveats(t)
    if weights is not None:
        out += weight_caveats(weights)
    return out
