"""Battery test: computation probes. Does the base represent what the tuned model computes?

At every step of a teacher-forced reference trace, *before* the step's result token is
written, a linear probe (scikit-learn's multinomial logistic regression on standardised
``resid_post`` activations) reads the value the step computes: the next token of the trace's
computation span (the organism's running count on parity, the running sum mod 3 on ``create``,
the running count mod 3 on ``create_far``). Read one position earlier, the value is not yet an
input token: the probe reads the computation, not a copy of the trace.

Per variant, task and layer, on the same traces through both models:

- ``own``: the probe fitted on the tuned variant's activations (fit split), scored on the tuned
  variant's held-out traces: how well the tuned model's computation is linearly readable;
- ``transfer``: that same probe (and its standardisation) scored on the *base's* activations of the
  held-out traces: whether the base carries the tuned model's computation in the same directions;
- ``base_own`` / ``reverse``: a probe fitted on the base, scored on the base / on the tuned variant;
- ``input``: a baseline that sees only the input: the majority next value given the current token
  and the step index (fitted on the fit split). On parity it is high (the count rises or stays),
  which is why the statistic is measured above it;
- ``shuffled``: the tuned probe's recipe fitted on permuted targets, scored on the base (the null).

The statistic is the share of the tuned model's decodability above the input baseline that the
base carries, ``(transfer - input) / (own - input)``: near 1 when post-training selected a
computation the base already had, near 0 when it created one. Its 95% interval is a bootstrap
over held-out traces (the steps of one trace are not independent), probes held fixed; the null is
the same statistic of the shuffled probe. Where the tuned model's own probe decodes no more than
``MIN_ABOVE_INPUT`` above the input, the statistic is undefined (NaN) and the row says so.

This is the probing recipe of Alain & Bengio (2016, "Understanding intermediate layers using
linear classifier probes"), scored across models as the kit's probe test does for the contrast;
the targets are the task's own intermediate values. It runs where the task has reference traces and the battery a
``computation`` span; elsewhere it is skipped (no rows, and the report lists no such test).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probes.data.activations import collect_activations, prompt_rows
from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily
from probes.models.positions import parse_position
from steering.battery.config import BatteryConfig
from steering.battery.rows import BatteryRow, TestId

__all__ = ["computation_rows", "step_targets", "ProbeScores", "score_computation", "MIN_ABOVE_INPUT"]

#: the tuned model's own probe must decode this much above the input baseline (accuracy) for the
#: transfer share to be defined: below it the denominator is noise
MIN_ABOVE_INPUT = 0.05
_BOOT = 1000


def step_targets(ids: Sequence[int], span: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """(rows, targets, inputs) of one trace's computation span ``span`` (indices into ``ids``).

    Row ``j`` of the span (its ``j``-th token) predicts the span's token ``j + 1``; the last two
    rows are left out (they predict the span's end marker and nothing). ``inputs`` is the token
    at each kept row (what the input baseline sees).

    >>> step_targets([5, 9, 20, 21, 21, 22, 30], [1, 2, 3, 4, 5, 6])  # '#', 1, 1, 2, '>' over ids 9..30
    ([0, 1, 2, 3], [20, 21, 21, 22], [9, 20, 21, 21])
    """
    span = list(span)
    keep = list(range(max(0, len(span) - 2)))
    return keep, [int(ids[span[j + 1]]) for j in keep], [int(ids[span[j]]) for j in keep]


@dataclass(frozen=True)
class ProbeScores:
    """Per held-out row correctness (0/1) of each probe, and each row's trace (for the bootstrap)."""

    own: np.ndarray
    transfer: np.ndarray
    base_own: np.ndarray
    reverse: np.ndarray
    input: np.ndarray
    shuffled: np.ndarray
    trace: np.ndarray

    def share(self, which: np.ndarray | None = None, w: np.ndarray | None = None) -> float:
        """``(which - input) / (own - input)`` in accuracy (``which``: default the transfer)."""
        which = self.transfer if which is None else which
        if w is None:
            w = np.ones(len(self.own))
        acc = {
            k: float(np.dot(w, v) / w.sum()) for k, v in (("o", self.own), ("t", which), ("i", self.input))
        }
        den = acc["o"] - acc["i"]
        return (acc["t"] - acc["i"]) / den if den >= MIN_ABOVE_INPUT else float("nan")


#: L-BFGS iterations of every probe; the real probes converge in far fewer, a probe of permuted
#: targets (the null) would otherwise run on towards separating noise (seed 0 of the organism:
#: 133 s for the stage at 3,000 iterations, the permuted fits most of it)
MAX_ITER = 500


def _probe(X: np.ndarray, y: np.ndarray, seed: int):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, random_state=seed))
    # one BLAS thread, for this fit only: the problem is small (rows x d_model x values), and BLAS
    # threads beside the OpenMP threads torch leaves spinning slow each fit down on 2 cores
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter(
            "ignore", ConvergenceWarning
        )  # a permuted-target fit stops at MAX_ITER by design
        return probe.fit(X, y)


def _input_baseline(
    key_fit: Sequence[tuple[int, int]], y_fit: np.ndarray, key_eval: Sequence[tuple[int, int]]
) -> np.ndarray:
    """The majority fit target of each (input token, step) key, at each eval row (overall
    majority for a key the fit split never shows)."""
    from collections import Counter, defaultdict

    by: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
    for k, t in zip(key_fit, y_fit, strict=True):
        by[k][int(t)] += 1
    overall = Counter(int(t) for t in y_fit).most_common(1)[0][0]
    return np.asarray([by[k].most_common(1)[0][0] if k in by else overall for k in key_eval])


def score_computation(
    X_tuned: tuple[np.ndarray, np.ndarray],
    X_base: tuple[np.ndarray, np.ndarray],
    y: tuple[np.ndarray, np.ndarray],
    keys: tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]],
    trace: np.ndarray,
    seed: int = 0,
    base_probe: Any = None,
) -> ProbeScores:
    """Fit the probes on the fit rows (``[0]`` of each pair) and score them on the held-out rows
    (``[1]``): the same rows (traces, steps) through the tuned and the base model. ``base_probe``:
    the base's probe when already fitted on these fit rows (it is the same for every variant)."""
    (Xt_fit, Xt_ev), (Xb_fit, Xb_ev), (y_fit, y_ev) = X_tuned, X_base, y
    if len(set(y_fit.tolist())) < 2:
        raise ElicitError(
            "Computation probe: the fit traces' step values are all the same; nothing to probe."
        )
    tuned = _probe(Xt_fit, y_fit, seed)
    base = base_probe if base_probe is not None else _probe(Xb_fit, y_fit, seed)
    rng = np.random.default_rng(seed)
    shuf = _probe(Xt_fit, rng.permutation(y_fit), seed)
    inp = _input_baseline(keys[0], y_fit, keys[1])
    return ProbeScores(
        own=(tuned.predict(Xt_ev) == y_ev).astype(float),
        transfer=(tuned.predict(Xb_ev) == y_ev).astype(float),
        base_own=(base.predict(Xb_ev) == y_ev).astype(float),
        reverse=(base.predict(Xt_ev) == y_ev).astype(float),
        input=(inp == y_ev).astype(float),
        shuffled=(shuf.predict(Xb_ev) == y_ev).astype(float),
        trace=np.asarray(trace),
    )


def _boot_share(s: ProbeScores, seed: int) -> tuple[float, float]:
    """95% percentile interval of the transfer share, resampling held-out traces with replacement."""
    traces, inv = np.unique(s.trace, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(traces), size=(_BOOT, len(traces)))
    vals = []
    for d in draws:
        w = np.bincount(d, minlength=len(traces))[inv].astype(float)
        vals.append(s.share(w=w))
    v = np.asarray(vals)
    v = v[np.isfinite(v)]
    if len(v) < _BOOT // 2:
        return float("nan"), float("nan")
    return float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))


def _sample(task: Task, split: str | Sequence[str], label: str | None, n: int, seed: int) -> list:
    """At most ``n`` examples of ``split`` (with ``label``, when the task labels its prompts), a seeded
    sample: the organism's splits are sorted strings, so the first ``n`` would share their prefix."""
    labels = {e.label for e in task.examples if e.label is not None}
    sub = task.filter(
        split=list(split) if not isinstance(split, str) else split, label=label if labels else None
    )
    exs = list(sub.examples)
    order = np.random.default_rng(seed).permutation(len(exs))[:n]
    return [exs[i] for i in sorted(order)]


def computation_rows(
    family: ModelFamily,
    task: Task,
    variants: Sequence[str],
    cfg: BatteryConfig,
    workdir: Path,
    *,
    progress: bool = True,
) -> list[BatteryRow]:
    """Computation-probe rows of every tuned variant judged on ``task``, per layer; none where the
    task has no reference traces or the battery no ``computation`` span."""
    tuned = [v for v in variants if v != "base"]
    if not cfg.computation or not tuned or not task.examples or not all(e.trace for e in task.examples):
        return []
    fit = _sample(task, cfg.fit_split, cfg.eval_label, cfg.max_fit, cfg.seed)
    held = _sample(task, [cfg.dev_split, cfg.test_split], cfg.eval_label, cfg.max_test, cfg.seed)
    if len(fit) < 4 or len(held) < 4:
        return []
    sub = task.with_examples(fit + held)
    pos = parse_position(cfg.computation)
    rows_of = prompt_rows(family, sub, text="prompt+trace", variant="base", positions=[pos])
    hooks = f"resid_post:0-{family.layer_count() - 1}"
    acts = collect_activations(
        family,
        sub,
        hooks,
        cfg.computation,
        variants=["base", *tuned],
        text="prompt+trace",
        out=workdir / "acts" / f"computation-{sub.hash}",
        progress=progress,
    )
    if list(acts.prompt_ids) != list(sub.ids):
        raise ElicitError(
            "Computation probe: the activation store's prompts are not the traces' (a stale store?); "
            f"delete {workdir / 'acts'} and rerun."
        )
    # the store's rows follow each prompt's span, in prompt order: keep the rows with a step target
    keep, y, keys, trace, is_fit = [], [], [], [], []
    offset = 0
    n_fit = len(fit)
    for i, (ids, resolved) in enumerate(zip(rows_of.ids, rows_of.resolved, strict=True)):
        span = resolved[0]
        ks, ts, ins = step_targets(ids, span)
        keep += [offset + k for k in ks]
        y += ts
        keys += [(a, k) for a, k in zip(ins, ks, strict=True)]
        trace += [i] * len(ks)
        is_fit += [i < n_fit] * len(ks)
        offset += len(span)
    keep_a, y_a, fit_a = np.asarray(keep), np.asarray(y), np.asarray(is_fit)
    trace_a = np.asarray(trace)
    keys_fit = [k for k, f in zip(keys, is_fit, strict=True) if f]
    keys_ev = [k for k, f in zip(keys, is_fit, strict=True) if not f]
    out: list[BatteryRow] = []
    for layer in range(family.layer_count()):
        hook = f"resid_post.{layer}"
        base_rows, _ = acts.get_tokens("base", hook, cfg.computation)
        if base_rows.shape[0] != offset:
            raise ElicitError(
                f"Computation probe: the store holds {base_rows.shape[0]} span rows, the traces {offset}; "
                "the activations and the tokenisation disagree (a stale store?)."
            )
        Xb = base_rows.float().numpy()[keep_a]
        base_probe = _probe(Xb[fit_a], y_a[fit_a], cfg.seed)
        for v in tuned:
            Xt = acts.get_tokens(v, hook, cfg.computation)[0].float().numpy()[keep_a]
            s = score_computation(
                (Xt[fit_a], Xt[~fit_a]),
                (Xb[fit_a], Xb[~fit_a]),
                (y_a[fit_a], y_a[~fit_a]),
                (keys_fit, keys_ev),
                trace_a[~fit_a],
                seed=cfg.seed,
                base_probe=base_probe,
            )
            share = s.share()
            lo, hi = _boot_share(s, cfg.seed) if np.isfinite(share) else (float("nan"), float("nan"))
            acc = {
                k: float(getattr(s, k).mean())
                for k in ("own", "transfer", "base_own", "reverse", "input", "shuffled")
            }
            why = (
                ""
                if np.isfinite(share)
                else f"; undefined: own probe within {MIN_ABOVE_INPUT} of the input baseline"
            )
            out.append(
                BatteryRow.make(
                    TestId.COMPUTATION_PROBE,
                    v,
                    task.name,
                    layer,
                    cfg.computation,
                    share,
                    s.share(s.shuffled),
                    lo,
                    hi,
                    len(held),
                    f"step-value accuracy: {v} probe on {v} {acc['own']:.2f}, on base {acc['transfer']:.2f}; "
                    f"base probe on base {acc['base_own']:.2f}, on {v} {acc['reverse']:.2f}; input baseline "
                    f"{acc['input']:.2f}; shuffled {acc['shuffled']:.2f} ({int((~fit_a).sum())} steps of "
                    f"{len(held)} held-out traces){why}",
                    **{f"acc_{k}": val for k, val in acc.items()},
                    n_steps=int((~fit_a).sum()),
                )
            )
    return out
