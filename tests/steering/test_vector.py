"""Steering vectors (steering.vector): each fit method on a hand-built contrast, persistence and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from probes.errors import ElicitError
from probes.models.hooks import HookSite
from steering.vector import METHODS, SteeringVector, VectorError, fit_vector, random_like


class _Acts:
    """A stand-in activation store with ``X[layer]`` rows (one per prompt) for one variant."""

    def __init__(self, X: dict[int, torch.Tensor], labels, splits=None) -> None:
        self.X, self.labels = X, tuple(labels)
        self.splits = tuple(splits) if splits is not None else ("train",) * len(self.labels)
        self.hooks = tuple(HookSite(layer, "resid_post") for layer in X)
        self.meta = {"family": "fam"}
        self.task_hash, self.positions = "h123", ("last",)

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, variant: str, hook, position=None) -> torch.Tensor:
        return self.X[HookSite.parse(hook).layer]


LABELS = ["pos", "pos", "neg", "neg"]
X0 = torch.tensor([[2.0, 1.0], [4.0, -1.0], [0.0, 1.0], [0.0, -1.0]])


def test_diff_means_by_hand_with_provenance() -> None:
    acts = _Acts({0: X0, 1: 2 * X0}, LABELS)
    v = fit_vector(acts, "base", "resid_post:0-1", ("pos", "neg"), name="v1")  # type: ignore[arg-type]
    assert v.directions[0].tolist() == [3.0, 0.0] and v.directions[1].tolist() == [6.0, 0.0]
    # mean residual norm over the fit prompts: (sqrt 5 + sqrt 17 + 1 + 1) / 4
    assert v.resid_norms[0] == pytest.approx((5**0.5 + 17**0.5 + 2) / 4)
    assert (v.layers, v.n, v.contrast, v.method, v.name) == ((0, 1), 4, ("pos", "neg"), "diff_means", "v1")
    assert (v.family, v.variant, v.task_hash, v.positions, v.site) == (
        "fam",
        "base",
        "h123",
        "last",
        "resid_post",
    )


def test_pca_by_hand() -> None:
    # against zero negatives the paired differences are the positives (2, 0), (4, 0): centred, ∓(1, 0)
    P, N = torch.tensor([[2.0, 0.0], [4.0, 0.0]]), torch.zeros(2, 2)
    v = fit_vector(
        _Acts({0: torch.cat([P, N])}, LABELS),
        "base",
        "resid_post.0",
        ("pos", "neg"),  # type: ignore[arg-type]
        method="pca",
        seed=0,
    )
    # pc = ±e1, signed with the mean difference (3, 0) and scaled to its projection: (3, 0)
    assert v.directions[0].tolist() == pytest.approx([3.0, 0.0], abs=1e-6)


def test_pca_is_repe_not_the_spread_around_the_contrast() -> None:
    """Zou et al.'s recipe on a toy case: the contrast (3 along e1) is smaller than the spread of the
    differences along e2 (std 1.5 per side: variance 4.5, below the contrast's 9 but the only
    variance left once centred), so PCA of the *centred* differences finds e2; RepE's
    uncentred PCA of randomly sign-flipped differences finds the contrast."""
    g = torch.Generator().manual_seed(0)
    n = 200
    noise_p = torch.randn(n, generator=g) * 1.5
    noise_n = torch.randn(n, generator=g) * 1.5
    P = torch.stack([torch.full((n,), 3.0), noise_p], 1)
    N = torch.stack([torch.zeros(n), noise_n], 1)
    labels = ["pos"] * n + ["neg"] * n
    v = fit_vector(
        _Acts({0: torch.cat([P, N])}, labels), "base", "resid_post.0", ("pos", "neg"), method="pca"
    )  # type: ignore[arg-type]
    dm = P.mean(0) - N.mean(0)
    u = v.directions[0] / v.directions[0].norm()
    assert float(u @ dm / dm.norm()) > 0.95
    diffs = (P - N).double()
    centred = torch.linalg.svd(diffs - diffs.mean(0))[2][0].float()
    assert abs(float(centred @ dm / dm.norm())) < 0.3  # the look-alike: the spread, not the contrast


def test_pca_pairs_prompts_of_the_same_question() -> None:
    """Ids Q/careful and Q/direct (the contrast recipes' ids) are matched pairs, whatever their order."""
    from steering.vector import _matched_pairs

    ids = ["q1/careful", "q2/careful", "q2/direct", "q1/direct"]
    pos, neg = np.array([1, 1, 0, 0], bool), np.array([0, 0, 1, 1], bool)
    pi, ni = _matched_pairs(ids, pos, neg)
    assert pi.tolist() == [0, 1] and ni.tolist() == [1, 0]  # q1 -> row 3 (2nd negative), q2 -> row 2
    assert _matched_pairs(["a", "b", "c", "d"], pos, neg) is None  # no question ids: seeded pairing
    assert _matched_pairs(["q1/c", "q1/c2", "q1/d", "q2/d"], pos, neg) is None  # not one of each


def test_probe_by_hand() -> None:
    # mirror-symmetric in the second axis: the logistic coefficient lies along the first one
    X = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    v = fit_vector(_Acts({0: X}, LABELS), "base", "resid_post.0", ("pos", "neg"), method="probe")  # type: ignore[arg-type]
    assert v.directions[0].tolist() == pytest.approx([2.0, 0.0], abs=1e-4)


def test_split_and_multi_label_sides_select_the_prompts() -> None:
    X = torch.cat([X0, torch.tensor([[100.0, 0.0], [0.0, 100.0]])])
    acts = _Acts({0: X}, [*LABELS, "pos2", "neg"], splits=["train"] * 4 + ["train", "test"])
    v = fit_vector(acts, "base", "resid_post.0", (["pos", "pos2"], "neg"), split="train")  # type: ignore[arg-type]
    # positives: rows 0, 1, 4 (mean (106/3, 0)); negatives: rows 2, 3 (row 5 is the test split)
    assert v.directions[0].tolist() == pytest.approx([106 / 3, 0.0])
    assert v.n == 5 and v.contrast == ("pos+pos2", "neg")


def test_fit_errors_name_the_bad_value() -> None:
    acts = _Acts({0: X0, 1: X0}, LABELS)
    assert set(METHODS) == {"diff_means", "pca", "probe"}
    with pytest.raises(VectorError, match="Unknown method 'mean'"):
        fit_vector(acts, "base", "resid_post.0", ("pos", "neg"), method="mean")  # type: ignore[arg-type]
    with pytest.raises(VectorError, match="share a site"):
        fit_vector(acts, "base", ["resid_post.0", "mlp_out.1"], ("pos", "neg"))  # type: ignore[arg-type]
    with pytest.raises(VectorError, match="3 labels for 4 prompts"):
        fit_vector(acts, "base", "resid_post.0", ("pos", "neg"), labels=["pos", "neg", "neg"])  # type: ignore[arg-type]
    with pytest.raises(ElicitError, match="0 positive and 2 negative"):
        fit_vector(acts, "base", "resid_post.0", ("other", "neg"))  # type: ignore[arg-type]


def test_vector_values() -> None:
    v = SteeringVector({1: torch.tensor([3.0, 4.0]), 2: torch.tensor([0.0, 2.0])})
    assert v.norm(1) == 5.0 and v.d_model == 2 and v.layers == (1, 2)
    assert v.normalized().directions[2].tolist() == [0.0, 1.0]
    assert v.select([2]).layers == (2,) and v.directions[1].tolist() == [3.0, 4.0]  # v itself unchanged
    with pytest.raises(VectorError, match=r"no layer\(s\) \[5\]"):
        v.select([5])
    with pytest.raises(VectorError, match="1-D"):
        SteeringVector.from_direction(torch.ones(2, 2), layer=0)
    r, again = random_like(v, seed=4), random_like(v, seed=4)
    assert r.norm(1) == pytest.approx(5.0) and r.norm(2) == pytest.approx(2.0)
    assert torch.equal(r.directions[1], again.directions[1]) and r.method == "random"
    g = torch.Generator().manual_seed(4)  # the reference: one seeded float64 draw per layer, in layer order
    ref = torch.randn(2, generator=g, dtype=torch.float64).float()
    assert r.directions[1].tolist() == pytest.approx((ref / ref.norm() * 5).tolist())


def test_save_load_round_trip(tmp_path: Path) -> None:
    v = fit_vector(
        _Acts({0: X0, 3: X0 + 1}, LABELS),
        "base",
        "resid_post:0,3",
        ("pos", "neg"),  # type: ignore[arg-type]
        method="pca",
        seed=2,
        name="saved",
    )
    path = v.save(tmp_path / "vec")
    assert path.name == "vec.safetensors" and (tmp_path / "vec.json").exists()
    for p in (tmp_path / "vec", tmp_path / "vec.json", path):
        back = SteeringVector.load(p)
        assert back.provenance() == v.provenance()
        assert all(torch.equal(back.directions[k], v.directions[k]) for k in v.layers)


def test_load_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(VectorError, match="No steering vector at .* SteeringVector.save"):
        SteeringVector.load(tmp_path / "none")
    v = SteeringVector.from_direction(torch.ones(3), layer=1)
    v.save(tmp_path / "v")
    meta = json.loads((tmp_path / "v.json").read_text())
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(VectorError, match="not valid JSON"):
        SteeringVector.load(tmp_path / "v")
    (tmp_path / "v.json").write_text(json.dumps({k: x for k, x in meta.items() if k not in ("site", "seed")}))
    with pytest.raises(VectorError, match=r"lacks provenance field\(s\) \['site', 'seed'\]"):
        SteeringVector.load(tmp_path / "v")
    (tmp_path / "v.json").write_text(json.dumps({**meta, "resid_norms": {"one": 1.0}}))
    with pytest.raises(VectorError, match="non-layer key"):
        SteeringVector.load(tmp_path / "v")
    (tmp_path / "v.json").write_text(json.dumps(meta))
    save_file({"weights.1": torch.ones(3)}, str(tmp_path / "v.safetensors"))
    with pytest.raises(VectorError, match="'weights.1' .* not named 'layer.<int>'"):
        SteeringVector.load(tmp_path / "v")
    (tmp_path / "v.safetensors").write_bytes(b"garbage")
    with pytest.raises(VectorError, match="Cannot read steering vector tensors"):
        SteeringVector.load(tmp_path / "v")
