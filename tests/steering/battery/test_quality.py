"""quality_tables runs end to end on a tiny family; every adapter row has the battery schema."""

from __future__ import annotations

from probes import Task, load_family
from steering.battery.quality import QualityConfig, quality_rows, quality_tables
from tests.steering.battery.test_rows import CORE_COLUMNS

SCHEMA = set(CORE_COLUMNS)


def test_quality_tables_tiny_family(tiny_dir, tmp_path) -> None:
    from tests.tiny import perturb_checkpoint

    base = tiny_dir("llama")
    tuned = perturb_checkpoint(base, tmp_path / "tuned", scale=0.02)
    recs = [
        {
            "id": f"p{i}",
            "prompt": f"N {b} =",
            "answer": str(b.split().count("1") % 2),
            "split": s,
            "label": "neutral",
        }
        for i, (b, s) in enumerate(
            [
                ("1 0", "test"),
                ("0 1 1", "test"),
                ("1 1", "test"),
                ("0 0 1", "test"),
                ("1 0 1 1 0", "ood_long"),
                ("0 1 0 0 1", "ood_long"),
            ]
        )
    ]
    task = Task.from_records("parity", recs, scorer="scratchpad", format_prefix="#", max_new_tokens=5)
    path = task.to_jsonl(tmp_path / "parity.jsonl")
    fam = load_family({"base": str(base), "tuned": str(tuned)})
    fam = fam.__class__(fam.name, fam.specs, tasks={"parity": {"path": str(path), **task.settings()}})
    cfg = QualityConfig(n_samples=2, cot_k=2, max_prompts=4, ood_task=None, probe_hook="resid_post:0")
    tables = quality_tables(fam, cfg, ood=task)
    assert set(tables["samples"]["variant"]) == {"base", "tuned"} and len(tables["samples"]) == 16
    assert list(tables["crossover"]["variant"]) == ["tuned"]
    assert set(tables["ood"]["ood_split"]) == {"ood_long"}
    rows = quality_rows(tables, task="parity")
    tests = {r.test.value for r in rows}
    assert {"passk_crossover", "cot_decoding", "information_gain", "early_answer_probe", "ood_drop"} <= tests
    for r in rows:
        assert set(r.to_record()) >= SCHEMA and r.verdict == "info"


def test_for_family_reads_the_battery_table_and_validates() -> None:
    from pathlib import Path

    import pytest

    from probes.errors import ElicitError

    shipped = Path(__file__).resolve().parents[3] / "configs" / "families" / "olmo2-1b.toml"
    fam = load_family(shipped, check=False)  # no weights read
    cfg = QualityConfig.for_family(fam, n_samples=4)
    assert (cfg.task, cfg.label, cfg.split, cfg.stages) == ("gsm8k", "neutral", "test", ("decoding",))
    assert (cfg.max_prompts, cfg.n_samples, cfg.cot_k, cfg.ood_task, cfg.max_new_tokens) == (
        16,
        4,
        4,
        None,
        None,
    )
    with pytest.raises(ElicitError, match=r"Unknown QualityConfig field\(s\) \['n_sample'\]"):
        QualityConfig.for_family(fam, n_sample=4)
    with pytest.raises(ElicitError, match=r"subset of \['decoding', 'quality'\]; got \['decode'\]"):
        QualityConfig(stages=("decode",))
    with pytest.raises(ElicitError, match="n_samples must be >= 1, got 0"):
        QualityConfig(n_samples=0)


def test_for_family_adds_the_quality_stage_where_the_step_format_is_known(tmp_path) -> None:
    # a scratchpad task (the organism's format) with an OOD companion: every stage, and the OOD task
    (tmp_path / "family.toml").write_text(
        'name = "scratch"\n[variants.base]\npath = "base"\n[variants.sft]\npath = "sft"\n'
        '[tasks.parity]\npath = "parity.jsonl"\nscorer = "scratchpad"\nformat_prefix = "#"\n'
        '[tasks.parity_ood]\npath = "ood.jsonl"\nscorer = "scratchpad"\nformat_prefix = "#"\n'
        '[battery]\nreference_task = "parity"\n'
    )
    fam = load_family(tmp_path / "family.toml", check=False)
    cfg = QualityConfig.for_family(fam)
    assert cfg.stages == ("decoding", "quality") and cfg.ood_task == "parity_ood"
    assert (cfg.fmt.head, cfg.fmt.separator, cfg.fmt.marker) == ("#", " ", ">")
    # without the OOD companion: no OOD task, the other stages all the same
    (tmp_path / "family.toml").write_text(
        (tmp_path / "family.toml").read_text().replace("[tasks.parity_ood]", "[tasks.other]")
    )
    assert QualityConfig.for_family(load_family(tmp_path / "family.toml", check=False)).ood_task is None
