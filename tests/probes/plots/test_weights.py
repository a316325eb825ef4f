from __future__ import annotations

import matplotlib.pyplot as plt

from probes.plots.weights import weight_geometry
from tests.probes.plots.conftest import synthetic_tables


def test_three_panels_log_norm_and_per_layer_means() -> None:
    w = synthetic_tables()["weights"]
    fig = weight_geometry(w)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == [
        "‖ΔW‖_F / ‖W‖_F",
        "stable rank of ΔW",
        "overlap@4 (top-k overlap)",
    ]
    assert axes[0].get_yscale() == "log"
    want = w[w.variant == "sft"].groupby("layer").rel_norm.mean().to_numpy()
    assert list(axes[0].lines[0].get_ydata()) == list(want)
    plt.close(fig)
