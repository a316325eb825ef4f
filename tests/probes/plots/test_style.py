from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

from probes.plots.style import STYLE, style


def test_style_applies_inside_and_restores_rcparams_after() -> None:
    before = dict(mpl.rcParams)
    with style():
        assert mpl.rcParams["font.size"] == STYLE["font.size"] == 8
        assert mpl.rcParams["pdf.fonttype"] == 42
        fig, ax = plt.subplots()
        assert not ax.spines["top"].get_visible()
        plt.close(fig)
    after = dict(mpl.rcParams)
    changed = {k for k in before if before[k] != after[k] and k != "backend"}
    assert changed == set()
