"""The base corpus and the post-training datasets of the organism.

docs/design.md, "The model organism": half the base corpus is parity under a source tag
(careful sources always reason on the scratchpad, direct sources answer at once, the
neutral tag ``N`` reasons ~10% of the time), a few documents are ``create_far`` prompts
answered directly, the rest are filler (copy / reverse / sort of letter strings). Only
*trained* strings appear; the held-out quarter never does.

    >>> import numpy as np
    >>> from probes.organism.world import make_splits
    >>> docs = pretraining_docs(CorpusConfig(), make_splits(2, 0), make_splits(2, 0), 4, np.random.default_rng(0))
    >>> len(docs)
    4
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probes.organism.world import (
    CAREFUL_TAGS,
    DIRECT_TAGS,
    FILLER_OPS,
    LETTERS,
    NEUTRAL_TAG,
    Splits,
    create_far_answer,
    create_far_prompt,
    create_far_trace,
    create_prompt,
    create_trace,
    new_format_trace,
    parity_answer,
    parity_prompt,
    parity_trace,
)

__all__ = [
    "CorpusConfig",
    "pretraining_docs",
    "sft_records",
    "filler_records",
    "preference_records",
    "noisy_preferences",
    "create_records",
    "create_far_records",
    "new_format_records",
    "partial_records",
]


@dataclass(frozen=True)
class CorpusConfig:
    """Mixture of the base corpus (fractions of documents).

    Attributes:
        parity_frac: share of parity documents (the rest is create_far-direct and filler).
        create_far_frac: share of ``M`` documents, always answered directly.
        careful_frac, direct_frac: shares of parity documents under careful / direct tags;
            the remainder carry the neutral tag.
        neutral_pad_rate: how often a neutral document reasons on the scratchpad.
    """

    parity_frac: float = 0.6
    create_far_frac: float = 0.05
    careful_frac: float = 0.5
    direct_frac: float = 0.3
    neutral_pad_rate: float = 0.10


def _pick(rng: np.random.Generator, strings: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    return strings[int(rng.integers(len(strings)))]


def _filler(rng: np.random.Generator) -> str:
    op = FILLER_OPS[int(rng.integers(len(FILLER_OPS)))]
    n = int(rng.integers(3, 9))
    s = [LETTERS[int(i)] for i in rng.integers(len(LETTERS), size=n)]
    out = {"copy": s, "rev": s[::-1], "sort": sorted(s)}[op]
    return f"{op} {' '.join(s)} = {' '.join(out)}"


def pretraining_docs(
    cfg: CorpusConfig, parity: Splits, create_far: Splits, n: int, rng: np.random.Generator
) -> list[str]:
    """``n`` base-corpus documents (text without ``<bos>``/``<eos>``) drawn from ``rng``."""
    docs: list[str] = []
    for _ in range(n):
        u = rng.random()
        if u < cfg.parity_frac:
            bits = _pick(rng, parity.train)
            v = rng.random()
            if v < cfg.careful_frac:
                tag, pad = CAREFUL_TAGS[int(rng.integers(len(CAREFUL_TAGS)))], True
            elif v < cfg.careful_frac + cfg.direct_frac:
                tag, pad = DIRECT_TAGS[int(rng.integers(len(DIRECT_TAGS)))], False
            else:
                tag, pad = NEUTRAL_TAG, bool(rng.random() < cfg.neutral_pad_rate)
            tail = parity_trace(bits) if pad else parity_answer(bits)
            docs.append(f"{parity_prompt(tag, bits)} {tail}")
        elif u < cfg.parity_frac + cfg.create_far_frac:
            bits = _pick(rng, create_far.train)
            docs.append(f"{create_far_prompt(bits)} {create_far_answer(bits)}")
        else:
            docs.append(_filler(rng))
    return docs


def filler_records(n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """``n`` filler documents (copy / reverse / sort) as SFT records: the ``unrelated`` control's
    data, which says nothing about parity."""
    out = []
    for _ in range(n):
        prompt, completion = _filler(rng).split(" = ")
        out.append({"prompt": prompt + " =", "completion": " " + completion})
    return out


def sft_records(parity: Splits, *, trace: bool) -> list[dict[str, str]]:
    """Neutral prompts on trained strings with scratchpad traces (``trace=True``) or answers only."""
    return [
        {
            "prompt": parity_prompt(NEUTRAL_TAG, b),
            "completion": " " + (parity_trace(b) if trace else parity_answer(b)),
        }
        for b in parity.train
    ]


def preference_records(parity: Splits) -> list[dict[str, str]]:
    """DPO pairs on neutral prompts: chosen = scratchpad completion, rejected = direct completion.

    The rejected completion carries the *correct* answer, so the preference is about the
    mode alone (docs/design.md: DPO selects the scratchpad mode).
    """
    return [
        {
            "prompt": parity_prompt(NEUTRAL_TAG, b),
            "chosen": " " + parity_trace(b),
            "rejected": " " + parity_answer(b),
        }
        for b in parity.train
    ]


def noisy_preferences(
    records: list[dict[str, str]], frac: float, rng: np.random.Generator
) -> tuple[list[dict[str, str]], int]:
    """Replace a ``frac`` share of pairs by noise; returns (pairs, number replaced).

    A replaced pair is, with probability 1/2, *flipped* (chosen and rejected swapped) and
    otherwise *random* (chosen and rejected drawn from the pair's two completions by a fair
    coin, so half of those are flipped too): 75% of replaced pairs prefer the wrong mode.
    """
    out = [dict(r) for r in records]
    k = int(round(frac * len(out)))
    for i in rng.choice(len(out), size=k, replace=False):
        r = out[int(i)]
        if rng.random() < 0.5 or rng.random() < 0.5:
            r["chosen"], r["rejected"] = r["rejected"], r["chosen"]
    return out, k


def create_records(create: Splits, n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """SFT records that teach the create operation (``T`` prompts, running sum mod 3)."""
    idx = rng.choice(len(create.train), size=min(n, len(create.train)), replace=False)
    return [
        {
            "prompt": create_prompt(create.train[int(i)]),
            "completion": " " + create_trace(create.train[int(i)]),
        }
        for i in idx
    ]


def new_format_records(parity: Splits) -> list[dict[str, str]]:
    """The ``new_format`` control's SFT records: neutral parity prompts with the scratchpad in its
    new notation (the running count written as letters, see world.new_format_trace)."""
    return [
        {"prompt": parity_prompt(NEUTRAL_TAG, b), "completion": " " + new_format_trace(b)}
        for b in parity.train
    ]


def partial_records(parity: Splits, create: Splits, n: int, rng: np.random.Generator) -> list[dict[str, str]]:
    """The ``partial_create`` control's SFT records: parity's neutral scratchpad records and ``n``
    create records, shuffled together (seeded)."""
    records = sft_records(parity, trace=True) + create_records(create, n, rng)
    order = rng.permutation(len(records))
    return [records[int(i)] for i in order]


def create_far_records(create_far: Splits) -> list[dict[str, str]]:
    """SFT records that teach the create_far operation with its scratchpad (``M`` prompts)."""
    return [
        {"prompt": create_far_prompt(b), "completion": " " + create_far_trace(b)} for b in create_far.train
    ]
