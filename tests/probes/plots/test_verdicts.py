from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from probes.plots.verdicts import gap_recovered
from tests.probes.plots.conftest import synthetic_tables


@pytest.mark.parametrize("lo,hi", [(0.5, 0.35), (0.61, 0.27)])
def test_gap_recovered_draws_the_given_thresholds(lo: float, hi: float) -> None:
    fig = gap_recovered(synthetic_tables()["verdicts"], {"select_gr_lo": lo, "create_gr_hi": hi})
    ax = fig.axes[0]
    vertical = sorted(float(line.get_xdata()[0]) for line in ax.lines if line.get_linestyle() == ":")
    assert vertical == sorted([lo, hi])
    plt.close(fig)
