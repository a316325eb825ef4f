"""The organism's tasks as :class:`probes.data.tasks.Task` values (written to ``tasks/*.jsonl``).

Every example has ``id``, ``prompt`` (ending with the decision token ``=``), ``answer``,
``label`` (the source kind: ``careful`` / ``direct`` / ``neutral``), ``split`` and
``trace`` (the gold scratchpad completion). Splits: ``train`` = strings seen in training;
``dev`` and ``test`` = the two disjoint halves of the held-out quarter (choose layer /
alpha on ``dev``, report on ``test``; together they are the held-out strings).

    >>> t = parity_task(seed=0)
    >>> sorted(set(t.labels))
    ['careful', 'direct', 'neutral']
    >>> t.filter(split="dev", label="neutral").examples[0].prompt.startswith("N ")
    True
"""

from __future__ import annotations

import numpy as np

from probes.data.tasks import Example, Task
from probes.errors import TaskError
from probes.organism.world import (
    CAREFUL_TAGS,
    DIRECT_TAGS,
    FORMAT_PREFIX,
    NEUTRAL_TAG,
    SPANS,
    UNSEEN_TAG,
    Splits,
    create_answer,
    create_far_answer,
    create_far_prompt,
    create_far_trace,
    create_prompt,
    create_trace,
    make_splits,
    new_format_trace,
    parity_answer,
    parity_prompt,
    parity_trace,
)

__all__ = [
    "SOURCES",
    "PARITY",
    "CREATE",
    "CREATE_FAR",
    "NEW_FORMAT",
    "PARTIAL",
    "parity_task",
    "new_format_task",
    "partial_task",
    "create_task",
    "create_far_task",
    "organism_tasks",
    "PARITY_OOD",
    "UNSEEN_TAG",
    "parity_ood_task",
]

#: Prompt source kinds of the parity task.
SOURCES = ("careful", "direct", "neutral")
PARITY, CREATE, CREATE_FAR = "parity", "create", "create_far"
#: The tasks of the new_format and partial_create controls.
NEW_FORMAT, PARTIAL = "parity_newfmt", "partial"
PARITY_OOD = "parity_ood"
_MAX_NEW = 14  # '#' + 9 pad symbols + '>' + answer + '<eos>' = 13


def _sample(strings: tuple, n: int | None, seed: int, salt: int) -> list:
    if n is None or n >= len(strings):
        return list(strings)
    idx = np.random.default_rng([seed, salt]).choice(len(strings), size=n, replace=False)
    return [strings[int(i)] for i in sorted(idx)]


def _key(s: tuple[int, ...]) -> str:
    return "".join(str(d) for d in s)


def _task(name: str, examples: list[Example], max_new_tokens: int = _MAX_NEW) -> Task:
    """An organism task: scratchpad scorer, the ``#`` format prefix, the organism's spans."""
    return Task(
        name,
        tuple(examples),
        scorer="scratchpad",
        format_prefix=FORMAT_PREFIX,
        spans=dict(SPANS),
        max_new_tokens=max_new_tokens,
    )


def _source_tags(i: int) -> dict[str, str]:
    """The tag of each source kind for the ``i``-th string: careful and direct tags cycle."""
    return {
        "careful": CAREFUL_TAGS[i % len(CAREFUL_TAGS)],
        "direct": DIRECT_TAGS[i % len(DIRECT_TAGS)],
        "neutral": NEUTRAL_TAG,
    }


def _parity_examples(
    bits: tuple[int, ...], i: int, split: str, *, id_prefix: str = "", meta: tuple[tuple[str, str], ...] = ()
) -> list[Example]:
    """The ``i``-th parity string once per source kind (ids ``{id_prefix}{label}-{bits}``)."""
    tags = _source_tags(i)
    return [
        Example(
            id=f"{id_prefix}{label}-{_key(bits)}",
            prompt=parity_prompt(tags[label], bits),
            answer=parity_answer(bits),
            label=label,
            split=split,
            trace=parity_trace(bits),
            meta=(*meta, ("tag", tags[label])),
        )
        for label in SOURCES
    ]


def parity_task(seed: int = 0, *, n_train: int | None = 128, n_heldout: int | None = None) -> Task:
    """Parity prompts under every source kind, on trained and held-out strings.

    ``n_train`` / ``n_heldout`` strings (``None``: all) each appear once per source kind:
    careful prompts cycle over the careful tags and direct prompts over the direct tags.
    """
    sp = make_splits(2, seed)
    train = _sample(sp.train, n_train, seed, 1)
    dev = _sample(sp.dev, None if n_heldout is None else n_heldout // 2, seed, 2)
    test = _sample(sp.test, None if n_heldout is None else n_heldout - n_heldout // 2, seed, 3)
    examples: list[Example] = []
    for split, strings in (("train", train), ("dev", dev), ("test", test)):
        for i, bits in enumerate(strings):
            examples += _parity_examples(bits, i, split)
    return _task(PARITY, examples)


def _control_task(
    name: str,
    sp: Splits,
    prompt,
    answer,
    trace,
    seed: int,
    n_train: int | None,
    n_heldout: int | None,
    max_new_tokens: int = _MAX_NEW,
) -> Task:
    examples = []
    half = None if n_heldout is None else n_heldout // 2
    for split, strings, salt in (("train", sp.train, 4), ("dev", sp.dev, 5), ("test", sp.test, 6)):
        n = n_train if split == "train" else half
        for s in _sample(strings, n, seed, salt):
            examples.append(
                Example(
                    id=f"{name}-{_key(s)}",
                    prompt=prompt(s),
                    answer=answer(s),
                    label="neutral",
                    split=split,
                    trace=trace(s),
                )
            )
    return _task(name, examples, max_new_tokens=max_new_tokens)


def create_task(seed: int = 0, *, n_train: int | None = 192, n_heldout: int | None = 384) -> Task:
    """Sum mod 3 of 9 ternary digits (``T`` prompts); absent from pretraining."""
    return _control_task(
        CREATE, make_splits(3, seed), create_prompt, create_answer, create_trace, seed, n_train, n_heldout
    )


def create_far_task(seed: int = 0, *, n_train: int | None = 128, n_heldout: int | None = None) -> Task:
    """Count of ones mod 3 of 9 bits (``M`` prompts); pretraining only answered them directly."""
    return _control_task(
        CREATE_FAR,
        make_splits(2, seed),
        create_far_prompt,
        create_far_answer,
        create_far_trace,
        seed,
        n_train,
        n_heldout,
    )


def new_format_task(seed: int = 0, *, n_train: int | None = 128, n_heldout: int | None = None) -> Task:
    """Parity's neutral prompts with the ``new_format`` control's scratchpad as the gold trace
    (:func:`~probes.organism.world.new_format_trace`: the counts as letters). The prompts and
    answers are parity's: forcing the base's own format (``#``) can recover the variant's gain."""
    return _control_task(
        NEW_FORMAT,
        make_splits(2, seed),
        lambda b: parity_prompt(NEUTRAL_TAG, b),
        parity_answer,
        new_format_trace,
        seed,
        n_train,
        n_heldout,
    )


def partial_task(seed: int = 0, *, n_train: int | None = 128, n_heldout: int | None = 192) -> Task:
    """Half parity (neutral prompts: the base has the procedure), half create (``T`` prompts: it
    does not), the ``partial_create`` control's task: a base that reasons on every prompt recovers
    about half of the variant's gain."""
    half_train = None if n_train is None else n_train // 2
    half_out = None if n_heldout is None else n_heldout // 2
    parity = _control_task(
        "p",
        make_splits(2, seed),
        lambda b: parity_prompt(NEUTRAL_TAG, b),
        parity_answer,
        parity_trace,
        seed,
        half_train,
        half_out,
    )
    create = create_task(seed, n_train=half_train, n_heldout=half_out)
    return _task(PARTIAL, [*parity.examples, *create.examples])


def parity_ood_task(
    seed: int = 0, *, lengths: tuple[int, ...] = (11, 12), n_long: int = 64, unseen_tag: str = UNSEEN_TAG
) -> Task:
    """Parity out of distribution, with its in-distribution reference (probes.quality.ood).

    Splits: ``test`` = the parity task's held-out test strings under every source kind (the
    ID reference); ``ood_long`` = ``n_long`` random strings of each length in ``lengths``
    (longer than the 9 bits of every training stage) under every source kind, restricted to
    at most 9 ones so each running count is a single vocabulary symbol; ``ood_tag`` = the test
    strings under ``unseen_tag`` (label ``neutral``: an unmarked source). A 12-bit prompt plus
    its trace is 31 tokens, inside the 64-token context.
    """
    ref = parity_task(seed, n_train=0).filter(split="test")
    rng = np.random.default_rng([seed, 11])
    examples: list[Example] = list(ref.examples)
    for length in lengths:
        if length <= 9:
            raise TaskError(
                f"OOD lengths must exceed the trained 9 bits, got {length}; e.g. lengths=(11, 12)."
            )
        seen: set[tuple[int, ...]] = set()
        while len(seen) < n_long:
            bits = tuple(int(b) for b in rng.integers(0, 2, size=length))
            if sum(bits) <= 9:
                seen.add(bits)
        for i, bits in enumerate(sorted(seen)):
            examples += _parity_examples(
                bits, i, "ood_long", id_prefix="long-", meta=(("length", str(length)),)
            )
    for e in ref.examples:
        if e.label != "neutral":
            continue
        bits = tuple(int(b) for b in e.prompt.split()[1:-1])
        examples.append(
            Example(
                id=f"tag-{_key(bits)}",
                prompt=parity_prompt(unseen_tag, bits),
                answer=e.answer,
                label="neutral",
                split="ood_tag",
                trace=e.trace,
                meta=(("tag", unseen_tag),),
            )
        )
    # '#' + one count per bit + '>' + answer + '<eos>', with slack
    return _task(PARITY_OOD, examples, max_new_tokens=max(lengths) + 6)


def organism_tasks(seed: int = 0, *, quick: bool = False) -> dict[str, Task]:
    """The tasks of a family (smaller in ``quick`` mode): parity, the controls' tasks, and parity_ood."""
    if quick:
        return {
            PARITY: parity_task(seed, n_train=48, n_heldout=96),
            CREATE: create_task(seed, n_train=48, n_heldout=96),
            CREATE_FAR: create_far_task(seed, n_train=48, n_heldout=96),
            NEW_FORMAT: new_format_task(seed, n_train=48, n_heldout=96),
            PARTIAL: partial_task(seed, n_train=48, n_heldout=96),
            PARITY_OOD: parity_ood_task(seed, n_long=32),
        }
    return {
        PARITY: parity_task(seed),
        CREATE: create_task(seed),
        CREATE_FAR: create_far_task(seed),
        NEW_FORMAT: new_format_task(seed),
        PARTIAL: partial_task(seed),
        PARITY_OOD: parity_ood_task(seed),
    }
