"""Weight files on disk: the safetensors header (read without touching a tensor byte) and a
content digest of a checkpoint folder that the kit's caches key on.

It imports nothing from the kit but its errors, so that the family (which names a variant's
weights by their digest) and the checkpoint streamer can both use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from probes.errors import CheckpointError

__all__ = ["safetensors_header", "content_digest", "WEIGHT_GLOBS"]


def safetensors_header(file: str | os.PathLike[str]) -> tuple[bytes, dict[str, Any]]:
    """The header of a safetensors file: its bytes (the 8-byte little-endian length, then the
    JSON) and the parsed JSON (``__metadata__`` included). No tensor byte is read.

    >>> import tempfile, torch; from safetensors.torch import save_file
    >>> path = tempfile.mkdtemp() + "/t.safetensors"
    >>> save_file({"w": torch.zeros(2, 3)}, path)
    >>> raw, header = safetensors_header(path)
    >>> header["w"]["shape"], header["w"]["dtype"], int.from_bytes(raw[:8], "little") == len(raw) - 8
    ([2, 3], 'F32', True)
    """
    with open(file, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise CheckpointError(f"{str(file)!r} is not a safetensors file (shorter than 8 bytes).")
        body = fh.read(int.from_bytes(raw, "little"))
    try:
        header: dict[str, Any] = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(file)!r} has a corrupt safetensors header: {err}.") from err
    return raw + body, header


#: weight files a checkpoint folder's :func:`content_digest` reads
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")
_SAMPLES, _BLOCK = 16, 1 << 16


def content_digest(folder: str | os.PathLike[str]) -> str:
    """A digest of the weights in ``folder`` that changes when their content does.

    Per weight file (sorted by name): its name, the size of its tensor data, its safetensors
    header (tensor names, dtypes, shapes, offsets; ``__metadata__`` left out, as writers fill and
    order it freely) and 16 blocks of 64 KiB spread evenly over the tensor data. A retrained or perturbed checkpoint differs in
    every tensor, so the sampled blocks differ; a copy or a touched file keeps the digest. It
    reads about 1 MiB per file however large the checkpoint (a full hash of a 16 GB model takes
    a minute), which is what the kit's caches can afford to check on every run.
    """
    h = hashlib.sha256()
    files = sorted({p for g in WEIGHT_GLOBS for p in Path(folder).glob(g)})
    for path in files:
        size, start = path.stat().st_size, 0
        if path.suffix == ".safetensors":
            raw, parsed = safetensors_header(path)
            start = len(raw)  # sample the tensor bytes only, not the header's free-form metadata
            h.update(
                json.dumps({k: v for k, v in parsed.items() if k != "__metadata__"}, sort_keys=True).encode()
            )
        h.update(f"{path.name}\0{size - start}\0".encode())
        span = max(0, size - start - _BLOCK)
        with open(path, "rb") as fh:
            for i in range(_SAMPLES):
                fh.seek(start + span * i // (_SAMPLES - 1))
                h.update(fh.read(_BLOCK))
    return h.hexdigest()[:16]
