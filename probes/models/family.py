"""Model families: a base checkpoint and its post-trained descendants.

A :class:`ModelFamily` names variants (``base``, ``sft``, ``dpo``, ``rl`` or any other
name), each a Hugging Face hub id or a local folder plus an optional revision. Variants
are loaded one at a time through TransformerLens's ``TransformerBridge.boot_transformers``
*without* weight processing, so activations and weights are the checkpoint's own::

    >>> fam = load_family({"base": "path/to/base", "sft": "path/to/sft"})  # doctest: +SKIP
    >>> with fam.open("sft") as model:                                      # doctest: +SKIP
    ...     logits = model(tokens)

A family file (TOML) looks like::

    name = "olmo2-1b"
    [variants.base]
    path = "allenai/OLMo-2-0425-1B"
    revision = "main"          # optional
    [variants.sft]
    path = "allenai/OLMo-2-0425-1B-SFT"
    task = "gsm8k"             # optional: the task this variant is judged on
    [variants.sft.prompt]      # optional: how this variant is asked (probes.models.protocol)
    chat_template = true
    stop = ["<|endoftext|>"]
    [tasks]
    gsm8k = { path = "gsm8k.jsonl", scorer = "gsm8k", contrast = "cot_vs_direct" }

Relative paths are resolved against the file's folder. ``load_family(file, checkpoints=DIR)``
(or ``ELICIT_CHECKPOINTS=DIR`` in the environment) looks every hub id ``owner/name`` of the
file up as the folder ``DIR/owner/name`` first, so a shipped family file runs on local copies
without editing it (docs/design.md, "Local checkpoints"). A variant's ``prompt`` table is
its prompt protocol (chat template, system prompt, BOS, stop strings, prefill, k-shot
exemplars; docs/design.md, "Prompt protocols"); a variant without one is given its
prompts as written.
"""

from __future__ import annotations

import difflib
import gc
import itertools
import json
import os
import tomllib
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from probes.errors import FamilyError
from probes.models.config_keys import check_keys
from probes.models.files import content_digest
from probes.models.protocol import PromptProtocol, attach_protocol
from probes.models.registry import family_names, is_family_name, named_family

__all__ = [
    "VariantSpec",
    "ModelFamily",
    "load_family",
    "resolve_checkpoint",
    "layer_count",
    "resolve_dtype",
    "DTYPES",
    "ARCH_FIELDS",
]

#: Config fields that must agree across the variants of one family.
ARCH_FIELDS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
    # GPT-2 / NeoX spellings
    "n_embd",
    "n_layer",
    "n_head",
)

_VARIANT_KEYS = {"path", "revision", "task", "prompt"}
#: Read for ``checkpoints=`` when it is not given: a folder holding ``owner/name`` checkpoint folders.
CHECKPOINTS_ENV = "ELICIT_CHECKPOINTS"
_TOP_KEYS = {"name", "variants", "tasks", "description", "notes", "organism", "battery"}


@dataclass(frozen=True)
class VariantSpec:
    """One checkpoint of a family: a hub id or local folder, an optional revision and task, and
    the ``[variants.NAME.prompt]`` table of its prompt protocol (``None``: prompts as written)."""

    name: str
    source: str
    revision: str | None = None
    task: str | None = None
    prompt: Mapping[str, Any] | None = field(default=None, hash=False)


def _is_local(source: str) -> bool:
    return Path(source).expanduser().exists()


def resolve_checkpoint(source: str, revision: str | None = None) -> Path:
    """Return a local folder holding the checkpoint ``source`` (a folder or a hub id).

    Hub ids are looked up in the local Hugging Face cache first. Downloads are attempted
    only when ``HF_HUB_OFFLINE`` is not set; an id that cannot be found offline fails at
    once with a message saying how to pass a local folder (it never hangs). A download waits
    at most 10 s for the hub's first answer per file (``etag_timeout``); the read timeout of
    the file transfer is huggingface_hub's own, ``HF_HUB_DOWNLOAD_TIMEOUT`` in the environment
    of the process (set it before starting Python; the kit never writes the environment).
    """
    if _is_local(source):
        path = Path(source).expanduser().resolve()
        if not (path / "config.json").exists():
            raise FamilyError(
                f"Checkpoint folder {str(path)!r} has no config.json. Pass a folder written by "
                "`model.save_pretrained(...)` (config.json + *.safetensors), or a hub id."
            )
        return path
    if source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise FamilyError(
            f"Checkpoint {source!r} looks like a local path but does not exist. Check the path "
            "(relative paths in a family file are relative to the file's folder)."
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    try:
        return Path(
            snapshot_download(source, revision=revision, local_files_only=True, allow_patterns=patterns)
        )
    except (LocalEntryNotFoundError, OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}
        if offline:
            raise FamilyError(
                f"Hub id {source!r} (revision {revision or 'main'}) is not in the local Hugging Face "
                "cache and HF_HUB_OFFLINE is set, so it cannot be downloaded. Download it on a "
                "machine with access (`huggingface-cli download "
                f"{source} --local-dir DIR`) and pass the local folder DIR instead of the id (or put "
                f"it at ROOT/{source} and pass load_family(..., checkpoints=ROOT))."
            ) from err
    try:
        return Path(snapshot_download(source, revision=revision, allow_patterns=patterns, etag_timeout=10))
    except Exception as err:  # network errors come in many types
        raise FamilyError(
            f"Could not download hub id {source!r} (revision {revision or 'main'}): {err}. "
            "Pass a local folder holding the checkpoint instead of the id."
        ) from err


def _read_config(path: Path) -> dict[str, Any]:
    with open(path / "config.json") as fh:
        cfg: dict[str, Any] = json.load(fh)
    # multimodal / nested configs keep the LM config under text_config
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):
        merged = dict(cfg["text_config"])
        merged.setdefault("model_type", cfg.get("model_type"))
        return merged
    return cfg


#: dtype names a user may give (CLI ``--dtype``, family files) -> the torch dtype
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A torch dtype from its name (``float32``/``fp32``, ``bfloat16``/``bf16``, ``float16``/``fp16``).

    >>> resolve_dtype("bf16")
    torch.bfloat16
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise FamilyError(f"Unknown dtype {dtype!r}. Valid: {sorted(DTYPES)} (e.g. --dtype bfloat16).")
    return DTYPES[dtype]


def layer_count(config: Mapping[str, Any]) -> int:
    """The number of transformer blocks an HF ``config.json`` states (``num_hidden_layers``,
    GPT-2's ``n_layer``), 0 when it states none.

    >>> layer_count({"num_hidden_layers": 16}), layer_count({"n_layer": 12}), layer_count({})
    (16, 12, 0)
    """
    return int(config.get("num_hidden_layers", config.get("n_layer", 0)) or 0)


@dataclass(frozen=True)
class ModelFamily:
    """Named checkpoints of one model family, loaded one variant at a time.

    Attributes:
        name: a label used in provenance and reports.
        specs: variant name -> :class:`VariantSpec`. The variant named ``base`` is the reference.
        root: the folder of the family file, if any (tasks resolve against it).
        tasks: task name -> task table from the family file (``path``, ``scorer``...).
        settings: other tables of the family file (``[battery]`` settings, ``[organism]`` facts).
        device, dtype, device_map: how variants are loaded. Nothing is moved or cast later.
    """

    name: str
    specs: Mapping[str, VariantSpec]
    root: Path | None = None
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    device_map: str | dict[str, Any] | None = None
    trust_remote_code: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # built prompt protocols, per variant (not a field: copies and replace() start empty)
        object.__setattr__(self, "_protocols", {})

    @property
    def variants(self) -> list[str]:
        """Variant names, ``base`` first."""
        names = list(self.specs)
        return sorted(names, key=lambda n: (n != "base", names.index(n)))

    def spec(self, variant: str) -> VariantSpec:
        """The spec of ``variant``; an unknown name fails naming the family's variants."""
        if variant not in self.specs:
            close = difflib.get_close_matches(variant, self.variants, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise FamilyError(
                f"Family {self.name!r} has no variant {variant!r}. Variants: {self.variants}.{hint}"
            )
        return self.specs[variant]

    def local_path(self, variant: str) -> Path:
        """The local folder of ``variant`` (resolving hub ids through the HF cache). A variant that
        is a PEFT adapter folder (``adapter_config.json``) is merged onto the ``base`` variant
        (:func:`probes.models.adapters.merged_checkpoint`, cached by content) and that folder is
        returned, so loading, weight geometry and caches treat it as a checkpoint."""
        from probes.models.adapters import is_adapter, merged_checkpoint

        spec = self.spec(variant)
        if is_adapter(spec.source):
            if variant == "base" or "base" not in self.specs:
                raise FamilyError(
                    f"Variant {variant!r} is a PEFT adapter ({spec.source!r}); it is merged onto the family's "
                    "`base` variant, so the family needs a full-checkpoint `base`."
                )
            return merged_checkpoint(spec.source, self.local_path("base"))
        return resolve_checkpoint(spec.source, spec.revision)

    def config(self, variant: str) -> dict[str, Any]:
        """The checkpoint's ``config.json`` as a dict."""
        return _read_config(self.local_path(variant))

    def layer_count(self, variant: str = "base") -> int:
        """The number of blocks of ``variant`` from its config (0 when the config states none)."""
        return layer_count(self.config(variant))

    def revision(self, variant: str) -> str:
        """A string identifying the exact weights of ``variant``: the hub revision it pins, else
        :func:`~probes.models.checkpoint.content_digest` of its local folder (content, not mtimes).
        A variant with a prompt protocol adds ``+prompt:<digest>`` of it, so every cache keyed on
        the revision (activation stores, sweep rows, forced-format results) is keyed on how the
        variant is asked too; a variant without one keeps the weights' string alone."""
        spec = self.spec(variant)
        rev = spec.revision if spec.revision else "local:" + content_digest(self.local_path(variant))
        proto = self.protocol(variant)
        return rev if proto is None else f"{rev}+prompt:{proto.digest()}"

    def protocol(self, variant: str) -> PromptProtocol | None:
        """The prompt protocol of ``variant`` over its own tokenizer and EOS ids, built from its
        ``[variants.NAME.prompt]`` table (k-shot exemplars from the task's train split); ``None``
        when the variant has no table: its prompts go to the model as written."""
        spec = self.spec(variant)
        if spec.prompt is None:
            return None
        built: dict[str, PromptProtocol] = self._protocols  # type: ignore[attr-defined]
        if variant not in built:
            tok = self.tokenizer(variant)
            built[variant] = PromptProtocol.from_table(
                variant,
                spec.prompt,
                tokenizer=tok,
                eos_ids=self._eos_ids(variant, tok),
                exemplars=self._exemplars(variant, spec.prompt),
                where=f"[variants.{variant}.prompt] of family {self.name!r}",
            )
        return built[variant]

    def _eos_ids(self, variant: str, tokenizer: Any) -> list[int]:
        """The tokenizer's EOS id, then the ``eos_token_id`` values of ``generation_config.json``."""
        ids = [int(tokenizer.eos_token_id)] if tokenizer.eos_token_id is not None else []
        gen = self.local_path(variant) / "generation_config.json"
        if gen.exists():
            eos = json.loads(gen.read_text()).get("eos_token_id")
            ids += [int(i) for i in (eos if isinstance(eos, list) else [eos]) if i is not None]
        return ids

    def _exemplars(self, variant: str, table: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The first ``shots`` worked questions of the train split of the protocol's task."""
        shots = table.get("shots", 0)
        if not isinstance(shots, int) or shots <= 0:
            return []  # zero-shot (a bad value was named when the table was read)
        name = (
            table.get("shots_task")
            or self.spec(variant).task
            or (next(iter(self.tasks)) if len(self.tasks) == 1 else None)
        )
        if name is None:
            raise FamilyError(
                f"Variant {variant!r} asks for shots = {shots} but names no task to draw them from; add "
                f'shots_task = "..." to [variants.{variant}.prompt] (declared tasks: {sorted(self.tasks)}).'
            )
        answer = str(table.get("shot_answer", PromptProtocol.shot_answer))
        pool = [e for e in self.load_task(name, contrast=False).examples if e.split == "train" and e.trace]
        if len(pool) < shots:
            raise FamilyError(
                f"Variant {variant!r} asks for shots = {shots} from task {name!r}, whose train split has "
                f"{len(pool)} question(s) with a worked answer. Lower shots, or add train questions with traces."
            )
        return [
            (e.prompt, answer.replace("{trace}", e.trace or "").replace("{answer}", e.answer))
            for e in pool[:shots]
        ]

    def tokenizer(self, variant: str = "base") -> Any:
        """The tokenizer of ``variant`` (from its checkpoint folder)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(
            str(self.local_path(variant)), trust_remote_code=self.trust_remote_code
        )

    def task_name(self, variant: str) -> str | None:
        """The task named for ``variant`` in the family file, if any."""
        return self.spec(variant).task

    def load_task(self, name: str, *, contrast: bool = True) -> Any:
        """Load a task declared in the family file's ``[tasks]`` table. A table naming a
        ``contrast`` recipe (:mod:`probes.data.contrasts`) gets it applied (``contrast=False``:
        the questions as written, with the recipe's splits)."""
        from probes.data.contrasts import CONTRAST_KEYS, apply_contrast, with_splits
        from probes.data.tasks import Task

        if name not in self.tasks:
            raise FamilyError(
                f"Family {self.name!r} declares no task {name!r}. Declared: {sorted(self.tasks)}."
            )
        entry = dict(self.tasks[name])
        recipe = {k: entry.pop(k) for k in CONTRAST_KEYS if k in entry}
        if "dataset" in entry:  # a Hugging Face dataset: a local folder or a cached hub id
            ds = str(entry.pop("dataset"))
            if self.root is not None and (self.root / ds).exists():
                ds = str(self.root / ds)
            hf = {k: entry.pop(k) for k in ("split", "config", "limit", "kit_split") if k in entry}
            task = Task.from_hf(ds, name=name, **hf, **entry)
        else:
            if "path" not in entry:
                raise FamilyError(
                    f'Task {name!r} of family {self.name!r} needs path = "FILE.jsonl" or dataset = '
                    '"FOLDER_OR_HUB_ID" (with optional split / config / limit).'
                )
            path = Path(entry.pop("path"))
            if not path.is_absolute() and self.root is not None:
                path = self.root / path
            task = Task.from_jsonl(path, name=name, **entry)
        if not recipe:
            return task
        return apply_contrast(task, recipe) if contrast else with_splits(task)

    def check(self, *, tokenizers: bool = True) -> None:
        """Fail unless every variant shares the base's architecture dimensions and vocabulary.

        A variant's tokenizer may *add* tokens to the base's (a chat model's turn markers), with
        every base token at its base id; its embedding matrix may then be larger
        (``vocab_size``). Anything else (a token missing, one at another id) fails naming the
        tokens. With ``tokenizers`` every variant's prompt protocol is built too (a chat
        template the tokenizer lacks fails here, before any model loads)."""
        ref_name = "base" if "base" in self.specs else self.variants[0]
        ref = self.config(ref_name)
        ref_tok = self.tokenizer(ref_name) if tokenizers else None
        for name in self.variants:
            if tokenizers:
                self.protocol(name)
            if name == ref_name:
                continue
            cfg = self.config(name)
            diffs = [k for k in ARCH_FIELDS if ref.get(k) != cfg.get(k)]
            if [k for k in diffs if k != "vocab_size"] or (diffs and ref_tok is None):
                _arch_error(ref_name, ref, name, cfg, diffs)
            if ref_tok is not None:
                added = _check_vocab(ref_name, ref_tok, name, self.tokenizer(name))
                # a larger embedding is how a fine-tune makes room for the tokens it added
                if diffs and not (
                    added and int(cfg.get("vocab_size") or 0) > int(ref.get("vocab_size") or 0)
                ):
                    _arch_error(ref_name, ref, name, cfg, diffs)

    @contextmanager
    def open(self, variant: str) -> Iterator[Any]:
        """Load ``variant`` as a TransformerBridge (no weight processing); free it on exit.

        On exit the model's parameters and buffers are released (a model kept past the block
        has no weights and fails loudly if used), so one variant is in memory at a time.
        """
        from transformer_lens.model_bridge import TransformerBridge

        path = self.local_path(variant)
        protocol = self.protocol(variant)  # a bad prompt table fails before the weights load
        kwargs: dict[str, Any] = {"dtype": self.dtype, "trust_remote_code": self.trust_remote_code}
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        else:
            kwargs["device"] = self.device
        try:
            model = TransformerBridge.boot_transformers(str(path), **kwargs)
        except Exception as err:
            raise FamilyError(f"Could not load variant {variant!r} from {str(path)!r}: {err}") from err
        model.eval()
        attach_protocol(model, protocol)  # generate() asks this model through its protocol
        try:
            yield model
        finally:
            model.reset_hooks()
            attach_protocol(model, None)
            _release(model)
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def with_variants(self, specs: Mapping[str, VariantSpec]) -> ModelFamily:
        """A new family with the given variant specs (same loading settings)."""
        from dataclasses import replace

        return replace(self, specs=dict(specs))


def _arch_error(
    ref_name: str, ref: Mapping[str, Any], name: str, cfg: Mapping[str, Any], keys: list[str]
) -> None:
    diffs = [f"{k}: {ref_name}={ref.get(k)!r} vs {name}={cfg.get(k)!r}" for k in keys]
    raise FamilyError(
        f"Variant {name!r} does not share the architecture of {ref_name!r}: "
        + "; ".join(diffs)
        + ". A family's variants must be fine-tunes of one base checkpoint."
    )


def _check_vocab(ref_name: str, ref_tok: Any, name: str, tok: Any) -> list[str]:
    """The tokens ``tok`` adds to ``ref_tok`` (its added tokens, every base token at its base id);
    anything else fails naming the differing tokens."""
    ref_vocab, vocab = ref_tok.get_vocab(), tok.get_vocab()
    if vocab == ref_vocab:
        return []
    only_ref = sorted(set(ref_vocab) - set(vocab))
    only_var = sorted(set(vocab) - set(ref_vocab))
    moved = sorted(t for t in ref_vocab if t in vocab and ref_vocab[t] != vocab[t])
    extra = set(tok.get_added_vocab())
    if not only_ref and not moved and set(only_var) <= extra:
        return only_var
    not_added = [t for t in only_var if t not in extra]
    raise FamilyError(
        f"Variant {name!r} has a tokenizer vocabulary incompatible with {ref_name!r} "
        f"(sizes {len(ref_vocab)} vs {len(vocab)}; only in {ref_name}: {only_ref[:5]}; "
        f"only in {name} and not added tokens: {not_added[:5]}; at different ids: "
        f"{[(t, ref_vocab[t], vocab[t]) for t in moved[:5]]}). Activations would not be comparable token "
        "for token; a tuned variant may only add tokens (e.g. chat markers) to the base's vocabulary."
    )


def _release(model: torch.nn.Module) -> None:
    """Free a model's weights now, without a full ``gc.collect()``.

    TransformerBridge holds reference cycles, so ``del model`` alone leaves the weights to the
    next full collection, and a full collection costs ~0.3 s in a process that has imported
    torch + transformers (a fixed cost on every :meth:`ModelFamily.open`). Emptying every
    module's parameter and buffer tables (and tensor attributes) drops the tensors by reference count; a full
    collection runs only if a weight is still alive after that.
    """
    mods = list(model.modules())
    original = getattr(model, "original_model", None)
    if isinstance(original, torch.nn.Module):
        mods += list(original.modules())
    tensors = [
        weakref.ref(t)
        for m in mods
        for t in itertools.chain(m._parameters.values(), m._buffers.values(), vars(m).values())
        if isinstance(t, torch.Tensor)
    ]
    for m in mods:
        m._parameters.clear()
        m._buffers.clear()
        for k in [k for k, v in vars(m).items() if isinstance(v, torch.Tensor)]:
            delattr(m, k)  # some bridge components keep a weight as a plain attribute
    del mods, original
    if any(r() is not None for r in tensors):
        gc.collect()


def _is_hub_id(source: str) -> bool:
    return source.count("/") == 1 and not source.startswith((".", "/", "~"))


def _variant_spec(
    vname: str, entry: Any, root: Path | None, where: str, checkpoints: Path | None = None
) -> VariantSpec:
    if isinstance(entry, str | os.PathLike):
        entry = {"path": str(entry)}
    if not isinstance(entry, Mapping):
        raise FamilyError(
            f"Variant {vname!r} in {where} must be a path/hub id or a table with 'path', got "
            f"{type(entry).__name__}."
        )
    check_keys(entry, _VARIANT_KEYS, f"variant {vname!r} of {where}", error=FamilyError)
    if "path" not in entry:
        raise FamilyError(f"Variant {vname!r} in {where} has no 'path' (hub id or local folder).")
    source = str(entry["path"])
    if root is not None and not Path(source).is_absolute() and (root / source).exists():
        source = str((root / source).resolve())
    elif checkpoints is not None and _is_hub_id(source) and (checkpoints / source).exists():
        source = str((checkpoints / source).resolve())
    prompt = entry.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, Mapping):
            raise FamilyError(
                f"[variants.{vname}.prompt] in {where} must be a table (chat_template = true, ...), got "
                f"{type(prompt).__name__}."
            )
        PromptProtocol.from_table(
            vname, prompt, where=f"[variants.{vname}.prompt] of {where}"
        )  # keys, values
        prompt = dict(prompt)
    return VariantSpec(vname, source, entry.get("revision"), entry.get("task"), prompt)


def _from_mapping(
    name: str, variants: Mapping[str, Any], root: Path | None, where: str, checkpoints: Path | None = None
) -> dict[str, VariantSpec]:
    specs = {
        vname: _variant_spec(vname, entry, root, where, checkpoints) for vname, entry in variants.items()
    }
    if not specs:
        raise FamilyError(f"{where} names no variants. Give at least 'base' and one descendant.")
    if "base" not in specs:
        raise FamilyError(
            f"{where} has no variant named 'base' (got {sorted(specs)}). The base is the reference "
            "every other variant is compared with; name it 'base'."
        )
    return specs


def _family_file(spec: str | os.PathLike[str]) -> Path:
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "family.toml"
    if not path.exists():
        raise FamilyError(
            f"No family file at {str(path)!r}. Pass a family TOML file, a folder holding "
            "family.toml, a mapping {variant: path_or_hub_id}, or a registered family name "
            f"{family_names()}."
        )
    return path


def _from_file(
    path: Path, name: str | None, opts: Mapping[str, Any], checkpoints: Path | None = None
) -> ModelFamily:
    """The family a TOML file describes (variants, tasks, settings), not yet checked."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise FamilyError(f"Family file {str(path)!r} is not valid TOML: {err}") from err
    check_keys(data, _TOP_KEYS, repr(str(path)), error=FamilyError)
    root = path.parent.resolve()
    specs = _from_mapping(data.get("name", root.name), data.get("variants", {}), root, str(path), checkpoints)
    tasks = {k: dict(v) if isinstance(v, Mapping) else {"path": v} for k, v in data.get("tasks", {}).items()}
    for vname, vs in specs.items():
        if vs.task is not None and vs.task not in tasks:
            raise FamilyError(
                f"Variant {vname!r} names task {vs.task!r}, which the [tasks] table of "
                f"{str(path)!r} does not declare. Declared: {sorted(tasks)}."
            )
    settings: dict[str, Any] = {k: data[k] for k in ("battery", "organism") if k in data}
    return ModelFamily(
        name or data.get("name", root.name), specs, root=root, tasks=tasks, settings=settings, **opts
    )


def load_family(
    spec: str | os.PathLike[str] | Mapping[str, Any],
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    device_map: str | dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    check: bool = True,
    name: str | None = None,
    checkpoints: str | os.PathLike[str] | None = None,
) -> ModelFamily:
    """Resolve a family from a TOML file, a folder holding ``family.toml``, a mapping
    ``{variant: hub_id_or_folder}``, or a registered name (:mod:`probes.models.registry`):
    ``"organism"`` trains or loads the kit's model organism, seed 0, from the cache.

    ``device_map`` is passed through to transformers/accelerate so a model larger than one
    GPU loads across several. With ``check=True`` the variants' configs and vocabularies
    are compared and a mismatch fails naming the differing fields (and every prompt protocol
    is built, see :meth:`ModelFamily.check`).

    ``checkpoints`` (default: the ``ELICIT_CHECKPOINTS`` environment variable) is a folder of
    local copies laid out like the hub: a hub id ``owner/name`` whose folder
    ``checkpoints/owner/name`` exists loads from there (what ``huggingface-cli download
    owner/name --local-dir DIR/owner/name`` writes); other ids resolve as usual.
    """
    opts: dict[str, Any] = {
        "device": device,
        "dtype": dtype,
        "device_map": device_map,
        "trust_remote_code": trust_remote_code,
    }
    if is_family_name(spec):
        return load_family(named_family(str(spec)), check=check, name=name, **opts)
    local = checkpoints if checkpoints is not None else os.environ.get(CHECKPOINTS_ENV) or None
    folder = Path(local).expanduser().resolve() if local is not None else None
    if folder is not None and not folder.is_dir():
        raise FamilyError(
            f"checkpoints={str(local)!r} (or ${CHECKPOINTS_ENV}) is not a folder. Pass the folder holding "
            "owner/name checkpoint folders (e.g. DIR/allenai/OLMo-2-0425-1B), or leave it unset."
        )
    fam: ModelFamily
    if isinstance(spec, Mapping):
        fam = ModelFamily(
            name or "family", _from_mapping(name or "family", spec, None, "the mapping", folder), **opts
        )
    else:
        fam = _from_file(_family_file(spec), name, opts, folder)
    if check:
        fam.check()
    return fam
