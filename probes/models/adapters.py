"""PEFT adapter variants: a variant folder holding ``adapter_config.json`` (a LoRA, say) is loaded
onto the family's base checkpoint with ``peft`` and merged into an ordinary checkpoint folder, which
everything else (the Bridge, weight geometry, the caches) reads like any other variant.

The merged folder lives under ``$ELICIT_CACHE/merged`` (default ``~/.cache/elicitkit/merged``),
named by the content digests of the adapter and the base, so it is built once and a retrained
adapter or base is never served stale. The merge runs in float32 and the merged weights are saved
in the base checkpoint's own dtype (``config.json``'s ``dtype`` / ``torch_dtype``): nothing changes
dtype silently.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from probes.errors import FamilyError
from probes.models.files import content_digest

__all__ = ["is_adapter", "merged_checkpoint", "merged_cache_root"]

#: files of an adapter folder that are the tokenizer (copied into the merged folder when present)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "generation_config.json",
)


def is_adapter(folder: str | Path) -> bool:
    """Whether ``folder`` is a PEFT adapter (``adapter_config.json``) rather than a full checkpoint."""
    path = Path(folder).expanduser()
    return path.is_dir() and (path / "adapter_config.json").exists() and not (path / "config.json").exists()


def merged_cache_root() -> Path:
    """Where merged adapters are kept: ``$ELICIT_CACHE/merged`` or ``~/.cache/elicitkit/merged``."""
    return Path(os.environ.get("ELICIT_CACHE", "~/.cache/elicitkit")).expanduser() / "merged"


def _base_dtype(base: Path) -> torch.dtype:
    cfg = json.loads((base / "config.json").read_text())
    name = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    dtype = getattr(torch, str(name), None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def merged_checkpoint(adapter: str | Path, base: str | Path, cache: str | Path | None = None) -> Path:
    """The folder of ``adapter`` merged onto ``base`` (built on first use, then reused).

    Raises :class:`FamilyError` naming the fix when ``peft`` is missing or the adapter does not fit
    the base."""
    adapter, base = Path(adapter).expanduser().resolve(), Path(base).expanduser().resolve()
    key = f"{content_digest(adapter)[:16]}-{content_digest(base)[:16]}"
    out = Path(cache).expanduser() if cache is not None else merged_cache_root()
    final = out / f"{adapter.name}-{key}"
    if (final / "config.json").exists():
        return final
    try:
        from peft import PeftModel
    except ImportError as err:  # pragma: no cover - peft is a dependency
        raise FamilyError(
            f"Variant folder {str(adapter)!r} is a PEFT adapter; install peft to load it."
        ) from err
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    try:
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except Exception as err:
        raise FamilyError(
            f"Could not load adapter {str(adapter)!r} onto base {str(base)!r}: {err}. An adapter variant "
            "is merged onto the family's `base` variant; check that it was trained from that checkpoint."
        ) from err
    merged = merged.to(_base_dtype(base))
    tmp = out / f".{final.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    for name in _TOKENIZER_FILES:
        src = adapter / name if (adapter / name).exists() else base / name
        if src.exists():
            shutil.copy2(src, tmp / name)
    (tmp / "elicit_adapter.json").write_text(
        json.dumps({"adapter": str(adapter), "base": str(base), "key": key}, indent=1) + "\n"
    )
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final
