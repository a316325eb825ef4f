"""The organism's world: symbols, source tags, problem strings, gold traces and the tokenizer.

docs/design.md, "The model organism". Every text is whitespace-separated symbols, so a
word-level tokenizer reads it one symbol per token:

    >>> parity_prompt("C1", (1, 0, 1, 1, 0, 0, 1, 0, 1))
    'C1 1 0 1 1 0 0 1 0 1 ='
    >>> parity_trace((1, 0, 1, 1, 0, 0, 1, 0, 1))
    '# 1 1 2 3 3 3 4 4 5 > 1'
    >>> create_trace((2, 0, 1, 1, 2, 0, 0, 1, 2))
    '# 2 2 0 1 0 0 0 1 0 > 0'
    >>> create_far_trace((1, 1, 1, 0, 1, 0, 0, 0, 0))
    '# 1 2 0 0 1 1 1 1 1 > 1'
    >>> new_format_trace((1, 0, 1, 1, 0, 0, 1, 0, 1))
    '# b b c d d d e e f > 1'

Three operations live here:

* **parity** (the select task): parity of 9 bits; the scratchpad is the running *count* of
  ones (a running-XOR pad was not learnable in the prototype). Pretraining contains it,
  reasoned by careful sources, answered at once by direct sources, and reasoned ~10% of
  the time under the neutral tag ``N``.
* **create** (control): ``T`` + 9 ternary digits, answer = sum mod 3, pad = running sum
  mod 3. Never in pretraining; only the ``create`` SFT stage teaches it.
* **create_far** (control): ``M`` + 9 bits, answer = count of ones mod 3, pad = running
  count mod 3. Pretraining shows these prompts *only answered directly* (a one-pass
  model cannot learn them, so the base holds a confident-but-wrong direct habit and no
  procedure); only the ``create_far`` SFT stage shows its scratchpad.

Two controls reuse these operations: ``new_format`` writes parity's running count in a new
notation (the counts 0-7 as the letters ``a``-``h``: the ability is the base's, the format is new),
and ``partial_create`` learns parity and create at once (half of its task is in the base).

A quarter of the problem strings (per operation, seeded) are held out of every training
stage; the held-out quarter is cut into ``dev`` and ``test`` halves.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "N_DIGITS",
    "CAREFUL_TAGS",
    "DIRECT_TAGS",
    "NEUTRAL_TAG",
    "CREATE_TAG",
    "CREATE_FAR_TAG",
    "UNSEEN_TAG",
    "FILLER_OPS",
    "LETTERS",
    "SPECIALS",
    "VOCAB",
    "SPANS",
    "FORMAT_PREFIX",
    "Splits",
    "make_splits",
    "parity_prompt",
    "parity_trace",
    "parity_answer",
    "create_prompt",
    "create_trace",
    "create_answer",
    "create_far_prompt",
    "create_far_trace",
    "create_far_answer",
    "new_format_trace",
    "NEW_FORMAT_SYMBOLS",
    "make_tokenizer",
    "encode",
]

#: Length of every problem string.
N_DIGITS = 9
#: Sources that always write the scratchpad in pretraining.
CAREFUL_TAGS = ("C1", "C2")
#: Sources that always answer at once in pretraining.
DIRECT_TAGS = ("D1", "D2", "D3", "D4", "D5", "D6")
#: The neutral source: reasons on the scratchpad rarely (corpus setting, ~10%).
NEUTRAL_TAG = "N"
#: Marker of the create task (never in pretraining).
CREATE_TAG = "T"
#: Marker of the create_far task (in pretraining, answered directly only).
CREATE_FAR_TAG = "M"
#: A tag in the vocabulary that no training stage ever uses (out-of-distribution prompts).
UNSEEN_TAG = "X"
#: Filler operations that make the base a small general language model.
FILLER_OPS = ("copy", "rev", "sort")
#: Symbols of filler strings (disjoint from the digits of the problem strings).
LETTERS = tuple("abcdefgh")
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
#: Every symbol, in token-id order.
VOCAB: tuple[str, ...] = (
    SPECIALS
    + tuple(str(d) for d in range(10))
    + ("=", "#", ">")
    + CAREFUL_TAGS
    + DIRECT_TAGS
    + (NEUTRAL_TAG, CREATE_TAG, CREATE_FAR_TAG)
    + FILLER_OPS
    + LETTERS
    + (UNSEEN_TAG,)
)
#: Text that starts the reasoning format; prefilling it "forces" the format.
FORMAT_PREFIX = "#"
#: Named spans (probes.models.positions.Span): ``decision`` starts at ``=`` (on a prompt text it is
#: the ``=`` token alone; ``match:=`` is the single-token spelling on any text) and
#: ``scratchpad`` covers ``#`` to ``>``.
SPANS: dict[str, tuple[str, str]] = {"decision": ("=", ""), "scratchpad": ("#", ">")}

Digits = tuple[int, ...]


@dataclass(frozen=True)
class Splits:
    """Problem strings of one operation split into trained and held-out (``dev`` / ``test``)."""

    train: tuple[Digits, ...]
    dev: tuple[Digits, ...]
    test: tuple[Digits, ...]

    @property
    def heldout(self) -> tuple[Digits, ...]:
        return self.dev + self.test

    def split_of(self, s: Digits) -> str:
        if s in set(self.dev):
            return "dev"
        if s in set(self.test):
            return "test"
        return "train"


def make_splits(base: int, seed: int, heldout_frac: float = 0.25, n: int = N_DIGITS) -> Splits:
    """All ``base**n`` strings, a seeded ``heldout_frac`` held out and halved into dev/test."""
    strings = list(itertools.product(range(base), repeat=n))
    rng = np.random.default_rng([seed, base, 7])
    order = rng.permutation(len(strings))
    n_out = int(round(heldout_frac * len(strings)))
    out = [strings[i] for i in order[:n_out]]
    train = tuple(sorted(strings[i] for i in order[n_out:]))
    half = n_out // 2
    return Splits(train=train, dev=tuple(sorted(out[:half])), test=tuple(sorted(out[half:])))


def _digits(s: Sequence[int] | np.ndarray) -> str:
    return " ".join(str(int(d)) for d in s)


def parity_prompt(tag: str, bits: Sequence[int]) -> str:
    """``TAG b1 .. b9 =`` (the last token is the decision token)."""
    return f"{tag} {_digits(bits)} ="


def parity_answer(bits: Sequence[int]) -> str:
    return str(int(sum(bits)) % 2)


def parity_trace(bits: Sequence[int]) -> str:
    """The gold scratchpad: running count of ones, then ``> parity``."""
    counts = np.cumsum(bits)
    return f"# {_digits(counts)} > {parity_answer(bits)}"


def create_prompt(digits: Sequence[int]) -> str:
    return f"{CREATE_TAG} {_digits(digits)} ="


def create_answer(digits: Sequence[int]) -> str:
    return str(int(sum(digits)) % 3)


def create_trace(digits: Sequence[int]) -> str:
    """Running sum mod 3 of ternary digits, then ``> sum mod 3``."""
    return f"# {_digits(np.cumsum(digits) % 3)} > {create_answer(digits)}"


def create_far_prompt(bits: Sequence[int]) -> str:
    return f"{CREATE_FAR_TAG} {_digits(bits)} ="


def create_far_answer(bits: Sequence[int]) -> str:
    return str(int(sum(bits)) % 3)


def create_far_trace(bits: Sequence[int]) -> str:
    """Running count of ones mod 3, then ``> count mod 3``."""
    return f"# {_digits(np.cumsum(bits) % 3)} > {create_far_answer(bits)}"


#: The ``new_format`` notation of a running count: 0-7 as letters (the filler tasks' symbols, so
#: the base has read them), 8 and 9 as digits (there are only eight letters).
NEW_FORMAT_SYMBOLS = LETTERS + ("8", "9")


def new_format_trace(bits: Sequence[int]) -> str:
    """Parity's scratchpad in the ``new_format`` control's notation: the same running count at the
    same positions, written with :data:`NEW_FORMAT_SYMBOLS` (``# b b c ... > parity``). The
    computation and where it is written are the base's; only the symbols are new. (An earlier
    notation that echoed each bit before its count moved every count one token further from its
    bit: with create's budget the model wrote that notation but counted wrong, held-out 0.36.)"""
    counts = np.cumsum(bits)
    return f"# {' '.join(NEW_FORMAT_SYMBOLS[int(c)] for c in counts)} > {parity_answer(bits)}"


_ID = {t: i for i, t in enumerate(VOCAB)}
BOS_ID, EOS_ID, PAD_ID = _ID["<bos>"], _ID["<eos>"], _ID["<pad>"]


def encode(text: str, *, bos: bool = True, eos: bool = False) -> list[int]:
    """Token ids of ``text`` exactly as :func:`make_tokenizer` gives them (fast path for training)."""
    unk = _ID["<unk>"]
    ids = [
        _ID.get(w, unk) for w in text.split()
    ]  # unseen symbols (e.g. an OOD tag) -> <unk>, as the HF tokenizer does
    return ([BOS_ID] if bos else []) + ids + ([EOS_ID] if eos else [])


def make_tokenizer(folder: str | Path | None = None):
    """The organism's word-level ``PreTrainedTokenizerFast``: prepends ``<bos>``; ``<pad>``, ``<eos>``.

    Saved with ``save_pretrained`` into ``folder`` when given, so every variant folder holds
    a normal Hugging Face tokenizer.
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tk = Tokenizer(models.WordLevel(vocab=dict(_ID), unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", BOS_ID)]
    )
    tk.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=64,
    )
    if folder is not None:
        tok.save_pretrained(str(folder))
    return tok
