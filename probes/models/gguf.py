"""A GGUF file as an ordinary Hugging Face checkpoint folder.

Quantised models are often shipped only as GGUF (llama.cpp's format). ``transformers`` reads one
with ``from_pretrained(folder, gguf_file=...)`` (needs the ``gguf`` package) and de-quantises its
tensors, but refuses to ``save_pretrained`` a model loaded that way (its config carries a
``quantization_config``). :func:`checkpoint_from_gguf` rebuilds the model from the same config
without that entry, loads the de-quantised state dict into it (every key must match) and saves
``config.json`` + ``model.safetensors`` + the tokenizer (its chat template included) into a
folder that the Bridge, the adapters and every analysis read like any other checkpoint.

The weights are the GGUF's de-quantised values (a Q4_1 file gives 4-bit-grid weights stored in
the dtype asked for): a checkpoint of *that* model, not of the original full-precision one.

    >>> checkpoint_from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2")  # doctest: +SKIP
    PosixPath('smollm2')
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from probes.errors import FamilyError

__all__ = ["checkpoint_from_gguf", "GGUF_SOURCE_FILE"]

#: written into the folder: which GGUF file (name, size, sha256) it was converted from
GGUF_SOURCE_FILE = "elicit_gguf_source.json"


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def checkpoint_from_gguf(
    gguf: str | os.PathLike[str], out: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32
) -> Path:
    """Convert the GGUF file ``gguf`` into a checkpoint folder ``out`` (weights in ``dtype``).

    The folder is written beside ``out`` and renamed into place when complete, so an interrupted
    conversion never leaves a half checkpoint; an existing complete folder converted from the same
    file (same sha256) is returned as it is."""
    src, out = Path(gguf).expanduser().resolve(), Path(out).expanduser()
    if not src.is_file():
        raise FamilyError(f"GGUF file {str(src)!r} does not exist.")
    digest = _sha256(src)
    marker = out / GGUF_SOURCE_FILE
    if marker.exists() and json.loads(marker.read_text()).get("sha256") == digest:
        return out
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as err:
        raise FamilyError(
            f"Reading {src.name!r} needs the `gguf` package: pip install gguf (it is in elicitkit's [test] extra)."
        ) from err
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(src.parent), src.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    model_type = settings.pop("model_type")
    config = AutoConfig.for_model(model_type, **settings)
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # tied output embeddings are not separate keys of the state dict
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise FamilyError(
            f"Converting {src.name!r}: the rebuilt {model_type} model does not match the GGUF's tensors "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})."
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = loaded.generation_config
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.eval().save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / GGUF_SOURCE_FILE).write_text(
        json.dumps(
            {"file": name, "bytes": src.stat().st_size, "sha256": digest, "dtype": str(dtype)}, indent=1
        )
        + "\n"
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
