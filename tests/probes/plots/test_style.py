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


def test_layer_ticks_thin_out_many_layers() -> None:
    from probes.plots.style import layer_ticks

    fig, ax = plt.subplots()
    layer_ticks(ax, [3, 1, 2, 2])
    assert list(ax.get_xticks()) == [1, 2, 3]
    layer_ticks(ax, range(8))
    assert list(ax.get_xticks()) == list(range(8))
    layer_ticks(ax, range(30))
    ticks = [int(t) for t in ax.get_xticks()]
    assert ticks == list(range(0, 30, 4))  # 30 layers: every fourth, 28 ends it
    plt.close(fig)
