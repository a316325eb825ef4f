from __future__ import annotations

import matplotlib.pyplot as plt

from probes.plots.representation import direction_transfer, probe_transfer
from tests.probes.plots.conftest import synthetic_tables


def test_direction_transfer_one_panel_per_position_with_the_null_band() -> None:
    battery = synthetic_tables()["battery"]
    fig = direction_transfer(battery)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "position ="
    assert fig.axes[0].get_ylabel() == "cos(shift, base direction)"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(labels) == ["create", "null (p95)", "sft"]
    plt.close(fig)


def test_probe_transfer_reference_line_at_one() -> None:
    fig = probe_transfer(synthetic_tables()["battery"])
    ax = fig.axes[0]
    assert any(list(ln.get_ydata()) == [1.0, 1.0] for ln in ax.lines)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    plt.close(fig)
