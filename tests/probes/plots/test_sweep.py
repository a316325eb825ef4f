from __future__ import annotations

import matplotlib.pyplot as plt

from probes.plots.sweep import steering_sweep
from tests.probes.plots.conftest import synthetic_tables


def test_one_solid_line_per_layer_and_a_dashed_random_control() -> None:
    sweep = synthetic_tables()["sweep"]
    fig = steering_sweep(sweep, position="=")
    ax = fig.axes[0]
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(solid) == 2 and len(dashed) == 2  # layers 1 and 2
    want = sweep[(sweep.control == "steer") & (sweep.layer == 1)].groupby("alpha").correct.mean()
    assert list(solid[0].get_ydata()) == list(want.to_numpy())
    assert ax.get_xlabel() == "steering strength α (× vector)" and "accuracy" in ax.get_ylabel()
    plt.close(fig)
