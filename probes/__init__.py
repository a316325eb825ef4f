"""probes: the instruments that READ models.

Families, hook sites, positions, tasks, the activation store, SAEs and crosscoders,
weight geometry, linear probes, decoding measures, statistics, the model organism and
plot functions. Nothing here writes to a model's weights or imports ``steering``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from probes.data.tasks import Example, Score, Task, parse_gsm8k_answer, register_scorer
from probes.errors import CacheError, ElicitError, FamilyError, HookError, PositionError, TaskError
from probes.models.family import ModelFamily, VariantSpec, load_family, resolve_checkpoint
from probes.models.hooks import SITES, HookSite, parse_hooks, validate_hooks
from probes.models.positions import All, Index, Last, Match, Position, Span, parse_position, parse_positions
from probes.version import __version__

# Everything else loads on first use (PEP 562): `import probes` stays cheap for the CLI, the
# organism's worker processes and notebooks, and scipy / sae_lens / pandas load only when needed.
_LAZY: dict[str, str] = {
    "Checkpoint": "probes.models.checkpoint",
    "CheckpointError": "probes.models.checkpoint",
    "CheckpointPairing": "probes.models.checkpoint",
    "ParamRole": "probes.models.checkpoint",
    "classify_param": "probes.models.checkpoint",
    "open_checkpoint": "probes.models.checkpoint",
    "pair_checkpoints": "probes.models.checkpoint",
    "evaluate_family": "probes.organism",
    "organism_family": "probes.organism",
    "train_family": "probes.organism",
    "SVDSettings": "probes.weights.measures",
    "WeightDiffError": "probes.weights.measures",
    "load_directions": "probes.weights.alignment",
    "summarize_weight_diff": "probes.weights.geometry",
    "update_cosine": "probes.weights.geometry",
    "update_cosine_paths": "probes.weights.geometry",
    "weight_diff": "probes.weights.geometry",
    "weight_diff_paths": "probes.weights.geometry",
    "ActivationSet": "probes.data.activations",
    "collect_activations": "probes.data.activations",
    "Crosscoder": "probes.dictionaries.crosscoder",
    "crosscoder_latents": "probes.dictionaries.crosscoder",
    "crosscoder_summary": "probes.dictionaries.crosscoder",
    "fit_crosscoder": "probes.dictionaries.crosscoder",
    "latent_scaling": "probes.dictionaries.crosscoder",
    "top_latent_prompts": "probes.dictionaries.crosscoder",
    "train_crosscoder": "probes.dictionaries.crosscoder",
    "SAEError": "probes.dictionaries.sae",
    "decoder_direction": "probes.dictionaries.sae",
    "fit_sae": "probes.dictionaries.sae",
    "latent_shifts": "probes.dictionaries.sae",
    "load_sae": "probes.dictionaries.sae",
    "sae_transfer": "probes.dictionaries.sae",
    "train_sae": "probes.dictionaries.sae",
    "bootstrap_ci": "probes.stats",
    "mean_ci": "probes.stats",
    "cot_decode": "probes.decoding.cot_decoding",
    "cot_summary": "probes.decoding.cot_decoding",
    "answer_probe": "probes.quality.early_answering",
    "early_answers": "probes.quality.early_answering",
    "early_summary": "probes.quality.early_answering",
    "StepFormat": "probes.quality.information_gain",
    "ig_profile": "probes.quality.information_gain",
    "ig_totals": "probes.quality.information_gain",
    "information_gain": "probes.quality.information_gain",
    "ood_table": "probes.quality.ood",
    "crossover_k": "probes.decoding.passk",
    "pass_at_k": "probes.decoding.passk",
    "passk_curve": "probes.decoding.passk",
    "sample_task": "probes.decoding.sampling",
    "read_samples": "probes.decoding.imported",
}

if TYPE_CHECKING:
    from probes.data.activations import ActivationSet, collect_activations
    from probes.decoding.cot_decoding import cot_decode, cot_summary
    from probes.decoding.imported import read_samples
    from probes.decoding.passk import crossover_k, pass_at_k, passk_curve
    from probes.decoding.sampling import sample_task
    from probes.dictionaries.crosscoder import (
        Crosscoder,
        crosscoder_latents,
        crosscoder_summary,
        fit_crosscoder,
        latent_scaling,
        top_latent_prompts,
        train_crosscoder,
    )
    from probes.dictionaries.sae import (
        SAEError,
        decoder_direction,
        fit_sae,
        latent_shifts,
        load_sae,
        sae_transfer,
        train_sae,
    )
    from probes.models.checkpoint import (
        Checkpoint,
        CheckpointError,
        CheckpointPairing,
        ParamRole,
        classify_param,
        open_checkpoint,
        pair_checkpoints,
    )
    from probes.organism import evaluate_family, organism_family, train_family
    from probes.quality.early_answering import answer_probe, early_answers, early_summary
    from probes.quality.information_gain import StepFormat, ig_profile, ig_totals, information_gain
    from probes.quality.ood import ood_table
    from probes.stats import bootstrap_ci, mean_ci
    from probes.weights.alignment import load_directions
    from probes.weights.geometry import (
        summarize_weight_diff,
        update_cosine,
        update_cosine_paths,
        weight_diff,
        weight_diff_paths,
    )
    from probes.weights.measures import SVDSettings, WeightDiffError

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
    "read_samples",
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
