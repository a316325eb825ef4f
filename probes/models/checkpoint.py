"""Stream the tensors of several checkpoints side by side, one parameter at a time.

Weight geometry compares a base checkpoint with its fine-tunes matrix by matrix
(docs/measures.md, "Weight geometry"). Real families are billions of parameters, so nothing
here ever holds a whole model: :func:`pair_checkpoints` reads only the safetensors
headers, pairs tensors by name, and :meth:`CheckpointPairing.stream` yields one
parameter at a time from every checkpoint. Each tensor is read through its own short
``safe_open``; safetensors hands back a view of the file's memory map, which is unmapped
as soon as the tensor is freed, so peak memory is a few tensors, never two models::

    >>> pairing = pair_checkpoints({"base": "ckpt/base", "sft": "ckpt/sft"})  # doctest: +SKIP
    >>> for role, tensors in pairing.stream():                              # doctest: +SKIP
    ...     delta = tensors["sft"] - tensors["base"]

Glossary
--------
role
    A :class:`ParamRole`: the parameter's ``layer`` (``None`` outside the blocks) and
    ``component``, one of :data:`COMPONENTS`. Names that match no rule get component
    ``"unknown"``: they are listed in :attr:`CheckpointPairing.unknown` and still streamed.
orientation
    Every streamed matrix is ``[out, in]``: rows span the output space. Two stored layouts
    are transposed to get there: GPT-2's ``Conv1D`` weights (``c_attn``, ``c_proj``,
    ``c_fc``), stored ``[in, out]``, and token / position embeddings, stored
    ``[vocab, d_model]`` but acting as a map from one-hot tokens to the residual stream, so
    their ``[out, in]`` form is ``[d_model, vocab]``. ``role.transposed`` says which.
residual writers
    Matrices whose output is added to the residual stream: attention output (``o``:
    ``o_proj``, GPT-2 ``attn.c_proj``, NeoX ``attention.dense``), MLP output (``down``:
    ``down_proj``, GPT-2 ``mlp.c_proj``, NeoX ``dense_4h_to_h``) and embeddings.
tied embeddings
    A checkpoint without an unembedding (GPT-2, Qwen2 and Gemma2 tie it to the token
    embedding) gets a note: the ``embed`` row then covers the unembedding too.

Sharded checkpoints are read through ``model.safetensors.index.json``; single-file ones
through ``model.safetensors``. Pickled ``*.bin`` checkpoints are refused (never unpickled).
Hub ids resolve exactly as :func:`probes.load_family` resolves them
(:func:`probes.models.family.resolve_checkpoint`), so nothing is downloaded while offline.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import safe_open

from probes.errors import CheckpointError
from probes.models.family import resolve_checkpoint
from probes.models.files import safetensors_header

__all__ = [
    "COMPONENTS",
    "CheckpointError",
    "Checkpoint",
    "ParamRole",
    "CheckpointPairing",
    "open_checkpoint",
    "classify_param",
    "pair_checkpoints",
    "safetensors_header",
]

#: Components a parameter name can map to. ``qkv`` is a fused query/key/value matrix
#: (GPT-2 ``c_attn``, NeoX ``query_key_value``); ``pos_embed`` is GPT-2's learned ``wpe``.
COMPONENTS = (
    "q",
    "k",
    "v",
    "qkv",
    "o",
    "gate",
    "up",
    "down",
    "embed",
    "pos_embed",
    "unembed",
    "norm",
    "unknown",
)

_INDEX_FILE = "model.safetensors.index.json"
_SINGLE_FILE = "model.safetensors"


# ------------------------------------------------------------------ names -> roles
@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    component: str
    conv1d: bool = False  # GPT-2 Conv1D: stored [in, out]
    embedding: bool = False  # stored [vocab, d_model]
    writes_residual: bool = False


def _block(suffix: str, component: str, **kw: bool) -> _Rule:
    # a block parameter: '<prefix>.(layers|h).<i>.<suffix>.(weight|bias)'
    return _Rule(re.compile(rf"(?:^|\.)(?:layers|h)\.(\d+)\.{suffix}\.(weight|bias)$"), component, **kw)


def _top(suffix: str, component: str, **kw: bool) -> _Rule:
    # a parameter outside the blocks: '<prefix>.<suffix>.(weight|bias)'
    return _Rule(re.compile(rf"(?:^|\.){suffix}\.(weight|bias)$"), component, **kw)


# Llama, Qwen2, Olmo2, Gemma2 (model.layers.i.self_attn/mlp...), GPT-2 (transformer.h.i...),
# GPT-NeoX (gpt_neox.layers.i.attention/mlp...). The spellings do not collide across archs.
_RULES: tuple[_Rule, ...] = (
    # Llama family
    _block(r"self_attn\.q_proj", "q"),
    _block(r"self_attn\.k_proj", "k"),
    _block(r"self_attn\.v_proj", "v"),
    _block(r"self_attn\.o_proj", "o", writes_residual=True),
    _block(r"mlp\.gate_proj", "gate"),
    _block(r"mlp\.up_proj", "up"),
    _block(r"mlp\.down_proj", "down", writes_residual=True),
    _block(
        r"(?:input_layernorm|post_attention_layernorm|pre_feedforward_layernorm|"
        r"post_feedforward_layernorm|self_attn\.q_norm|self_attn\.k_norm)",
        "norm",
    ),
    # GPT-2 (Conv1D, stored [in, out])
    _block(r"attn\.c_attn", "qkv", conv1d=True),
    _block(r"attn\.c_proj", "o", conv1d=True, writes_residual=True),
    _block(r"mlp\.c_fc", "up", conv1d=True),
    _block(r"mlp\.c_proj", "down", conv1d=True, writes_residual=True),
    _block(r"ln_[12]", "norm"),
    # GPT-NeoX
    _block(r"attention\.query_key_value", "qkv"),
    _block(r"attention\.dense", "o", writes_residual=True),
    _block(r"mlp\.dense_h_to_4h", "up"),
    _block(r"mlp\.dense_4h_to_h", "down", writes_residual=True),
    # outside the blocks
    _top(r"(?:embed_tokens|wte|embed_in)", "embed", embedding=True, writes_residual=True),
    _top(r"wpe", "pos_embed", embedding=True, writes_residual=True),
    _top(r"(?:lm_head|embed_out)", "unembed"),
    _top(r"(?:model\.norm|ln_f|final_layer_norm)", "norm"),
)


@dataclass(frozen=True)
class ParamRole:
    """What a parameter is: its block ``layer`` and ``component`` (see :data:`COMPONENTS`).

    ``kind`` is ``"weight"`` or ``"bias"`` (``"unknown"`` for unmatched names);
    ``transposed`` says the stored tensor is transposed to ``[out, in]`` when streamed;
    ``writes_residual`` marks the update's output space as the residual stream.
    """

    name: str
    layer: int | None
    component: str
    kind: str
    transposed: bool = False
    writes_residual: bool = False

    def orient(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor in ``[out, in]`` orientation (a transposed view where needed)."""
        return tensor.T if self.transposed and tensor.dim() == 2 else tensor

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """Embeddings first, then blocks in order, then final norm / unembed, unknown last."""
        if self.component == "unknown":
            return (3, 0, self.name)
        if self.layer is not None:
            return (1, self.layer, self.name)
        return (0 if self.component in ("embed", "pos_embed") else 2, 0, self.name)


def classify_param(name: str) -> ParamRole:
    """Map a parameter name of Llama, Qwen2, Olmo2, Gemma2, GPT-2 or GPT-NeoX to its role.

    >>> classify_param("model.layers.3.mlp.down_proj.weight")
    ParamRole(name='model.layers.3.mlp.down_proj.weight', layer=3, component='down', kind='weight', transposed=False, writes_residual=True)
    >>> classify_param("transformer.h.0.attn.c_attn.weight").transposed  # GPT-2 Conv1D
    True
    >>> classify_param("rotary_emb.inv_freq").component
    'unknown'
    """
    for rule in _RULES:
        m = rule.pattern.search(name)
        if m is None:
            continue
        groups = m.groups()
        layer = int(groups[0]) if len(groups) == 2 else None
        kind = groups[-1]
        transposed = kind == "weight" and (rule.conv1d or rule.embedding)
        return ParamRole(name, layer, rule.component, kind, transposed, rule.writes_residual)
    return ParamRole(name, None, "unknown", "unknown")


# ------------------------------------------------------------------ one checkpoint
@dataclass(frozen=True)
class Checkpoint:
    """A safetensors checkpoint known by its headers only (no tensor is read).

    Attributes:
        path: the local folder.
        files: tensor name -> the ``.safetensors`` file holding it.
        shapes: tensor name -> stored shape.
        dtypes: tensor name -> stored dtype string (``"F32"``, ``"BF16"``...).
        config: the folder's ``config.json`` (empty if there is none).
    """

    path: Path
    files: Mapping[str, Path]
    shapes: Mapping[str, tuple[int, ...]]
    dtypes: Mapping[str, str]
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.files)

    @property
    def n_params(self) -> int:
        total = 0
        for shape in self.shapes.values():
            n = 1
            for s in shape:
                n *= s
            total += n
        return total

    def read(
        self, name: str, *, dtype: torch.dtype | None = torch.float32, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """Read one tensor (as stored, then cast to ``dtype`` unless it is ``None``).

        The file is opened for this tensor only. The tensor returned (when no cast is
        needed) views the file's memory map, which stays mapped until the tensor is freed:
        only this tensor's pages are ever touched, and nothing else of the checkpoint.
        """
        if name not in self.files:
            raise CheckpointError(
                f"Tensor {name!r} is not in checkpoint {str(self.path)!r}. "
                f"It holds {len(self.files)} tensors, e.g. {sorted(self.files)[:5]}."
            )
        with safe_open(str(self.files[name]), framework="pt", device="cpu") as fh:
            tensor = fh.get_tensor(name)
        if dtype is not None and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor if str(device) == "cpu" else tensor.to(device)


def _tensor_infos(file: Path) -> dict[str, Any]:
    header = safetensors_header(file)[1]
    header.pop("__metadata__", None)
    return header


def open_checkpoint(source: str | os.PathLike[str], revision: str | None = None) -> Checkpoint:
    """Index a checkpoint (local folder or hub id, resolved like :func:`probes.load_family`).

    Reads ``model.safetensors.index.json`` for sharded checkpoints, else
    ``model.safetensors``, else every ``*.safetensors`` file in the folder.
    """
    path = Path(source).expanduser()
    if path.is_dir() and not (path / "config.json").exists():
        # a bare folder of safetensors files (no config) is fine for weight geometry
        folder = path.resolve()
    else:
        folder = resolve_checkpoint(str(source), revision)
    config: dict[str, Any] = {}
    if (folder / "config.json").exists():
        config = json.loads((folder / "config.json").read_text())

    if (folder / _INDEX_FILE).exists():
        index = json.loads((folder / _INDEX_FILE).read_text())
        weight_map: dict[str, str] = index.get("weight_map", {})
        shard_names = sorted(set(weight_map.values()))
        missing = [s for s in shard_names if not (folder / s).exists()]
        if missing:
            raise CheckpointError(
                f"{_INDEX_FILE} in {str(folder)!r} names shard(s) {missing} that are not in the "
                "folder. Download or copy the missing shards (the checkpoint is incomplete)."
            )
        shard_files = [folder / s for s in shard_names]
    elif (folder / _SINGLE_FILE).exists():
        shard_files = [folder / _SINGLE_FILE]
    else:
        shard_files = sorted(folder.glob("*.safetensors"))
    if not shard_files:
        pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
        hint = (
            f" It holds pickled weights {pickles[:3]}, which the kit never unpickles; convert them "
            "once with `AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, "
            "safe_serialization=True)` on a trusted machine."
            if pickles
            else ""
        )
        raise CheckpointError(f"No *.safetensors files in {str(folder)!r}.{hint}")

    files: dict[str, Path] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for file in shard_files:
        for name, info in _tensor_infos(file).items():
            if name in files:
                raise CheckpointError(
                    f"Tensor {name!r} appears in two shards of {str(folder)!r}: "
                    f"{files[name].name} and {file.name}. The checkpoint is inconsistent."
                )
            files[name] = file
            shapes[name] = tuple(int(s) for s in info["shape"])
            dtypes[name] = str(info["dtype"])
    return Checkpoint(folder, files, shapes, dtypes, config)


# ------------------------------------------------------------------ several checkpoints
@dataclass(frozen=True)
class CheckpointPairing:
    """Tensors of several checkpoints paired by name; the first checkpoint is the reference.

    Attributes:
        checkpoints: label -> :class:`Checkpoint` (e.g. ``{"base": ..., "sft": ...}``).
        shared: names present in every checkpoint with one shape, in streaming order.
        missing: label -> names of the reference absent from that checkpoint.
        extra: label -> names in that checkpoint absent from the reference.
        shape_mismatch: name -> ``{label: shape}`` for names whose shapes differ (not streamed).
        unknown: shared names whose role is unknown (streamed with component ``"unknown"``).
        notes: plain-language notes, e.g. tied embeddings.
    """

    checkpoints: Mapping[str, Checkpoint]
    shared: tuple[str, ...]
    missing: Mapping[str, tuple[str, ...]]
    extra: Mapping[str, tuple[str, ...]]
    shape_mismatch: Mapping[str, Mapping[str, tuple[int, ...]]]
    unknown: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        return list(self.checkpoints)

    def role(self, name: str) -> ParamRole:
        return classify_param(name)

    def stream(
        self,
        names: Sequence[str] | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> Iterator[tuple[ParamRole, dict[str, Float[torch.Tensor, "..."]]]]:
        """Yield ``(role, {label: tensor})`` one parameter at a time, ``[out, in]`` oriented.

        Tensors are read as stored and cast to ``dtype`` (float32 by default: differences
        of bf16 weights are taken in float32). Only the tensors of one parameter are alive
        per step, as long as the caller does not keep them.
        """
        for name in self.shared if names is None else names:
            role = classify_param(name)
            tensors = {
                label: role.orient(ckpt.read(name, dtype=dtype, device=device))
                for label, ckpt in self.checkpoints.items()
            }
            yield role, tensors
            del tensors

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: paths, counts and every name that was not paired."""
        return {
            "checkpoints": {k: str(c.path) for k, c in self.checkpoints.items()},
            "n_shared": len(self.shared),
            "missing": {k: list(v) for k, v in self.missing.items() if v},
            "extra": {k: list(v) for k, v in self.extra.items() if v},
            "shape_mismatch": {
                k: {lab: list(s) for lab, s in v.items()} for k, v in self.shape_mismatch.items()
            },
            "unknown": list(self.unknown),
            "notes": list(self.notes),
        }


def _tied_note(label: str, ckpt: Checkpoint) -> str | None:
    comps = {classify_param(n).component for n in ckpt.names}
    if "embed" in comps and "unembed" not in comps:
        tied = ckpt.config.get("tie_word_embeddings")
        why = "tie_word_embeddings=true in config.json" if tied else "no unembedding tensor is stored"
        return (
            f"{label}: the unembedding is tied to the token embedding ({why}); the 'embed' row covers both."
        )
    return None


def pair_checkpoints(
    sources: Mapping[str, str | os.PathLike[str] | Checkpoint],
    *,
    revisions: Mapping[str, str | None] | None = None,
) -> CheckpointPairing:
    """Pair the tensors of ``sources`` (label -> folder, hub id or :class:`Checkpoint`) by name.

    Only headers are read. Names missing from some checkpoint, or with differing shapes,
    are listed on the result and not streamed; names of unknown role are listed and streamed.
    """
    if len(sources) < 2:
        raise CheckpointError(
            f"pair_checkpoints needs at least two checkpoints (a reference and a variant), "
            f"got {list(sources)}."
        )
    revisions = revisions or {}
    ckpts: dict[str, Checkpoint] = {
        label: src if isinstance(src, Checkpoint) else open_checkpoint(src, revisions.get(label))
        for label, src in sources.items()
    }
    ref_label, ref = next(iter(ckpts.items()))
    ref_names = set(ref.files)
    missing: dict[str, tuple[str, ...]] = {}
    extra: dict[str, tuple[str, ...]] = {}
    common = set(ref_names)
    for label, ckpt in ckpts.items():
        if label == ref_label:
            continue
        names = set(ckpt.files)
        missing[label] = tuple(sorted(ref_names - names))
        extra[label] = tuple(sorted(names - ref_names))
        common &= names
    mismatch: dict[str, dict[str, tuple[int, ...]]] = {}
    for name in common:
        shapes = {label: c.shapes[name] for label, c in ckpts.items()}
        if len(set(shapes.values())) > 1:
            mismatch[name] = shapes
    shared = sorted(common - set(mismatch), key=lambda n: classify_param(n).sort_key)
    unknown = tuple(n for n in shared if classify_param(n).component == "unknown")
    notes = [note for label, c in ckpts.items() if (note := _tied_note(label, c)) is not None]
    if not shared:
        raise CheckpointError(
            f"Checkpoints {[str(c.path) for c in ckpts.values()]} share no tensor of the same name "
            f"and shape (reference {ref_label!r} has e.g. {sorted(ref_names)[:3]}). They are not "
            "variants of one architecture."
        )
    return CheckpointPairing(ckpts, tuple(shared), missing, extra, mismatch, unknown, tuple(notes))
