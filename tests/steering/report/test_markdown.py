"""report.md: the verdict table, the reasons, the rule's thresholds, every test row."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from probes.data.tasks import Example, Task
from steering.battery.config import BatteryConfig
from steering.battery.rows import BatteryRow, TestId, rows_frame
from steering.battery.verdict import THRESHOLDS, VariantVerdict, Verdict
from steering.report.markdown import markdown, what_would_change


def test_what_would_change_quotes_the_thresholds() -> None:
    sel = what_would_change({"verdict": "select"})
    assert f"below {THRESHOLDS['create_gr_hi']}" in sel and f"under {THRESHOLDS['select_gr_lo']}" in sel
    assert f">= {THRESHOLDS['select_gr_lo']}" in what_would_change({"verdict": "create"})
    inc = what_would_change({"verdict": "inconclusive"})
    assert f">= {THRESHOLDS['min_gap']}" in inc and f"< {THRESHOLDS['create_gr_hi']}" in inc


def test_markdown_renders_verdicts_and_rows() -> None:
    ref = Task("ref", (Example(id="a", prompt="p", answer="1", split="test"),))
    v = VariantVerdict(
        "sft",
        "ref",
        Verdict.SELECT,
        acc_base=0.2,
        acc_variant=0.9,
        steer_gr=0.8,
        steer_gr_lo=0.6,
        steer_gr_hi=0.95,
        n_test=40,
        reason="steering recovers the gap",
    )
    row = BatteryRow.make(TestId.DIRECTION, "sft", "ref", None, "match:=", 0.5, 0.1, 0.4, 0.6, 40, "cos")
    md = markdown(
        SimpleNamespace(name="fam"),
        pd.DataFrame([v.to_record()]),
        rows_frame([row]),  # type: ignore[arg-type]
        BatteryConfig(),
        ref,
    )
    assert md.startswith("# Select or create? — `fam`")
    [line] = [ln for ln in md.splitlines() if ln.startswith("| sft | ref | **select**")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3:5] == ["0.20", "0.90"] and cells[6] == "0.80 [0.60, 0.95]" and cells[-1] == "40"
    assert "- **sft** (select): steering recovers the gap. What would change it:" in md
    assert f"`select_gr_lo` = {THRESHOLDS['select_gr_lo']}" in md
    # the role column: the shipped discrimination table is not passed here, so uncalibrated
    [trow] = [ln for ln in md.splitlines() if ln.startswith("| direction | not calibrated | sft |")]
    assert "| ref |  | `match:=` | 0.50 | 0.10 | 0.40–0.60 | 40 | cos |" in trow  # layer -1 shown blank
    assert f"hash `{ref.hash}`" in md


def test_markdown_lists_the_warnings() -> None:
    from steering.report.caveats import Caveat

    ref = Task("ref", (Example(id="a", prompt="p", answer="1", split="test"),))
    v = VariantVerdict(
        "sft", "ref", Verdict.INCONCLUSIVE, acc_base=0.2, acc_variant=0.3, n_test=4, reason="r"
    )
    args = (SimpleNamespace(name="fam"), pd.DataFrame([v.to_record()]), rows_frame([]), BatteryConfig(), ref)
    quiet = markdown(*args)  # type: ignore[arg-type]
    assert "## Warnings\n\nNone of the report's checks fired" in quiet
    md = markdown(*args, [Caveat("budget", "15% of sft's completions were cut off")])  # type: ignore[arg-type]
    assert "## Warnings\n\n- **budget**: 15% of sft's completions were cut off\n" in md
    assert md.index("## Warnings") < md.index("## Why, and what would change it")
