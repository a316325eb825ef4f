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


def test_thirty_layers_get_thinned_ticks_that_do_not_overprint(tmp_path) -> None:
    """A SmolLM2-sized model (30 layers, 7 matrices each, 2 variants) at the figure's real size."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    w = pd.DataFrame(
        [
            {
                "variant": v,
                "layer": layer,
                "component": c,
                "rel_norm": float(rng.uniform(1e-4, 1e-2)),
                "stable_rank": float(rng.uniform(1, 50)),
                "overlap@4": float(rng.uniform(0, 1)),
            }
            for v in ("dpo", "copy")
            for layer in range(30)
            for c in ("q", "k", "v", "o", "gate", "up", "down")
        ]
    )
    fig = weight_geometry(w)
    fig.savefig(tmp_path / "weights.png", dpi=200)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for ax in fig.axes:
        ticks = [int(t) for t in ax.get_xticks()]
        assert ticks == [0, 4, 8, 12, 16, 20, 24, 28], ticks  # every 4th of 30, at most 8 labels
        boxes = [lab.get_window_extent(renderer) for lab in ax.get_xticklabels() if lab.get_text()]
        assert len(boxes) == len(ticks)
        assert all(
            a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False)
        )  # no label overprints the next
    assert (tmp_path / "weights.png").stat().st_size > 0
    plt.close(fig)
