"""Probe transfer rows: effect = AUROC(base probe) / AUROC(own probe), null = 0.5 / AUROC(own)."""

from __future__ import annotations

import math

import pytest

from probes.data.tasks import Example, Task
from steering.battery.rows import TestId


@pytest.mark.slow
def test_probe_rows(quick_report) -> None:
    rows = [r for r in quick_report.rows if r.test is TestId.PROBE]
    assert sorted((r.variant, r.layer) for r in rows) == [(v, k) for v in ("create", "sft") for k in range(3)]
    for r in rows:
        own, base = r.value("auroc_own_probe"), r.value("auroc_base_probe")
        assert math.isclose(r.effect, base / own, rel_tol=1e-9) and math.isclose(
            r.null, 0.5 / own, rel_tol=1e-9
        )


def _contrast(words: dict[str, list[str]]) -> Task:
    """Careful / direct prompts over the same 8 questions, in the train, dev and test splits."""

    qs = ["a b", "c d", "e f", "g h", "i j", "k l", "m n", "o p"]
    ex = [
        Example(id=f"{s}-{side}-{i}", prompt=" ".join([q, *words[side]]), answer="1", label=side, split=s)
        for s in ("train", "dev", "test")
        for side in ("careful", "direct")
        for i, q in enumerate(qs)
    ]
    return Task("contrast", tuple(ex))


def test_embedding_separability_reads_the_wording(tiny_dir, tmp_path) -> None:
    """Sides that differ in a word are separable at the embedding (held-out AUROC 1); sides with the
    same words in another order are not (llama: resid_pre.0 is the token embedding, so the mean over
    the prompt is a bag of words: both sides give the same vectors, AUROC exactly 0.5)."""
    from probes.models.family import load_family
    from steering.battery.config import BatteryConfig
    from steering.battery.probe import embedding_separability

    fam = load_family({"base": str(tiny_dir("llama"))})
    cfg = BatteryConfig(max_fit=16, max_test=32)
    worded = _contrast({"careful": ["Wait", "#"], "direct": [">", "="]})
    auroc, n = embedding_separability(fam, worded, cfg, tmp_path / "w", progress=False)
    assert (auroc, n) == (1.0, 32)
    reordered = _contrast({"careful": ["Wait", "#"], "direct": ["#", "Wait"]})
    auroc, n = embedding_separability(fam, reordered, cfg, tmp_path / "r", progress=False)
    assert auroc == pytest.approx(0.5, abs=1e-9) and n == 32
