"""probes: the instruments that READ models.

Families, hook sites, positions, tasks, the activation store, SAEs and crosscoders,
weight geometry, linear probes, decoding measures, statistics, the model organism and
plot functions. Nothing here writes to a model's weights or imports ``steering``.
"""

from probes.checkpoint_stream import (
    Checkpoint,
    CheckpointError,
    CheckpointPairing,
    ParamRole,
    classify_param,
    open_checkpoint,
    pair_checkpoints,
)
from probes.errors import CacheError, ElicitError, FamilyError, HookError, PositionError, TaskError
from probes.family import ModelFamily, VariantSpec, load_family, resolve_checkpoint
from probes.hooks import SITES, HookSite, parse_hooks, validate_hooks
from probes.organism import evaluate_family, organism_family, train_family
from probes.positions import All, Index, Last, Match, Position, Span, parse_position, parse_positions
from probes.tasks import Example, Score, Task, parse_gsm8k_answer, register_scorer
from probes.weights import (
    SVDSettings,
    WeightDiffError,
    load_directions,
    summarize_weight_diff,
    update_cosine,
    update_cosine_paths,
    weight_diff,
    weight_diff_paths,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "ElicitError", "FamilyError", "HookError", "PositionError", "TaskError", "CacheError",
    # families
    "ModelFamily", "VariantSpec", "load_family", "resolve_checkpoint",
    # the model organism
    "organism_family", "train_family", "evaluate_family",
    # hooks and positions
    "SITES", "HookSite", "parse_hooks", "validate_hooks",
    "Position", "Last", "All", "Index", "Match", "Span", "parse_position", "parse_positions",
    # tasks
    "Example", "Score", "Task", "parse_gsm8k_answer", "register_scorer",
    # weight geometry
    "Checkpoint", "CheckpointError", "CheckpointPairing", "ParamRole", "classify_param", "open_checkpoint",
    "pair_checkpoints", "SVDSettings", "WeightDiffError", "load_directions", "summarize_weight_diff",
    "update_cosine", "update_cosine_paths", "weight_diff", "weight_diff_paths",
]

from probes.activations import ActivationSet, collect_activations  # noqa: E402

__all__ += ["ActivationSet", "collect_activations"]

from probes.crosscoder import (  # noqa: E402
    Crosscoder,
    crosscoder_latents,
    crosscoder_summary,
    fit_crosscoder,
    latent_scaling,
    top_latent_prompts,
    train_crosscoder,
)
from probes.sae import (  # noqa: E402
    SAEError,
    decoder_direction,
    fit_sae,
    latent_shifts,
    load_sae,
    sae_transfer,
    train_sae,
)
from probes.stats import bootstrap_ci, mean_ci  # noqa: E402

__all__ += [
    "SAEError", "train_sae", "fit_sae", "load_sae", "sae_transfer", "latent_shifts", "decoder_direction",
    "Crosscoder", "train_crosscoder", "fit_crosscoder", "crosscoder_latents", "crosscoder_summary",
    "latent_scaling", "top_latent_prompts", "bootstrap_ci", "mean_ci",
]

from probes.cot_decoding import cot_decode, cot_summary  # noqa: E402
from probes.early_answering import answer_probe, early_answers, early_summary  # noqa: E402
from probes.information_gain import StepFormat, ig_profile, ig_totals, information_gain  # noqa: E402
from probes.ood import ood_table  # noqa: E402
from probes.passk import crossover_k, pass_at_k, passk_curve  # noqa: E402
from probes.sampling import sample_task  # noqa: E402

__all__ += [
    "sample_task", "pass_at_k", "passk_curve", "crossover_k", "cot_decode", "cot_summary", "StepFormat",
    "information_gain", "ig_totals", "ig_profile", "early_answers", "early_summary", "answer_probe", "ood_table",
]
