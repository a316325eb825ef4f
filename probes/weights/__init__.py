"""Weight geometry: how big, how low-rank and how sparse a fine-tune's update is, and where it points.

Per-matrix measures and SVD settings (:mod:`probes.weights.measures`), alignment with
residual-stream directions (:mod:`probes.weights.alignment`), the streamed per-parameter
tables (:mod:`probes.weights.geometry`) and a family's updates stacked
(:mod:`probes.weights.family_updates`). Definitions: docs/measures.md, "Weight geometry".
"""

from probes.weights.alignment import Directions, load_directions, output_alignment, unit_directions
from probes.weights.family_updates import family_weight_diff
from probes.weights.geometry import (
    summarize_weight_diff,
    update_cosine,
    update_cosine_paths,
    weight_diff,
    weight_diff_paths,
)
from probes.weights.measures import (
    DEFAULT_KS,
    DEFAULT_TOLS,
    Spectrum,
    SVDSettings,
    WeightDiffError,
    principal_angles,
    spectrum,
    stable_rank,
    subspace_overlap,
    update_sparsity,
)

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_TOLS",
    "Directions",
    "SVDSettings",
    "Spectrum",
    "WeightDiffError",
    "family_weight_diff",
    "load_directions",
    "output_alignment",
    "principal_angles",
    "spectrum",
    "stable_rank",
    "subspace_overlap",
    "summarize_weight_diff",
    "unit_directions",
    "update_cosine",
    "update_cosine_paths",
    "update_sparsity",
    "weight_diff",
    "weight_diff_paths",
]
