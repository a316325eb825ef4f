from __future__ import annotations

import matplotlib.pyplot as plt

from probes.plots.decoding import pass_at_k
from tests.probes.plots.conftest import synthetic_tables


def test_pass_at_k_log2_axis_one_line_per_variant() -> None:
    p = synthetic_tables()["passk"]
    fig = pass_at_k(p)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "pass@k (fraction of prompts)"
    assert len(ax.lines) == 3 and list(ax.lines[0].get_xdata()) == [1, 2, 4]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["base", "sft", "create"]
    plt.close(fig)
