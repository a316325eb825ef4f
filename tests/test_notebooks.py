"""The notebooks: each ``.ipynb`` is generated from its jupytext source ``notebooks/NN_name.py``
(percent format, linted with the code) and runs clean on the quick organism (nbclient).

Regenerate a notebook after editing its source (keeps cell ids and outputs):
``jupytext --to ipynb --update notebooks/NN_name.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
SOURCES = sorted(FOLDER.glob("*.py"))


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def test_notebooks_exist_and_each_has_its_source() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {
        "01_walkthrough",
        "02_steering_sweep",
        "03_sae_crosscoder",
        "04_weight_geometry",
        "05_bring_your_own_family",
        "06_real_family",
    } <= names
    assert names == {p.stem for p in SOURCES}, (
        "every notebook is generated from notebooks/<name>.py, and only those"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_equals_its_jupytext_source(source: Path) -> None:
    """The cells of the .ipynb are exactly those of its paired .py: they cannot drift apart."""
    want = jupytext.read(source)
    got = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert want.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", (
        "pair the source: formats ipynb,py:percent"
    )
    assert _cells(got) == _cells(want), (
        f"{source.with_suffix('.ipynb').name} differs from {source.name}; run "
        f"`jupytext --to ipynb --update notebooks/{source.name}`"
    )


def test_drift_is_detected(tmp_path: Path) -> None:
    """A cell edited in the .ipynb alone no longer equals the source."""
    source = SOURCES[0]
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.source += "\nprint('edited in the notebook only')"
    assert _cells(nb) != _cells(jupytext.read(source))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(
    path: Path,
    organism_quick: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("ELICIT_ORGANISM", str(organism_quick))
    if "real_family" in path.stem:  # the SmolLM2-135M family, built once per session
        monkeypatch.setenv("ELICIT_SMOLLM2", str(request.getfixturevalue("smollm2")))
        # the small report its test already ran (the notebook runs it itself when this is unset)
        monkeypatch.setenv("ELICIT_SMOLLM2_REPORT", str(request.getfixturevalue("smollm2_report")[0]))
    monkeypatch.setenv("ELICIT_NB_OUT", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(path.parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
