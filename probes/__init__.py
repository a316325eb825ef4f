"""probes: the instruments that READ models.

Families, hook sites, positions, tasks, the activation store, SAEs and crosscoders,
weight geometry, linear probes, decoding measures, statistics, the model organism and
plot functions. Nothing here writes to a model's weights or imports ``steering``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from probes.errors import CacheError, ElicitError, FamilyError, HookError, PositionError, TaskError
from probes.family import ModelFamily, VariantSpec, load_family, resolve_checkpoint
from probes.hooks import SITES, HookSite, parse_hooks, validate_hooks
from probes.positions import All, Index, Last, Match, Position, Span, parse_position, parse_positions
from probes.tasks import Example, Score, Task, parse_gsm8k_answer, register_scorer

__version__ = "0.1.0"

# Everything else loads on first use (PEP 562): `import probes` stays cheap for the CLI, the
# organism's worker processes and notebooks, and scipy / sae_lens / pandas load only when needed.
_LAZY: dict[str, str] = {
    "Checkpoint": "probes.checkpoint_stream",
    "CheckpointError": "probes.checkpoint_stream",
    "CheckpointPairing": "probes.checkpoint_stream",
    "ParamRole": "probes.checkpoint_stream",
    "classify_param": "probes.checkpoint_stream",
    "open_checkpoint": "probes.checkpoint_stream",
    "pair_checkpoints": "probes.checkpoint_stream",
    "evaluate_family": "probes.organism",
    "organism_family": "probes.organism",
    "train_family": "probes.organism",
    "SVDSettings": "probes.weights",
    "WeightDiffError": "probes.weights",
    "load_directions": "probes.weights",
    "summarize_weight_diff": "probes.weights",
    "update_cosine": "probes.weights",
    "update_cosine_paths": "probes.weights",
    "weight_diff": "probes.weights",
    "weight_diff_paths": "probes.weights",
    "ActivationSet": "probes.activations",
    "collect_activations": "probes.activations",
    "Crosscoder": "probes.crosscoder",
    "crosscoder_latents": "probes.crosscoder",
    "crosscoder_summary": "probes.crosscoder",
    "fit_crosscoder": "probes.crosscoder",
    "latent_scaling": "probes.crosscoder",
    "top_latent_prompts": "probes.crosscoder",
    "train_crosscoder": "probes.crosscoder",
    "SAEError": "probes.sae",
    "decoder_direction": "probes.sae",
    "fit_sae": "probes.sae",
    "latent_shifts": "probes.sae",
    "load_sae": "probes.sae",
    "sae_transfer": "probes.sae",
    "train_sae": "probes.sae",
    "bootstrap_ci": "probes.stats",
    "mean_ci": "probes.stats",
    "cot_decode": "probes.cot_decoding",
    "cot_summary": "probes.cot_decoding",
    "answer_probe": "probes.early_answering",
    "early_answers": "probes.early_answering",
    "early_summary": "probes.early_answering",
    "StepFormat": "probes.information_gain",
    "ig_profile": "probes.information_gain",
    "ig_totals": "probes.information_gain",
    "information_gain": "probes.information_gain",
    "ood_table": "probes.ood",
    "crossover_k": "probes.passk",
    "pass_at_k": "probes.passk",
    "passk_curve": "probes.passk",
    "sample_task": "probes.sampling",
}

if TYPE_CHECKING:
    from probes.activations import ActivationSet, collect_activations
    from probes.checkpoint_stream import (
        Checkpoint,
        CheckpointError,
        CheckpointPairing,
        ParamRole,
        classify_param,
        open_checkpoint,
        pair_checkpoints,
    )
    from probes.cot_decoding import cot_decode, cot_summary
    from probes.crosscoder import (
        Crosscoder,
        crosscoder_latents,
        crosscoder_summary,
        fit_crosscoder,
        latent_scaling,
        top_latent_prompts,
        train_crosscoder,
    )
    from probes.early_answering import answer_probe, early_answers, early_summary
    from probes.information_gain import StepFormat, ig_profile, ig_totals, information_gain
    from probes.ood import ood_table
    from probes.organism import evaluate_family, organism_family, train_family
    from probes.passk import crossover_k, pass_at_k, passk_curve
    from probes.sae import (
        SAEError,
        decoder_direction,
        fit_sae,
        latent_shifts,
        load_sae,
        sae_transfer,
        train_sae,
    )
    from probes.sampling import sample_task
    from probes.stats import bootstrap_ci, mean_ci
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

__all__ = [
    "__version__",
    "ElicitError",
    "FamilyError",
    "HookError",
    "PositionError",
    "TaskError",
    "CacheError",
    "ModelFamily",
    "VariantSpec",
    "load_family",
    "resolve_checkpoint",
    "organism_family",
    "train_family",
    "evaluate_family",
    "SITES",
    "HookSite",
    "parse_hooks",
    "validate_hooks",
    "Position",
    "Last",
    "All",
    "Index",
    "Match",
    "Span",
    "parse_position",
    "parse_positions",
    "Example",
    "Score",
    "Task",
    "parse_gsm8k_answer",
    "register_scorer",
    "Checkpoint",
    "CheckpointError",
    "CheckpointPairing",
    "ParamRole",
    "classify_param",
    "open_checkpoint",
    "pair_checkpoints",
    "SVDSettings",
    "WeightDiffError",
    "load_directions",
    "summarize_weight_diff",
    "update_cosine",
    "update_cosine_paths",
    "weight_diff",
    "weight_diff_paths",
    "ActivationSet",
    "collect_activations",
    "SAEError",
    "train_sae",
    "fit_sae",
    "load_sae",
    "sae_transfer",
    "latent_shifts",
    "decoder_direction",
    "Crosscoder",
    "train_crosscoder",
    "fit_crosscoder",
    "crosscoder_latents",
    "crosscoder_summary",
    "latent_scaling",
    "top_latent_prompts",
    "bootstrap_ci",
    "mean_ci",
    "sample_task",
    "pass_at_k",
    "passk_curve",
    "crossover_k",
    "cot_decode",
    "cot_summary",
    "StepFormat",
    "information_gain",
    "ig_totals",
    "ig_profile",
    "early_answers",
    "early_summary",
    "answer_probe",
    "ood_table",
]

def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probes' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
