"""The model organism: a tiny family trained from scratch on CPU, with planted ground truth.

docs/design.md, "The model organism". The base knows how to reason on a scratchpad (careful
sources always do) but rarely chooses to under the neutral tag; post-training (sft, dpo,
rl, dpo_conf, dpo_noisy) can only *select* that mode. The ``create`` and ``create_far``
controls must *create* an ability the base lacks. ``sft_answers`` measures memorisation
(trained vs held-out strings). ``sft_long`` selects with ``create``'s optimisation budget (an
update as large as a create control's), ``unrelated`` is SFT on filler only (no gain).
``new_format`` learns parity's count in a new scratchpad notation (select: the format is new, the
ability is not); ``partial_create`` learns parity and create together (half of its gain is in the
base: partial recovery, inconclusive).

    >>> from probes.organism import train_family, evaluate_family   # doctest: +SKIP
    >>> folder = train_family("organism-seed0", seed=0)              # doctest: +SKIP
    >>> fam = load_family(folder)                                    # doctest: +SKIP
"""

from probes.errors import OrganismError
from probes.organism.evaluate import EVAL_COLUMNS, evaluate_family, evaluate_model, format_table, generate
from probes.organism.tasks import SOURCES, create_far_task, create_task, organism_tasks, parity_task
from probes.organism.train import VARIANTS, Recipe, default_cache, organism_family, recipe, train_family
from probes.organism.world import FORMAT_PREFIX, SPANS, VOCAB, make_splits, make_tokenizer

__all__ = [
    "train_family",
    "evaluate_family",
    "organism_family",
    "default_cache",
    "OrganismError",
    "Recipe",
    "recipe",
    "VARIANTS",
    "EVAL_COLUMNS",
    "evaluate_model",
    "format_table",
    "generate",
    "SOURCES",
    "parity_task",
    "create_task",
    "create_far_task",
    "organism_tasks",
    "FORMAT_PREFIX",
    "SPANS",
    "VOCAB",
    "make_splits",
    "make_tokenizer",
]
