from __future__ import annotations

import matplotlib.pyplot as plt

from probes.plots.dictionaries import crosscoder_norms, sae_transfer
from tests.probes.plots.conftest import synthetic_tables


def test_crosscoder_titles_count_variant_only_latents() -> None:
    cc = synthetic_tables()["crosscoder"]
    fig = crosscoder_norms(cc)
    for ax, v in zip(fig.axes, ["sft", "create"], strict=False):
        x = cc[cc.variant == v].rel_norm
        assert ax.get_title() == f"{v}: {int((x > 0.9).sum())} variant-only / {len(x)} live"
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)


def test_sae_transfer_two_panels_labelled_by_variant() -> None:
    fig = sae_transfer(synthetic_tables()["sae_transfer"])
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "FVU (fraction of variance unexplained)",
        "CE loss recovered (fraction)",
    ]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "base (careful)",
        "sft (careful)",
        "create (careful)",
    ]
    plt.close(fig)
