"""Evaluating the organism family: greedy accuracy and scratchpad rate, free and forced.

For every variant x task x source (careful, direct, neutral) x split (``train`` strings,
``heldout`` strings = dev + test), the greedy completion is scored with the task's
scorer; ``forced=True`` rows prefill the reasoning format (``#``, docs/measures.md "Forced
format"). The table is tidy (one row per cell) and saved as parquet.

Evaluation reads the checkpoints with plain ``transformers`` (``LlamaForCausalLM``) and
batched greedy ``generate``: organism prompts of one task share a length, so no padding
is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from probes.data.tasks import Task
from probes.errors import FamilyError
from probes.models.family import load_family
from probes.organism.seeding import pinned_threads
from probes.organism.world import EOS_ID, FORMAT_PREFIX, PAD_ID, VOCAB, encode

__all__ = ["generate", "evaluate_model", "evaluate_family", "format_table", "EVAL_COLUMNS"]

EVAL_COLUMNS = ["variant", "task", "source", "split", "forced", "n", "accuracy", "scratchpad_rate"]


@torch.no_grad()
def generate(
    model,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    prefix: str | None = None,
    batch_size: int = 512,
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[str]:
    """Completions of ``prompts`` (greedy by default), text after the prompt (and ``prefix``).

    Prompts are grouped by token length so each batch is unpadded. The returned text
    starts with ``prefix`` when one was prefilled, so a scorer sees the whole completion.

    Not :func:`probes.models.generation.generate`: that one drives a TransformerLens bridge
    (its ``generate`` keywords) on left-padded batches and decodes with the tokenizer; this
    one drives a plain ``LlamaForCausalLM`` on unpadded same-length groups (no pad enters the
    attention and no attention mask is needed) and reads the
    word-level vocabulary directly. Sampling (``do_sample``) draws from the global torch RNG.
    """
    texts = [f"{p} {prefix}" if prefix else p for p in prompts]
    ids = [encode(t) for t in texts]
    out: list[str] = [""] * len(ids)
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        by_len.setdefault(len(x), []).append(i)
    for n, rows in by_len.items():
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            inp = torch.tensor([ids[i] for i in chunk])
            gen = model.generate(
                input_ids=inp,
                attention_mask=torch.ones_like(inp),
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_k=None,
                top_p=None,
                pad_token_id=PAD_ID,
                eos_token_id=EOS_ID,
            )[:, n:]
            for i, row in zip(chunk, gen.tolist(), strict=True):
                words = []
                for t in row:
                    if t in (EOS_ID, PAD_ID):
                        break
                    words.append(VOCAB[t])
                out[i] = " ".join(([prefix] if prefix else []) + words)
    return out


def evaluate_model(
    model, task: Task, *, variant: str, forced: Sequence[bool] = (False, True)
) -> pd.DataFrame:
    """Rows of :data:`EVAL_COLUMNS` for one loaded model on one task."""
    rows = []
    split_group = {"train": "train", "dev": "heldout", "test": "heldout"}
    for force in forced:
        comps = generate(
            model,
            task.prompts,
            task.max_new_tokens,
            prefix=(task.format_prefix or FORMAT_PREFIX) if force else None,
        )
        cells: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
        for ex, comp in zip(task.examples, comps, strict=True):
            sc = task.score(comp, ex.answer)
            key = (str(ex.label), split_group.get(str(ex.split), str(ex.split)))
            cells.setdefault(key, []).append((sc.correct, sc.used_format))
        for (source, split), vals in sorted(cells.items()):
            rows.append(
                {
                    "variant": variant,
                    "task": task.name,
                    "source": source,
                    "split": split,
                    "forced": force,
                    "n": len(vals),
                    "accuracy": sum(c for c, _ in vals) / len(vals),
                    "scratchpad_rate": sum(u for _, u in vals) / len(vals),
                }
            )
    return pd.DataFrame(rows, columns=EVAL_COLUMNS)


def tasks_to_evaluate(variant: str, controls: dict[str, str]) -> list[str]:
    """The tasks a variant is scored on: parity; the base also on every control task
    (``controls``: create variant -> its task), a create control also on its own."""
    todo = ["parity"]
    if variant == "base":
        todo += sorted(set(controls.values()))
    elif variant in controls:
        todo.append(controls[variant])
    return todo


def evaluate_family(
    folder: str | Path,
    *,
    variants: Sequence[str] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate every variant of an organism folder on the tasks it is judged on.

    Each variant is scored on ``parity`` (all three sources, both splits, free and forced);
    ``base`` and each create control are also scored on that control's task. Writes
    ``eval.parquet`` into the folder (or to ``out``) and returns the table.
    """
    import tomllib

    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM

    folder = Path(folder)
    fam = load_family(folder, check=False)
    data = tomllib.loads((folder / "family.toml").read_text())
    names = list(variants) if variants is not None else fam.variants
    unknown = [v for v in names if v not in fam.specs]
    if unknown:
        raise FamilyError(f"Organism {str(folder)!r} has no variant(s) {unknown}. Variants: {fam.variants}.")
    tasks = {name: fam.load_task(name) for name in fam.tasks}
    controls = {v: fam.task_name(v) for v in fam.variants if fam.task_name(v) not in (None, "parity")}
    frames = []
    # the thread count the family was trained and evaluated with; the caller's comes back after
    with pinned_threads(int(data.get("organism", {}).get("threads", 2))):
        for v in tqdm(names, desc="evaluate", disable=not progress, leave=False):
            model = LlamaForCausalLM.from_pretrained(str(fam.local_path(v)))
            model.eval()
            for t in tasks_to_evaluate(v, {k: str(c) for k, c in controls.items()}):
                frames.append(evaluate_model(model, tasks[t], variant=v))
            del model
    table = pd.concat(frames, ignore_index=True)
    target = Path(out) if out is not None else folder / "eval.parquet"
    table.to_parquet(target, index=False)
    return table


def format_table(table: pd.DataFrame, split: str = "heldout") -> str:
    """A compact text table: one row per variant, accuracy (scratchpad rate) per cell."""
    t = table[table["split"] == split]
    cols: list[tuple[str, str, bool]] = [
        ("parity", s, f) for f in (False, True) for s in ("careful", "direct", "neutral")
    ]
    for task in sorted(set(t["task"]) - {"parity"}):
        cols += [(task, "neutral", False), (task, "neutral", True)]
    head = ["variant"] + [
        f"{'' if task == 'parity' else task + ':'}{src[:4] if task == 'parity' else ''}{'+#' if f else ''}"
        for task, src, f in cols
    ]
    lines = []
    for v in dict.fromkeys(t["variant"]):
        row = [v]
        for task, src, f in cols:
            cell = t[(t.variant == v) & (t.task == task) & (t.source == src) & (t.forced == f)]
            row.append(
                "-" if cell.empty else f"{cell.accuracy.iloc[0]:.2f}({cell.scratchpad_rate.iloc[0]:.1f})"
            )
        lines.append(row)
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    title = f"{split} strings: accuracy (scratchpad rate); '+#' = format forced"
    return "\n".join([title, fmt.format(*head), *(fmt.format(*r) for r in lines)])
