"""One small report on the quick organism, shared by the battery modules' tests (slow lane)."""

from __future__ import annotations

from pathlib import Path

import pytest

from steering.battery.config import BatteryConfig

SMALL = BatteryConfig(
    max_dev=16,
    max_test=40,
    max_fit=64,
    alphas=(0.0, 0.25, 0.5),
    n_shuffles=5,
    dict_steps=250,
    dict_max_steps=500,
)


@pytest.fixture(scope="session")
def quick_report(organism_quick: Path, tmp_path_factory: pytest.TempPathFactory):
    from probes.models.family import load_family
    from steering.report import run_report

    fam = load_family(organism_quick)
    return run_report(
        fam,
        out=tmp_path_factory.mktemp("battery") / "out",
        config=SMALL,
        variants=["sft", "create"],
        figures=False,
        progress=False,
    )
