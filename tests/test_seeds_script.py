"""scripts/seeds.py: the calibration's AUROC, cut and tables on hand-built values."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

_spec = importlib.util.spec_from_file_location("seeds", Path(__file__).parents[1] / "scripts" / "seeds.py")
seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds)


def test_auroc_is_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    s, c = rng.normal(1, 1, 7).round(1), rng.normal(0, 1, 5).round(1)
    want = roc_auc_score(np.r_[np.ones(7), np.zeros(5)], np.r_[s, c])
    assert seeds._auroc(s, c) == pytest.approx(want)
    assert seeds._auroc(np.array([1.0]), np.array([1.0])) == 0.5  # a tie counts half


def test_best_cut_and_its_direction() -> None:
    # select above: any cut in (0.3, 0.8) separates; the midpoint of the gap is chosen
    cut, err, sign = seeds._best_cut(np.array([0.8, 0.9, 1.0]), np.array([0.0, 0.3]))
    assert (cut, err, sign) == (pytest.approx(0.55), 0.0, 1)
    # select below (an FVU, say)
    cut, err, sign = seeds._best_cut(np.array([0.1, 0.2]), np.array([0.5, 0.6]))
    assert sign == -1 and err == 0.0 and 0.2 < cut < 0.5
    # overlapping: one of five misplaced at best
    _, err, _ = seeds._best_cut(np.array([0.2, 0.8, 0.9]), np.array([0.3, 0.1]))
    assert err == pytest.approx(1 / 5)


def test_calibration_fits_on_train_seeds_and_checks_held_out() -> None:
    rows = []
    for seed in (0, 1, 2, 3):
        for v in seeds.SELECT:
            rows.append({"test": "t", "what": "w", "seed": seed, "variant": v, "value": 0.9})
        for v in seeds.CREATE:
            # held-out seed 3 puts one create control above the training cut
            rows.append(
                {"test": "t", "what": "w", "seed": seed, "variant": v, "value": 0.95 if seed == 3 else 0.1}
            )
    cal = seeds.calibration(pd.DataFrame(rows), train=[0, 1]).iloc[0]
    assert cal.train_error == 0.0 and 0.1 < cal.cut < 0.9
    n_sel, n_cre = len(seeds.SELECT), len(seeds.CREATE)
    # the two create controls of seed 3, of the held-out seeds' (2, 3) items
    assert cal.heldout_error == pytest.approx(2 / (2 * (n_sel + n_cre)))
    assert cal.n_select == 4 * n_sel and cal.n_create == 4 * n_cre and cal.auroc < 1.0
