from __future__ import annotations

import tomllib
from pathlib import Path

import probes
from probes.version import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_one_version_everywhere() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == declared == probes.__version__
    assert f"## {declared}" in (ROOT / "CHANGELOG.md").read_text()
