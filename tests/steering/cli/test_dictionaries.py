"""`elicit sae train` / `elicit crosscoder train`: the shared options, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from steering.cli import app
from steering.cli.dictionaries import _fit

runner = CliRunner()


@pytest.mark.parametrize("group", ["sae", "crosscoder"])
def test_missing_store_names_the_folder(group: str, tmp_path: Path) -> None:
    args = [
        group,
        "train",
        "--acts",
        str(tmp_path / "nope"),
        "--hook",
        "resid_post.1",
        "--out",
        str(tmp_path / "o"),
    ]
    res = runner.invoke(app, args + (["--variant", "sft"] if group == "crosscoder" else []))
    assert res.exit_code == 2 and "No activation store" in res.output and "nope" in res.output


@pytest.mark.parametrize("group", ["sae", "crosscoder"])
def test_both_commands_share_the_optimisation_options(group: str) -> None:
    res = runner.invoke(app, [group, "train", "--help"])
    text = " ".join(res.output.split())
    for opt in ("--d-sae", "--steps", "--batch-size", "--lr", "--seed", "--device"):
        assert opt in text, opt
    res = runner.invoke(
        app, [group, "train", "--acts", "a", "--hook", "h", "--out", "o", "--variant", "v", "--steps", "0"]
    )
    assert res.exit_code == 2 and "--steps" in res.output


def test_fit_keywords() -> None:
    assert _fit(None, 5, 8, 1e-3, 2, "cpu", Path("o")) == {
        "d_sae": None,
        "steps": 5,
        "batch_size": 8,
        "lr": 1e-3,
        "seed": 2,
        "device": "cpu",
        "out": Path("o"),
    }


def test_sae_train_prints_the_trained_architecture_and_its_fit(tiny_dir, tmp_path: Path) -> None:
    """A new user trained batchtopk and was told JumpReLUSAE, with no quality figures."""
    from probes import load_family
    from probes.data.activations import collect_activations

    fam = load_family({"base": str(tiny_dir("llama"))})
    prompts = [f"a b c {w} = 1" for w in "defghijklmnop"]
    collect_activations(fam, prompts, "resid_post.1", "all", out=tmp_path / "acts", progress=False)
    args = ["sae", "train", "--acts", str(tmp_path / "acts"), "--hook", "resid_post.1"]
    args += [
        "--out",
        str(tmp_path / "sae"),
        "--steps",
        "5",
        "--batch-size",
        "16",
        "--d-sae",
        "32",
        "--k",
        "4",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.output.splitlines() if "SAE (saved" in ln]
    assert "batchtopk SAE (saved by sae_lens as jumprelu), d_sae=32: FVU " in line, line
    assert " L0 " in line and "dead latents" in line and "training rows" in line
