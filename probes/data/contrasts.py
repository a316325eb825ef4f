"""Contrasts without hand labels: recipes that turn a task's questions into the labelled prompts
the battery fits the base's reasoning direction on (docs/design.md, "A contrast without hand
labels").

The organism's tasks carry hand labels (``careful`` / ``direct`` / ``neutral``); a real task
such as GSM8K carries none. ``contrast = "cot_vs_direct"`` in a family file's ``[tasks.NAME]``
table expands every question into two prompts, the question followed by a chain-of-thought
instruction (label ``careful``) and by an answer-directly instruction (label ``direct``); a
question outside the ``train`` split is also kept as written (label ``neutral``). The
direction is fit on the base's activations over the *train* pairs only; steering and judging
use the neutral dev / test questions, never in the fit; the held-out dev / test pairs are read
only by the probe-transfer test (the base's probe scored on questions it was not fit on). A question without a ``split`` gets one from a hash of
its id (:func:`hashed_split`: 50% train, 20% dev, 30% test), so a plain GSM8K export works.

    >>> from probes.data.tasks import Task
    >>> t = Task.from_records("toy", [{"id": "a", "prompt": "2 + 2 = ?", "answer": "4", "split": "train"},
    ...                               {"id": "b", "prompt": "3 + 3 = ?", "answer": "6", "split": "test"}])
    >>> c = cot_vs_direct(t)
    >>> [(e.id, e.label) for e in c.examples]
    [('a/careful', 'careful'), ('a/direct', 'direct'), ('b', 'neutral'), ('b/careful', 'careful'), ('b/direct', 'direct')]
    >>> c.examples[0].prompt
    "2 + 2 = ?\\nLet's think step by step."
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from probes.data.tasks import Example, Task
from probes.errors import TaskError

__all__ = [
    "COT_INSTRUCTION",
    "DIRECT_INSTRUCTION",
    "CONTRAST_KEYS",
    "CONTRASTS",
    "SPLIT_SHARES",
    "hashed_split",
    "with_splits",
    "cot_vs_direct",
    "apply_contrast",
]

#: The chain-of-thought instruction (Kojima et al. 2022, "Large Language Models are Zero-Shot Reasoners").
COT_INSTRUCTION = "Let's think step by step."
#: The answer-directly instruction.
DIRECT_INSTRUCTION = "Answer directly with the final answer only, without any explanation."
#: Keys of a ``[tasks.NAME]`` table that set the recipe (read by :func:`apply_contrast`).
CONTRAST_KEYS = ("contrast", "cot_instruction", "direct_instruction")
#: Shares of the splits :func:`hashed_split` assigns.
SPLIT_SHARES = (("train", 0.5), ("dev", 0.2), ("test", 0.3))


def hashed_split(example_id: str) -> str:
    """The split of a question without one: from the sha256 of its id, in :data:`SPLIT_SHARES`.

    >>> [hashed_split(str(i)) for i in range(6)]
    ['train', 'train', 'test', 'train', 'train', 'test']
    """
    u = int(hashlib.sha256(str(example_id).encode()).hexdigest()[:8], 16) / 16**8
    acc = 0.0
    for name, share in SPLIT_SHARES:
        acc += share
        if u < acc:
            return name
    return SPLIT_SHARES[-1][0]


def with_splits(task: Task) -> Task:
    """``task`` with every example that has no split given :func:`hashed_split` of its id."""
    if all(e.split is not None for e in task.examples):
        return task
    return task.with_examples(
        [e if e.split is not None else replace(e, split=hashed_split(e.id)) for e in task.examples]
    )


def cot_vs_direct(
    task: Task,
    *,
    cot_instruction: str = COT_INSTRUCTION,
    direct_instruction: str = DIRECT_INSTRUCTION,
    fit_split: str = "train",
) -> Task:
    """Each question as a ``careful`` (question + CoT instruction) and a ``direct`` (question +
    answer-directly instruction) prompt, ids ``ID/careful`` and ``ID/direct``; each question
    outside ``fit_split`` also as a ``neutral`` prompt (unchanged, id ``ID``). Splits missing are hashed
    (:func:`with_splits`); a task that already carries labels is an error (the recipe would
    silently replace them)."""
    labelled = sorted({str(e.label) for e in task.examples if e.label is not None})
    if labelled:
        raise TaskError(
            f"Task {task.name!r} already carries labels {labelled}; contrast = 'cot_vs_direct' writes its own "
            "(careful / direct / neutral). Remove the contrast key to use the file's labels, or drop the labels."
        )
    for name, text in (("cot_instruction", cot_instruction), ("direct_instruction", direct_instruction)):
        if not isinstance(text, str) or not text.strip():
            raise TaskError(f"{name} of task {task.name!r} must be non-empty text, got {text!r}.")
    task = with_splits(task)
    out: list[Example] = []
    for e in task.examples:
        if e.split != fit_split:
            out.append(replace(e, label="neutral"))
        meta = tuple(sorted((*e.meta, ("question_id", e.id))))
        for label, text in (("careful", cot_instruction), ("direct", direct_instruction)):
            out.append(replace(e, id=f"{e.id}/{label}", prompt=f"{e.prompt}\n{text}", label=label, meta=meta))
    if not any(e.split == fit_split for e in task.examples):
        raise TaskError(
            f"Task {task.name!r} has no {fit_split!r} questions to fit the contrast on (splits: "
            f"{sorted({str(e.split) for e in task.examples})}). Give some questions split = {fit_split!r}, "
            "or leave split out and let the recipe hash one."
        )
    return task.with_examples(out)


#: Contrast recipes by name (the ``contrast`` key of a ``[tasks.NAME]`` table).
CONTRASTS: dict[str, Callable[..., Task]] = {"cot_vs_direct": cot_vs_direct}


def apply_contrast(task: Task, settings: Mapping[str, Any]) -> Task:
    """``task`` under the recipe ``settings["contrast"]`` (with its instruction settings); the
    task unchanged when no recipe is named."""
    recipe = settings.get("contrast")
    if recipe is None:
        extra = sorted(k for k in CONTRAST_KEYS[1:] if k in settings)
        if extra:
            raise TaskError(
                f"Task {task.name!r} sets {extra} but names no contrast recipe; add contrast = "
                f"{sorted(CONTRASTS)[0]!r} or remove them."
            )
        return task
    if recipe not in CONTRASTS:
        raise TaskError(
            f"Unknown contrast {recipe!r} for task {task.name!r}. Valid: {sorted(CONTRASTS)} "
            "(or leave contrast out and label the prompts in the file)."
        )
    opts = {k: settings[k] for k in CONTRAST_KEYS[1:] if k in settings}
    return CONTRASTS[recipe](task, **opts)
