"""The activation store: activations of every variant on the same prompts, on disk.

:func:`collect_activations` runs each variant of a family in turn over a task's prompts
and streams the activations at the requested hook sites and token positions to
safetensors shards, so peak memory does not grow with the number of prompts::

    acts = collect_activations(family, task, "resid_post:0-2", ["last", "match:="], out="acts/")
    X = acts.get("base", "resid_post.1", "match:=")      # Tensor[prompt, d_model]

Layout of ``out``::

    meta.json                       fingerprint: task hash, hooks, positions, revisions, kit version
    <variant>/shard_00000.safetensors
    <variant>/shard_00000.json      prompts covered, byte size and sha256 of the shard
    <variant>/complete.json         written when every shard of the variant is valid (with the run's
                                    timing: load_s, collect_s = forward passes + writes, prompts)

Variants with a prompt protocol (:mod:`probes.models.protocol`) read each prompt as their
protocol renders it, tokenised by their own tokenizer (``prompts="variant"``, the default), so
``last`` is each variant's own last prompt token and ``question_end`` / ``question`` select
the question's tokens whatever the template; ``prompts="base"`` gives every variant the base's
rendering and tokens (token-aligned rows, what crosscoders need). A family without protocols
(the organism) reads the prompts as written, byte for byte as before.

A rerun with the same settings reuses valid shards (no model is loaded if all are
present); an interrupted run resumes at the first missing shard; a shard whose size or
checksum disagrees with its sidecar is recomputed by :func:`collect_activations` and
refused by :meth:`ActivationSet.load`.

Glossary of dimensions: ``prompt`` (examples of the task), ``row`` (token rows of a
multi-token position, all prompts concatenated), ``d_model``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from jaxtyping import Float, Int
from safetensors import safe_open
from safetensors.torch import save_file

from probes.data.tasks import Task, as_task
from probes.errors import CacheError, HookError, PositionError, TaskError
from probes.models.family import ModelFamily, layer_count
from probes.models.files import safetensors_header
from probes.models.hooks import HookSite, parse_hooks, validate_hooks
from probes.models.positions import Position, parse_positions
from probes.models.protocol import Encoded, PromptProtocol, joined
from probes.models.tokens import Batch, context_length, encode, pad_rows, pad_token_id, tokenize

__all__ = [
    "ActivationSet",
    "collect_activations",
    "texts_for",
    "prompt_rows",
    "PromptRows",
    "capture",
    "Capture",
    "ShardBuffer",
    "ShardWriter",
    "FORMAT_VERSION",
    "STORE_DTYPES",
]

FORMAT_VERSION = 1
#: Default activation bytes per shard (sets the memory bound of collection).
SHARD_BYTES = 64 * 2**20
TEXT_MODES = ("prompt", "prompt+trace")
#: Whose rendering each variant reads: its own protocol's, or the base's (token-aligned).
PROMPT_MODES = ("variant", "base")


def _kit_version() -> str:
    from probes.version import __version__

    return __version__


def texts_for(task: Task, text: str = "prompt", sep: str = " ") -> list[str]:
    """The texts fed to the model: prompts, or prompts followed by their reference traces."""
    if text not in TEXT_MODES:
        raise TaskError(f"text must be one of {TEXT_MODES}, got {text!r}.")
    if text == "prompt":
        return list(task.prompts)
    missing = [e.id for e in task.examples if not e.trace]
    if missing:
        raise TaskError(
            f"text='prompt+trace' needs a reference trace for every example; {len(missing)} lack one "
            f"(first: {missing[:3]}). Give traces in the task file or use text='prompt'."
        )
    return [e.prompt + sep + (e.trace or "") for e in task.examples]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _written_sha256(path: Path, tensors: Mapping[str, torch.Tensor], size: int) -> str:
    """sha256 of a safetensors file just written from ``tensors``, without reading its data back.

    The format is an 8-byte little-endian header length, the JSON header, then every tensor's
    raw bytes at the header's ``data_offsets``. The header is read from disk; the data bytes
    are hashed from the tensors in memory (on a little-endian host they are the same bytes).
    If the layout is not exactly that (gaps, big-endian host), the file itself is hashed.
    ``tests/probes/data/test_activations.py`` checks the result against hashing the file.
    """
    import sys

    head, header = safetensors_header(path)
    spans = sorted((tuple(v["data_offsets"]), k) for k, v in header.items() if k != "__metadata__")
    pos = 0
    for (start, end), _ in spans:
        if start != pos:
            return _sha256(path)
        pos = end
    if sys.byteorder != "little" or len(head) + pos != size:
        return _sha256(path)
    h = hashlib.sha256(head)
    for _, key in spans:
        t = tensors[key].detach()
        if t.device.type != "cpu" or not t.is_contiguous():
            return _sha256(path)
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _atomic_json(path: Path, data: Any) -> None:
    # a name of this process's own: jobs writing the same store at once never share a temp file
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def _data_key(hook: HookSite, pos: str) -> str:
    return f"{hook.key}@{pos}"


def _offsets_key(pos: str) -> str:
    return f"offsets@{pos}"


def _shard_valid(vdir: Path, index: int) -> bool:
    side = vdir / f"shard_{index:05d}.json"
    data = vdir / f"shard_{index:05d}.safetensors"
    if not side.exists() or not data.exists():
        return False
    try:
        info = json.loads(side.read_text())
    except json.JSONDecodeError:
        return False
    return data.stat().st_size == info.get("bytes") and _sha256(data) == info.get("sha256")


@dataclass(frozen=True)
class ActivationSet:
    """Activations keyed by (variant, hook, position) over the same prompt ids.

    Use :meth:`get` for one row per prompt (multi-token positions averaged) and
    :meth:`get_tokens` for every token row with the index of its prompt.
    """

    root: Path
    meta: Mapping[str, Any] = field(repr=False)

    # ---- descriptive properties ----------------------------------------------------
    @property
    def variants(self) -> list[str]:
        return [v for v in self.meta["variants"] if (self.root / v / "complete.json").exists()]

    @property
    def hooks(self) -> tuple[HookSite, ...]:
        return tuple(HookSite.parse(h) for h in self.meta["hooks"])

    @property
    def positions(self) -> tuple[str, ...]:
        return tuple(self.meta["positions"])

    @property
    def prompt_ids(self) -> tuple[str, ...]:
        return tuple(self.meta["prompt_ids"])

    @property
    def labels(self) -> tuple[str | None, ...]:
        return tuple(self.meta["labels"])

    @property
    def splits(self) -> tuple[str | None, ...]:
        return tuple(self.meta["splits"])

    @property
    def task_hash(self) -> str:
        return str(self.meta["task_hash"])

    @property
    def store_dtype(self) -> torch.dtype:
        """The dtype the activations are stored in (``meta.json``'s ``store_dtype``; a store
        written before it existed holds the model's ``dtype``)."""
        return STORE_DTYPES[str(self.meta.get("store_dtype", self.meta["dtype"]))]

    @property
    def d_model(self) -> int:
        return int(self.meta["d_model"])

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def __repr__(self) -> str:
        return (
            f"ActivationSet({len(self)} prompts of task {self.meta['task_name']!r} [{self.task_hash}], "
            f"variants={self.variants}, hooks={[h.key for h in self.hooks]}, positions={list(self.positions)}, "
            f"d_model={self.d_model}, at {str(self.root)!r})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{v}</td><td>{self.meta['revisions'].get(v, '')}</td></tr>" for v in self.variants
        )
        return (
            f"<b>ActivationSet</b> &mdash; {len(self)} prompts of <code>{self.meta['task_name']}</code> "
            f"(hash {self.task_hash}), d_model={self.d_model}<br>"
            f"hooks: <code>{', '.join(h.key for h in self.hooks)}</code>; positions: "
            f"<code>{', '.join(self.positions)}</code><br>"
            f"<table><tr><th>variant</th><th>revision</th></tr>{rows}</table>"
        )

    # ---- reading ---------------------------------------------------------------------
    def _resolve(
        self, variant: str, hook: HookSite | str, position: str | Position | None
    ) -> tuple[HookSite, str]:
        if variant not in self.variants:
            raise CacheError(
                f"Variant {variant!r} is not in this activation set. Variants collected: {self.variants}."
            )
        site = HookSite.parse(hook)
        if site not in self.hooks:
            raise HookError(f"Hook {site.key!r} was not collected. Collected: {[h.key for h in self.hooks]}.")
        if position is None:
            if len(self.positions) != 1:
                raise PositionError(
                    f"This set has several positions {list(self.positions)}; pass position= to choose one."
                )
            pos = self.positions[0]
        else:
            pos = position.key if isinstance(position, Position) else parse_positions(position)[0].key
        if pos not in self.positions:
            raise PositionError(f"Position {pos!r} was not collected. Collected: {list(self.positions)}.")
        return site, pos

    def _shards(self, variant: str) -> list[Path]:
        n = int(self.meta["n_shards"])
        return [self.root / variant / f"shard_{i:05d}.safetensors" for i in range(n)]

    def get_tokens(
        self, variant: str, hook: HookSite | str, position: str | Position | None = None
    ) -> tuple[Float[torch.Tensor, "row d_model"], Int[torch.Tensor, " row"]]:
        """Every token row at ``position`` and the index (into :attr:`prompt_ids`) of its prompt."""
        site, pos = self._resolve(variant, hook, position)
        datas, owners = [], []
        base = 0
        for path in self._shards(variant):
            with safe_open(str(path), framework="pt") as fh:
                datas.append(fh.get_tensor(_data_key(site, pos)))
                off = fh.get_tensor(_offsets_key(pos))
            counts = off[1:] - off[:-1]
            owners.append(torch.repeat_interleave(torch.arange(base, base + len(counts)), counts))
            base += len(counts)
        return torch.cat(datas), torch.cat(owners)

    def get(
        self,
        variant: str,
        hook: HookSite | str,
        position: str | Position | None = None,
        *,
        reduce: str = "mean",
    ) -> Float[torch.Tensor, "prompt d_model"]:
        """One row per prompt. Multi-token positions are reduced by ``mean`` (or ``first``/``last``)."""
        rows, owner = self.get_tokens(variant, hook, position)
        n = len(self)
        if rows.shape[0] == n and torch.equal(owner, torch.arange(n)):
            return rows
        if reduce == "mean":
            out = torch.zeros(n, rows.shape[1], dtype=rows.dtype)
            out.index_add_(0, owner, rows)
            counts = torch.bincount(owner, minlength=n).clamp(min=1).to(rows.dtype)
            return out / counts[:, None]
        if reduce in ("first", "last"):
            idx = torch.zeros(n, dtype=torch.long)
            order = torch.arange(len(owner))
            if reduce == "first":
                idx.scatter_reduce_(0, owner, order, reduce="amin", include_self=False)
            else:
                idx.scatter_reduce_(0, owner, order, reduce="amax", include_self=False)
            return rows[idx]
        raise PositionError(f"reduce must be 'mean', 'first' or 'last', got {reduce!r}.")

    def iter_shards(
        self, variant: str, hook: HookSite | str, position: str | Position | None = None
    ) -> Iterable[Float[torch.Tensor, "row d_model"]]:
        """Token rows shard by shard (bounded memory, for SAE training on large stores)."""
        site, pos = self._resolve(variant, hook, position)
        for path in self._shards(variant):
            with safe_open(str(path), framework="pt") as fh:
                yield fh.get_tensor(_data_key(site, pos))

    # ---- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> ActivationSet:
        """Copy the store to ``directory`` and return the copy."""
        directory = Path(directory)
        if directory.resolve() == self.root.resolve():
            return self
        if directory.exists() and any(directory.iterdir()):
            raise CacheError(
                f"Refusing to save into non-empty folder {str(directory)!r}; choose an empty one."
            )
        shutil.copytree(self.root, directory, dirs_exist_ok=True)
        return ActivationSet.load(directory)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True) -> ActivationSet:
        """Open a store; with ``verify`` every shard's size and checksum is checked."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise CacheError(f"No activation store at {str(directory)!r} (meta.json missing).")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise CacheError(
                f"Activation store {str(directory)!r} has format {meta.get('format')!r}; this kit reads "
                f"format {FORMAT_VERSION}. Recollect it."
            )
        acts = cls(directory, meta)
        if verify:
            for v in acts.variants:
                for i in range(int(meta["n_shards"])):
                    if not _shard_valid(directory / v, i):
                        raise CacheError(
                            f"Shard {i} of variant {v!r} in {str(directory)!r} is missing, truncated or corrupt "
                            "(size or sha256 differs from its sidecar). Rerun collect_activations with the "
                            "same out= to rebuild it."
                        )
        return acts


def _write_shard(
    vdir: Path, si: int, tensors: dict[str, torch.Tensor], variant: str, lo: int, hi: int
) -> None:
    """Serialise once, hash the bytes in memory, write to a temp file and rename: a killed run
    leaves no half shard under the real name, and the sidecar (written last) is the proof of
    completeness that resume and :meth:`ActivationSet.load` check (size + sha256)."""
    path = vdir / f"shard_{si:05d}.safetensors"
    tmp = vdir / f".shard_{si:05d}.safetensors.tmp"
    # save_file streams the tensors to disk (no whole-shard bytes object)
    save_file(tensors, str(tmp), metadata={"variant": variant, "start": str(lo), "end": str(hi)})
    size = tmp.stat().st_size
    info = {"start": lo, "end": hi, "bytes": size, "sha256": _written_sha256(tmp, tensors, size)}
    os.replace(tmp, path)
    _atomic_json(vdir / f"shard_{si:05d}.json", info)


#: The dtypes an activation store can be written in (``store_dtype=``).
STORE_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _store_dtype(store_dtype: str | torch.dtype | None, model_dtype: torch.dtype) -> torch.dtype:
    """The store's dtype: the model's for ``None``, else one of :data:`STORE_DTYPES`."""
    if store_dtype is None:
        return model_dtype
    by_dtype = {v: k for k, v in STORE_DTYPES.items()}
    if isinstance(store_dtype, torch.dtype) and store_dtype in by_dtype:
        return store_dtype
    if isinstance(store_dtype, str) and store_dtype in STORE_DTYPES:
        return STORE_DTYPES[store_dtype]
    raise TaskError(
        f"store_dtype must be one of {list(STORE_DTYPES)} (or None: the model's dtype, "
        f"{str(model_dtype).replace('torch.', '')}), got {store_dtype!r}. Example: store_dtype='bfloat16'."
    )


def _fingerprint(meta: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "format",
        "task_hash",
        "hooks",
        "positions",
        "text",
        "revisions",
        "dtype",
        "store_dtype",
        "prompt_ids",
        "shard_size",
        "protocols",
    )
    fp = {k: meta.get(k) for k in keys}
    fp["store_dtype"] = meta.get("store_dtype", meta.get("dtype"))  # a store from before store_dtype
    return fp


def collect_activations(
    family: ModelFamily,
    task: Task | str | Sequence[str],
    hooks: str | HookSite | Sequence[str | HookSite],
    positions: str | int | Position | Sequence[str | int | Position] = "last",
    *,
    variants: Sequence[str] | None = None,
    out: str | Path | None = None,
    batch_size: int = 16,
    device: str | None = None,
    text: str = "prompt",
    padding_side: str = "right",
    shard_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prompts: str = "variant",
    store_dtype: str | torch.dtype | None = None,
) -> ActivationSet:
    """Collect activations of each variant on the same prompts, streamed to ``out``.

    Args:
        family: the model family (variants are loaded one at a time).
        task: the prompts: a :class:`~probes.data.tasks.Task` (``task.spans`` resolves
            ``span:NAME`` positions), or a prompt or a list of prompts (ids ``p0, p1, ...``).
        hooks: hook sites, e.g. ``"resid_post:0-2"`` or ``[HookSite(1, "mlp_out")]``.
        positions: ``last``, ``all``, an index, ``match:TOKEN[:OFFSET:WINDOW]``, ``span:NAME``.
        variants: which variants (default: all, base first).
        out: folder of the store; a temporary folder if ``None``.
        batch_size: prompts per forward pass.
        device: load the variants on this device instead of ``family.device`` (explicit; the
            stored activations are always moved to CPU).
        text: ``"prompt"`` or ``"prompt+trace"`` (teacher-forced reference reasoning).
        padding_side: ``"right"`` or ``"left"``; results are identical either way.
        shard_size: prompts per shard (the memory bound of collection); by default as many as fit
            in :data:`SHARD_BYTES` (64 MiB) of activations, between 16 and 1024 prompts.
        overwrite: replace a store at ``out`` whose settings differ (otherwise an error).
        prompts: ``"variant"``: each variant reads the prompts through its own prompt protocol
            and tokenizer; ``"base"``: every variant reads the base's rendering and tokens. The
            same for a family without protocols.
        store_dtype: the dtype the activations are stored in: ``None`` (default) keeps the
            model's dtype; ``"bfloat16"`` or ``"float16"`` halve a float32 store (the rows are
            cast as they are gathered; ``meta.json`` records ``store_dtype`` beside the model's
            ``dtype``, and a store of another dtype at ``out`` is not reused).

    The steps: :func:`_plan` (everything fixed before a model loads), :func:`_open_store`
    (the fingerprint check), then :func:`_collect_variant` per variant, each shard filled in a
    :class:`ShardBuffer` under one :func:`capture` and written by a :class:`ShardWriter`.
    """
    from dataclasses import replace

    task = as_task(task)
    if device is not None and device != family.device:
        family = replace(family, device=device, device_map=None)
    if batch_size < 1 or (shard_size is not None and shard_size < 1):
        raise TaskError(f"batch_size and shard_size must be >= 1 (got {batch_size}, {shard_size}).")
    if prompts not in PROMPT_MODES:
        raise TaskError(f"prompts must be one of {PROMPT_MODES}, got {prompts!r}.")
    stored = _store_dtype(store_dtype, family.dtype)
    names = list(variants) if variants is not None else family.variants
    for v in names:
        family.spec(v)  # raises with the valid names
    plans, meta = _plan(
        family,
        task,
        hooks,
        positions,
        names,
        out=out,
        text=text,
        shard_size=shard_size,
        batch_size=batch_size,
        padding_side=padding_side,
        progress=progress,
        prompts=prompts,
        store_dtype=stored,
    )
    root = plans[names[0]].root
    _open_store(root, meta, overwrite=overwrite, variants=names)
    with ShardWriter() as writer:
        for variant in names:
            _collect_variant(family, variant, plans[variant], writer)
    return ActivationSet.load(root, verify=False)


# ------------------------------------------------------------------ plan
@dataclass(frozen=True)
class _Plan:
    """What a collection reads, fixed (and validated) before any model is loaded.

    ``resolved[prompt][position]`` are the token indices of that position in the prompt's
    *unpadded* tokens; ``shard_size`` prompts go to one shard. ``rows`` is the tokenisation the
    batches come from (``None``: ``texts`` are tokenised as written).
    """

    root: Path
    sites: tuple[HookSite, ...]
    pos_keys: tuple[str, ...]
    resolved: list[list[list[int]]]
    texts: list[str]
    tokenizer: Any
    shard_size: int
    batch_size: int
    padding_side: str
    progress: bool
    rows: PromptRows | None = None
    store_dtype: torch.dtype = torch.float32

    @property
    def n(self) -> int:
        return len(self.texts)

    def batch(self, b0: int, b1: int, device: str | torch.device) -> Batch:
        """The padded batch of prompts ``[b0, b1)``."""
        if self.rows is None:
            return encode(self.tokenizer, self.texts[b0:b1], padding_side=self.padding_side, device=device)
        return self.rows.batch(b0, b1, padding_side=self.padding_side, device=device)

    @property
    def n_shards(self) -> int:
        return (self.n + self.shard_size - 1) // self.shard_size

    def bounds(self, si: int) -> tuple[int, int]:
        """Prompts ``[lo, hi)`` of shard ``si``."""
        return si * self.shard_size, min(self.n, (si + 1) * self.shard_size)

    def prompts_in(self, shards: Sequence[int]) -> int:
        """How many prompts shards ``shards`` hold (the last shard may be short of ``shard_size``)."""
        return sum(hi - lo for lo, hi in map(self.bounds, shards))

    def batches(self, si: int) -> list[tuple[int, int]]:
        """Prompts ``[b0, b1)`` of each forward pass of shard ``si``."""
        lo, hi = self.bounds(si)
        return [(b0, min(hi, b0 + self.batch_size)) for b0 in range(lo, hi, self.batch_size)]


def _plan(
    family: ModelFamily,
    task: Task,
    hooks: str | HookSite | Sequence[str | HookSite],
    positions: str | int | Position | Sequence[str | int | Position],
    variants: list[str],
    *,
    out: str | Path | None,
    text: str,
    shard_size: int | None,
    batch_size: int,
    padding_side: str,
    progress: bool,
    prompts: str = "variant",
    store_dtype: torch.dtype | None = None,
) -> tuple[dict[str, _Plan], dict[str, Any]]:
    """Parse the sites and positions, tokenise every prompt once per distinct rendering
    (validating lengths and positions), choose the shard size; return each variant's plan and
    the store's ``meta.json``."""
    cfg = family.config(variants[0])
    sites = parse_hooks(hooks, n_layers=layer_count(cfg) or None)
    pos_list = parse_positions(positions)
    pos_keys = tuple(p.key for p in pos_list)
    if len(set(pos_keys)) != len(pos_keys):
        raise PositionError(f"Duplicate positions in {list(pos_keys)}; give each position once.")
    owner = {v: "base" if prompts == "base" else v for v in variants}  # whose rendering v reads
    protos = {v: family.protocol(owner[v]) for v in variants}
    needs_roles = any(p.needs_roles for p in pos_list)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="elicit-acts-"))
    root.mkdir(parents=True, exist_ok=True)
    rows: dict[str, PromptRows] = {}  # one tokenisation per distinct rendering
    for v in variants:
        # variants without a protocol share the prompts as written (variants[0]'s tokenizer, as before)
        key = "" if protos[v] is None and not needs_roles else owner[v]
        if key not in rows:
            rows[key] = prompt_rows(
                family, task, text=text, variant=owner[v], positions=pos_list, first=variants[0]
            )
        rows[v] = rows[key]
    if shard_size is None:
        shard_size = _auto_shard_size(
            rows[variants[0]].resolved, len(sites), store_dtype or family.dtype, cfg
        )
    plans = {
        v: _Plan(
            root,
            sites,
            pos_keys,
            rows[v].resolved,
            rows[v].texts,
            rows[v].tokenizer,
            shard_size,
            batch_size,
            padding_side,
            progress,
            rows[v],
            store_dtype or family.dtype,
        )
        for v in variants
    }
    meta = _store_meta(family, task, variants, plans[variants[0]], text, cfg)
    if any(p is not None for p in protos.values()) or needs_roles:
        meta["protocols"] = {v: (p.digest() if p is not None else "as written") for v, p in protos.items()}
        meta["prompts"] = prompts
    return plans, meta


@dataclass(frozen=True)
class PromptRows:
    """One tokenisation of a task's prompts: the texts, the tokenizer, the resolved positions
    (``[prompt][position] -> indices``), the ids a prompt protocol wrote (``None``: the
    texts are tokenised as written) and every prompt's token ids and strings (``ids``,
    ``tokens``: tokenised once, so a batch only pads; empty for a hand-made value, whose
    batches are then tokenised from ``texts``)."""

    texts: list[str]
    tokenizer: Any
    resolved: list[list[list[int]]]
    encoded: Encoded | None
    ids: Sequence[Sequence[int]] = ()
    tokens: tuple[tuple[str, ...], ...] = ()

    def batch(
        self, b0: int, b1: int, *, padding_side: str = "right", device: str | torch.device = "cpu"
    ) -> Batch:
        """The padded batch of prompts ``[b0, b1)`` (what ``encode(tokenizer, texts[b0:b1])`` gives)."""
        if not self.ids:
            return encode(self.tokenizer, self.texts[b0:b1], padding_side=padding_side, device=device)
        rows = self.ids[b0:b1]
        input_ids, mask = pad_rows(rows, pad_token_id(self.tokenizer), side=padding_side)
        return Batch(
            input_ids.to(device),
            mask.to(device),
            tuple(len(r) for r in rows),
            self.tokens[b0:b1],
            padding_side,
        )


def prompt_rows(
    family: ModelFamily,
    task: Task,
    *,
    text: str = "prompt",
    variant: str = "base",
    positions: Sequence[Position] = (),
    first: str | None = None,
) -> PromptRows:
    """The task's prompts as ``variant``'s prompt protocol renders them, over its tokenizer.

    Without a protocol they are tokenised as written by ``first``'s tokenizer (default:
    ``variant``'s), byte for byte what the kit did before protocols, unless a position needs
    token roles (``question_end``): then the plain protocol's tokens and roles are used."""
    cfg = family.config(variant)
    texts = texts_for(task, text)  # also checks that every trace is there
    proto = family.protocol(variant)
    if proto is None and not any(p.needs_roles for p in positions):
        tokenizer = family.tokenizer(first or variant)
        ids, tokens = tokenize(tokenizer, texts, max_length=context_length(cfg), ids=task.ids)
        resolved = _resolve_positions(task, tokens, positions)
        return PromptRows(texts, tokenizer, resolved, None, ids, tokens)
    if proto is None:
        proto = PromptProtocol(variant).with_tokenizer(family.tokenizer(variant))
    traces = [e.trace or "" for e in task.examples] if text == "prompt+trace" else None
    _, enc = proto.batch(task.prompts, suffixes=traces, max_length=context_length(cfg), ids=task.ids)
    rendered = [proto.render(p) for p in task.prompts]
    texts = [joined(r, t) for r, t in zip(rendered, traces, strict=True)] if traces is not None else rendered
    resolved = _resolve_positions(task, enc.tokens, positions, enc.roles)
    return PromptRows(texts, proto.tokenizer, resolved, enc, enc.ids, enc.tokens)


def _resolve_positions(
    task: Task,
    tokens: Sequence[Sequence[str]],
    pos_list: Sequence[Position],
    roles: Sequence[Sequence[str]] | None = None,
) -> list[list[list[int]]]:
    """``[prompt][position] -> indices`` into each prompt's unpadded tokens (``roles``: each
    token's role, from a prompt protocol)."""
    resolved: list[list[list[int]]] = []
    for i, (ex, toks) in enumerate(zip(task.examples, tokens, strict=True)):
        row = []
        for p in pos_list:
            try:
                row.append(p.resolve(toks, task.spans, roles[i] if roles is not None else None))
            except PositionError as err:
                raise PositionError(f"Prompt {ex.id!r}: {err}") from None
        resolved.append(row)
    return resolved


def _auto_shard_size(
    resolved: list[list[list[int]]], n_sites: int, dtype: torch.dtype, cfg: Mapping[str, Any]
) -> int:
    """As many prompts as fit in :data:`SHARD_BYTES` of activations, between 16 and 1024."""
    rows_per_prompt = sum(len(idx) for row in resolved for idx in row) / max(1, len(resolved))
    itemsize = torch.empty((), dtype=dtype).element_size()
    d_model_cfg = int(cfg.get("hidden_size", cfg.get("n_embd", 1)) or 1)
    per_prompt = max(1.0, rows_per_prompt * n_sites * d_model_cfg * itemsize)
    return int(min(1024, max(16, SHARD_BYTES // per_prompt)))


def _store_meta(
    family: ModelFamily, task: Task, variants: list[str], plan: _Plan, text: str, cfg: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "kit_version": _kit_version(),
        "family": family.name,
        "variants": variants,
        "revisions": {v: family.revision(v) for v in variants},
        "task_name": task.name,
        "task_hash": task.hash,
        "hooks": [s.key for s in plan.sites],
        "positions": list(plan.pos_keys),
        "text": text,
        "dtype": str(family.dtype).replace("torch.", ""),
        "store_dtype": str(plan.store_dtype).replace("torch.", ""),
        "tokenizer": getattr(plan.tokenizer, "name_or_path", ""),
        "prompt_ids": list(task.ids),
        "labels": list(task.labels),
        "splits": [e.split for e in task.examples],
        "shard_size": plan.shard_size,
        "n_shards": plan.n_shards,
        "d_model": int(cfg.get("hidden_size", cfg.get("n_embd", 0))),
    }


def _open_store(root: Path, meta: dict[str, Any], *, overwrite: bool, variants: list[str]) -> None:
    """Write ``meta.json``; a store of other settings at ``root`` is an error (or replaced with
    ``overwrite``), one of the same settings keeps the variants collected earlier (a variant
    may be added by a later call: its revision and protocol are compared only where both
    stores name the variant)."""
    meta_path = root / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        new_fp, old_fp = _fingerprint(meta), _fingerprint(old)
        # variants may be added to a store (one job per variant): revisions must agree on the
        # variants both name
        for key in ("revisions", "protocols"):
            new_k, old_k = new_fp[key] or {}, old_fp[key] or {}
            shared = sorted(set(new_k) & set(old_k))
            new_fp[key], old_fp[key] = {v: new_k[v] for v in shared}, {v: old_k[v] for v in shared}
        if old_fp != new_fp:
            if not overwrite:
                diff = [k for k in new_fp if old_fp.get(k) != new_fp.get(k)]
                raise CacheError(
                    f"{str(root)!r} holds activations collected with other settings (differing: {diff}). "
                    "Use another out= folder, or overwrite=True to replace it."
                )
            shutil.rmtree(root)
            root.mkdir(parents=True)
        else:
            # this call's variants in its order, then those collected only earlier
            meta["variants"] = list(dict.fromkeys(variants + list(old.get("variants", []))))
            meta["revisions"] = {**old.get("revisions", {}), **meta["revisions"]}
            if "protocols" in meta:
                meta["protocols"] = {**old.get("protocols", {}), **meta["protocols"]}
    _atomic_json(meta_path, meta)


# ------------------------------------------------------------------ run
class Capture:
    """The outputs of the hooked sites in one forward pass (see :func:`capture`)."""

    def __init__(self, model: Any, names: Sequence[str], variant: str, stop_at: int | None) -> None:
        self.model, self.names, self.variant, self.stop_at = model, list(names), variant, stop_at
        self.captured: dict[str, torch.Tensor] = {}

    def hook(self, key: str) -> Callable[[torch.Tensor, Any], torch.Tensor]:
        def hook_fn(x: torch.Tensor, hook: Any) -> torch.Tensor:
            self.captured[key] = x.detach()
            return x

        return hook_fn

    def run(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One forward pass (stopped after the last hooked layer); hook name -> output."""
        self.captured.clear()
        self.model(
            batch.input_ids,
            attention_mask=batch.attention_mask,
            stop_at_layer=self.stop_at,
            return_type=None if self.stop_at is None else "logits",
        )
        missing = [nm for nm in self.names if nm not in self.captured]
        if missing:
            raise HookError(
                f"Hook(s) {missing} did not fire on variant {self.variant!r}; the model's forward "
                "skips them. Choose other sites."
            )
        return self.captured


@contextmanager
def capture(model: Any, names: Sequence[str], *, variant: str, stop_at: int | None) -> Iterator[Capture]:
    """Hooks on ``names`` for the whole block; each :meth:`Capture.run` checks that all fired.

    The hooks are added once (per variant), not per batch: TransformerBridge rebuilds its alias
    map on every add/remove (~13 ms each, ~8% of a 20M-model batch; benchmarks/collect.py).
    They are removed, and the captured tensors dropped, however the block exits.
    """
    cap = Capture(model, names, variant, stop_at)
    try:
        with model.hooks(fwd_hooks=[(name, cap.hook(name)) for name in names]):
            yield cap
    finally:
        cap.captured.clear()


class ShardBuffer:
    """The preallocated tensors of one shard, filled forward pass by forward pass.

    The rows of every position are known from the plan, so each ``hook@position`` tensor is
    allocated once at its final size (no concatenation copy at the end); on CUDA it is pinned
    and filled by asynchronous copies (no stall per batch). The planned token indices of the
    shard's prompts are laid out once, as tensors on ``device`` (the model's), so a batch's row
    indices are a few vectorised operations there: no Python loop over rows and no
    host-to-device copy per batch. ``dtype`` is the store's dtype (the gathered rows are cast
    to it when it differs from the model's).
    """

    def __init__(
        self,
        plan: _Plan,
        si: int,
        names: Sequence[str],
        d_model: int,
        dtype: torch.dtype,
        pinned: bool,
        device: str | torch.device = "cpu",
    ) -> None:
        self.plan, self.names, self.d_model, self.pinned = plan, list(names), d_model, pinned
        self.lo, self.hi = plan.bounds(si)
        pos_keys = plan.pos_keys
        counts = {
            pk: torch.tensor([len(plan.resolved[i][k]) for i in range(self.lo, self.hi)], dtype=torch.long)
            for k, pk in enumerate(pos_keys)
        }
        #: prompt -> rows of each position (the shard's ``offsets@position``)
        self.offsets = {
            pk: torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), c]), 0) for pk, c in counts.items()
        }
        self._starts = {pk: o.tolist() for pk, o in self.offsets.items()}
        #: each row's token index (unpadded) and its prompt's index within the shard, on ``device``
        self._index = {
            pk: torch.tensor(
                [i for p in range(self.lo, self.hi) for i in plan.resolved[p][k]], dtype=torch.long
            ).to(device)
            for k, pk in enumerate(pos_keys)
        }
        self._owner = {
            pk: torch.repeat_interleave(torch.arange(self.hi - self.lo), c).to(device)
            for pk, c in counts.items()
        }
        self.data: dict[str, torch.Tensor] = {
            _data_key(s, p): torch.empty(int(self.offsets[p][-1]), d_model, dtype=dtype, pin_memory=pinned)
            for s in plan.sites
            for p in pos_keys
        }

    def rows(self, b0: int, b1: int, pk: str, batch: Batch) -> Int[torch.Tensor, " row"]:
        """Indices into ``[batch * pos]`` of position ``pk``'s rows of prompts ``[b0, b1)``,
        computed on the batch's device (its padding read from its attention mask)."""
        start, end = self._starts[pk][b0 - self.lo], self._starts[pk][b1 - self.lo]
        owner = self._owner[pk][start:end] - (b0 - self.lo)  # row of the batch
        width = batch.input_ids.shape[1]
        rows = owner * width + self._index[pk][start:end]
        if batch.padding_side == "left":
            pad = width - batch.attention_mask.sum(dim=1)  # each text's first real column
            rows = rows + pad[owner]
        return rows

    def add(self, b0: int, batch: Batch, captured: Mapping[str, torch.Tensor]) -> None:
        """Copy the rows of prompts ``b0 ..`` of ``batch``: one gather per (hook, position)."""
        b1 = b0 + len(batch.lengths)
        flat = {
            name: rearrange(captured[name], "batch pos d -> (batch pos) d", d=self.d_model)
            for name in self.names
        }
        for pk in self.plan.pos_keys:
            rows = self.rows(b0, b1, pk, batch)
            start, end = self._starts[pk][b0 - self.lo], self._starts[pk][b1 - self.lo]
            for site, name in zip(self.plan.sites, self.names, strict=True):
                self._gather(flat[name], rows, self.data[_data_key(site, pk)][start:end])

    def _gather(self, h: torch.Tensor, rows: torch.Tensor, dst: torch.Tensor) -> None:
        sel = rows if rows.device == h.device else rows.to(h.device)  # (device_map: layers on several GPUs)
        if h.device == dst.device and h.dtype == dst.dtype:
            torch.index_select(h, 0, sel, out=dst)  # gather straight into the shard buffer
        else:  # another device, or the store's dtype (cast by the copy, as asked)
            dst.copy_(h.index_select(0, sel), non_blocking=self.pinned)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The shard's tensors: ``hook@position`` rows and ``offsets@position`` (prompt -> rows)."""
        tensors: dict[str, torch.Tensor] = dict(self.data)
        for pk, off in self.offsets.items():
            tensors[_offsets_key(pk)] = off
        return tensors


class ShardWriter:
    """Writes shards on a background thread while the next one is computed (serialising,
    hashing and file writes release the GIL); at most one write is in flight."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="elicit-shard-writer")
        self._pending: Future[None] | None = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def submit(
        self, vdir: Path, si: int, tensors: dict[str, torch.Tensor], variant: str, lo: int, hi: int
    ) -> None:
        """Wait for the write in flight, then start writing shard ``si``."""
        self.wait()
        self._pending = self._pool.submit(_write_shard, vdir, si, tensors, variant, lo, hi)

    def wait(self) -> None:
        """Wait for the write in flight (its error, if any, is raised here)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()


def _collect_variant(family: ModelFamily, variant: str, plan: _Plan, writer: ShardWriter) -> None:
    """Run one variant over every missing shard of the store; ``complete.json`` records the run."""
    vdir = plan.root / variant
    vdir.mkdir(exist_ok=True)
    todo = [i for i in range(plan.n_shards) if not _shard_valid(vdir, i)]
    if not todo:
        if not (vdir / "complete.json").exists():
            _atomic_json(vdir / "complete.json", {"n_shards": plan.n_shards})
        return
    (vdir / "complete.json").unlink(missing_ok=True)
    t_open = time.perf_counter()
    with family.open(variant) as model:
        t_run = time.perf_counter()
        _run_shards(model, family, variant, plan, todo, writer)
        t_done = time.perf_counter()
    # provenance: how long this run took (loading vs. forward passes + writing), for this many prompts
    timing = {
        "load_s": round(t_run - t_open, 4),
        "collect_s": round(t_done - t_run, 4),
        "prompts": plan.prompts_in(todo),
    }
    _atomic_json(vdir / "complete.json", {"n_shards": plan.n_shards, "timing": timing})


def _run_shards(
    model: Any, family: ModelFamily, variant: str, plan: _Plan, todo: list[int], writer: ShardWriter
) -> None:
    """Fill and write shards ``todo`` with the open ``model``."""
    from tqdm.auto import tqdm

    names = validate_hooks(model, plan.sites)
    d_model = int(model.cfg.d_model)
    stop = max(s.layer for s in plan.sites) + 1
    stop_at = stop if stop < int(model.cfg.n_layers) else None
    pinned = torch.device(family.device).type == "cuda" and family.device_map is None
    # the prompts these shards hold: with a memory-sized shard (970 prompts, say) and 180
    # prompts, len(todo) * shard_size would count to 970
    bar = tqdm(
        total=plan.prompts_in(todo), desc=f"collect {variant}", unit="prompt", disable=not plan.progress
    )
    with torch.inference_mode(), capture(model, names, variant=variant, stop_at=stop_at) as cap:
        for si in todo:
            buf = ShardBuffer(plan, si, names, d_model, plan.store_dtype, pinned, family.device)
            for b0, b1 in plan.batches(si):
                batch = plan.batch(b0, b1, family.device)
                buf.add(b0, batch, cap.run(batch))
                bar.update(b1 - b0)
            if pinned:
                torch.cuda.synchronize()  # the asynchronous copies into this shard have landed
            writer.submit(plan.root / variant, si, buf.tensors(), variant, buf.lo, buf.hi)
            del buf
    writer.wait()
    bar.close()
