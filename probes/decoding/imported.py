"""Samples generated elsewhere (vLLM, an API, another harness), read from JSONL and scored here.

docs/measures.md, "Samples from elsewhere". Each line is one sample::

    {"prompt_id": "q17", "variant": "rl", "completion": "... The answer is 42."}

``prompt_id`` is an id of the task's questions (as the task file writes them), ``variant`` one
of the family's variants, ``completion`` the generated text (after the prompt); an optional
``sample`` (its index among the prompt's samples; default: the order of the lines). Each
completion is scored with the task's scorer, giving the table :func:`probes.decoding.sampling.
sample_task` gives (``seed`` is ``-1``: not drawn here), so pass@k and the crossover read it
unchanged.

    >>> samples = read_samples("vllm.jsonl", task, variants=family.variants)   # doctest: +SKIP
    >>> check_samples(samples, ks=[1, 8, 64])                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from probes.data.tasks import Task
from probes.decoding.sampling import SAMPLE_COLUMNS
from probes.errors import TaskError

__all__ = ["SAMPLE_KEYS", "read_samples", "sample_counts", "check_samples"]

#: The keys of one line: required, then optional.
SAMPLE_KEYS = ("prompt_id", "variant", "completion", "sample")
_REQUIRED = SAMPLE_KEYS[:3]


def _records(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise TaskError(f"No samples file {str(path)!r}; pass a JSONL with one sample per line.")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskError(f"{path}:{lineno} is not JSON ({err.msg}): {line[:60]!r}.") from None
        if not isinstance(rec, dict):
            raise TaskError(
                f"{path}:{lineno} is a {type(rec).__name__}, not an object with keys {_REQUIRED}."
            )
        missing = [k for k in _REQUIRED if k not in rec]
        unknown = sorted(set(rec) - set(SAMPLE_KEYS))
        if missing or unknown:
            raise TaskError(
                f"{path}:{lineno} has keys {sorted(rec)}: missing {missing}, unknown {unknown}. "
                f"A sample line takes {list(_REQUIRED)} and optionally 'sample'."
            )
        if rec.get("sample") is not None and (not isinstance(rec["sample"], int) or rec["sample"] < 0):
            raise TaskError(f"{path}:{lineno}: 'sample' must be an integer >= 0, got {rec['sample']!r}.")
        if not isinstance(rec["completion"], str):
            raise TaskError(f"{path}:{lineno}: 'completion' must be a string, got {rec['completion']!r}.")
        out.append(rec)
    if not out:
        raise TaskError(f"Samples file {str(path)!r} holds no samples.")
    return out


def read_samples(path: str | Path, task: Task, *, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Read ``path`` (JSONL, :data:`SAMPLE_KEYS`) and score every completion with ``task``'s scorer.

    An id that is not one of the task's, or a variant not in ``variants`` (when given), fails
    naming the bad values and the valid ones. Returns the columns of
    :data:`probes.decoding.sampling.SAMPLE_COLUMNS`.
    """
    path = Path(path)
    recs = _records(path)
    by_id = {e.id: e for e in task.examples}
    bad_ids = sorted({str(r["prompt_id"]) for r in recs} - set(by_id))
    if bad_ids:
        some = ", ".join(repr(i) for i in list(by_id)[:5])
        raise TaskError(
            f"{len(bad_ids)} prompt id(s) of {str(path)!r} are not in task {task.name!r}: {bad_ids[:10]}"
            f"{' ...' if len(bad_ids) > 10 else ''}. The task has {len(by_id)} ids ({some}"
            f"{', ...' if len(by_id) > 5 else ''}); "
            "write the ids of the task file (e.g. its 'id' field) into 'prompt_id'."
        )
    if variants is not None:
        bad_vs = sorted({str(r["variant"]) for r in recs} - set(variants))
        if bad_vs:
            raise TaskError(
                f"Variant(s) {bad_vs} of {str(path)!r} are not in the family; its variants are "
                f"{list(variants)}. Name each sample's variant as the family file does."
            )
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for r in recs:
        pid, variant = str(r["prompt_id"]), str(r["variant"])
        ex = by_id[pid]
        j = seen.get((variant, pid), 0)
        seen[(variant, pid)] = j + 1
        sc = task.score(str(r["completion"]), ex.answer)
        rows.append(
            {
                "variant": variant,
                "task": task.name,
                "prompt_id": pid,
                "label": ex.label,
                "split": ex.split,
                "sample": idx if isinstance(idx := r.get("sample"), int) else j,
                "seed": -1,
                "prompt": ex.prompt,
                "completion": r["completion"],
                "parsed": sc.parsed,
                "correct": bool(sc.correct),
                "used_format": bool(sc.used_format),
            }
        )
    df = pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
    dup = df.duplicated(["variant", "prompt_id", "sample"])
    if dup.any():
        r = df[dup].iloc[0]
        raise TaskError(
            f"Sample {r['sample']} of prompt {r['prompt_id']!r}, variant {r['variant']!r}, occurs twice in "
            f"{str(path)!r}; give each sample of a prompt its own 'sample' index, or leave 'sample' out."
        )
    return df


def sample_counts(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples per (variant, prompt): columns ``variant, prompt_id, n``."""
    return samples.groupby(["variant", "prompt_id"], sort=False).size().rename("n").reset_index()


def check_samples(samples: pd.DataFrame, ks: Sequence[int]) -> pd.DataFrame:
    """The per-prompt counts, after checking that every prompt has ``n >= max(ks)`` samples;
    otherwise fail naming the prompts that fall short (variant, id, n)."""
    counts = sample_counts(samples)
    k = max(ks)
    short = counts[counts["n"] < k]
    if len(short):
        listed = ", ".join(f"{r.variant}/{r.prompt_id} (n={r.n})" for r in short.head(10).itertuples())
        raise TaskError(
            f"pass@{k} needs at least {k} samples per prompt; {len(short)} of {len(counts)} (variant, "
            f"prompt) pairs have fewer: {listed}{' ...' if len(short) > 10 else ''}. Generate more "
            f"samples for them, or lower k to at most {int(counts['n'].min())}."
        )
    return counts
