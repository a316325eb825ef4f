from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from probes.plots.quality import information_gain
from tests.probes.plots.conftest import synthetic_tables


def test_information_gain_lines_for_the_focus_variants() -> None:
    ig = synthetic_tables()["ig_profile"]
    fig = information_gain(ig)
    ax = fig.axes[0]
    data_lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 3]
    assert len(data_lines) == 2 and list(data_lines[1].get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    assert ax.get_ylabel() == "IG_t (nats)" and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "base",
        "sft",
    ]
    plt.close(fig)
