"""n sampled completions per prompt, seeded, on any variant, optionally under an intervention.

docs/measures.md, "Decoding elicitation": pass@k and CoT-decoding read many completions per
prompt. The ``n`` samples of a prompt come from one forward of the prompt
(:func:`probes.models.generation.generate_samples`: its KV cache repeated ``n`` times), and
sample ``j`` of prompt ``p`` draws from its own generator, seeded with :func:`row_seed` ``(seed
+ j, p)``. So the same seed gives the same samples whatever the batch size or the other
prompts of the task, the first ``m`` samples of a run with ``n > m`` equal a run with
``n = m``, and sample ``j`` of seed ``s`` is sample ``0`` of seed ``s + j``.

    >>> table = sample_task(model, tok, task, variant="base", n=8, temperature=1.0)  # doctest: +SKIP
    >>> table.columns.tolist()[:6]                                                     # doctest: +SKIP
    ['variant', 'task', 'prompt_id', 'label', 'split', 'sample']

Columns: ``variant, task, prompt_id, label, split, sample, seed, prompt, completion, parsed,
correct, used_format``. ``prefill`` (e.g. the task's format prefix ``"#"``) is appended to
each prompt and kept at the start of each completion, which "forces" the reasoning format.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from probes.data.tasks import Task
from probes.errors import TaskError
from probes.models.generation import Intervention, generate, generate_samples

__all__ = ["sample_task", "row_seed", "SAMPLE_COLUMNS"]

SAMPLE_COLUMNS = (
    "variant",
    "task",
    "prompt_id",
    "label",
    "split",
    "sample",
    "seed",
    "prompt",
    "completion",
    "parsed",
    "correct",
    "used_format",
)


def row_seed(seed: int, prompt_id: str) -> int:
    """The generator seed of one (prompt, sample) row: a 63-bit hash of ``seed`` and the prompt's
    id, so a row's draws depend on nothing else (not its position in the task or its batch).

    >>> row_seed(0, "p1") == row_seed(0, "p1") != row_seed(1, "p1")
    True
    """
    digest = hashlib.blake2b(f"{int(seed)}\x1f{prompt_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# the sampling keywords mirror probes.models.generation.generate, to which they pass through, and the
# task-level head (model, tokenizer, task, *, variant) is shared with cot_decode on purpose
def sample_task(
    model: Any,
    tokenizer: Any,
    task: Task,
    *,
    variant: str,
    n: int = 1,
    do_sample: bool | None = None,
    temperature: float = 1.0,
    top_p: float | None = None,
    seed: int = 0,
    max_new_tokens: int | None = None,
    prefill: str | None = None,
    batch_size: int = 256,
    intervention: Intervention | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Draw ``n`` completions of every prompt of ``task`` and score them with the task's scorer.

    Args:
        model, tokenizer: one open variant (``with family.open(v) as model``) and its tokenizer.
        variant: the name written into the ``variant`` column.
        n: samples per prompt. ``do_sample`` defaults to ``n > 1`` (greedy when ``n == 1``).
        temperature, top_p: sampling settings (ignored when greedy).
        seed: sample ``j`` of prompt ``p`` draws from a generator seeded with
            :func:`row_seed` ``(seed + j, p.id)``.
        max_new_tokens: defaults to ``task.max_new_tokens`` (plus nothing for ``prefill``).
        prefill: text appended to each prompt (after a space) and kept in the completion.
        intervention: ``intervention(model, batch) -> context manager`` around every generate
            call (e.g. a steering vector passed in by :mod:`steering`).
    """
    if n < 1:
        raise TaskError(f"n (samples per prompt) must be >= 1, got {n}.")
    if temperature <= 0:
        raise TaskError(
            f"temperature must be > 0, got {temperature}; use do_sample=False for greedy decoding."
        )
    if top_p is not None and not 0 < top_p <= 1:
        raise TaskError(f"top_p must be in (0, 1], got {top_p}.")
    sampling = n > 1 if do_sample is None else do_sample
    budget = task.max_new_tokens if max_new_tokens is None else max_new_tokens
    head = prefill.strip() if prefill else ""
    prompts = [e.prompt + (" " + head if head else "") for e in task.examples]
    if sampling:
        seeds = [[row_seed(seed + j, e.id) for j in range(n)] for e in task.examples]
        drawn = generate_samples(
            model,
            tokenizer,
            prompts,
            seeds=seeds,
            max_new_tokens=budget,
            temperature=temperature,
            top_p=top_p,
            batch_size=batch_size,
            intervention=intervention,
            progress=progress,
        )
    else:  # greedy: every sample is the same completion
        once = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=budget,
            batch_size=batch_size,
            intervention=intervention,
            progress=progress,
        )
        drawn = [[c] * n for c in once]
    rows = []
    for j in range(n):  # sample-major: every prompt's sample 0 first
        for ex, outs in zip(task.examples, drawn, strict=True):
            out = outs[j]
            completion = (head + " " + out).strip() if head else out
            sc = task.score(completion, ex.answer)
            rows.append(
                {
                    "variant": variant,
                    "task": task.name,
                    "prompt_id": ex.id,
                    "label": ex.label,
                    "split": ex.split,
                    "sample": j,
                    "seed": seed + j,
                    "prompt": ex.prompt,
                    "completion": completion,
                    "parsed": sc.parsed,
                    "correct": bool(sc.correct),
                    "used_format": bool(sc.used_format),
                }
            )
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
