from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from probes.errors import ElicitError
from probes.plots.render import FIGURES, read_thresholds, render, render_all
from tests.probes.plots.conftest import THRESHOLDS, write_results


def test_render_all_writes_pdf_and_png_for_every_figure(results: Path, tmp_path: Path) -> None:
    done = render_all(results, tmp_path / "figs")
    assert sorted(done) == sorted(FIGURES)
    for name, paths in done.items():
        assert [p.name for p in paths] == [f"{name}.pdf", f"{name}.png"]
        assert paths[0].read_bytes().startswith(b"%PDF")
        assert paths[1].read_bytes().startswith(b"\x89PNG")


def test_render_all_skips_figures_whose_tables_are_missing(results: Path, tmp_path: Path) -> None:
    (results / "tables" / "passk.parquet").unlink()
    done = render_all(results, tmp_path / "figs")
    assert "pass_at_k" not in done and "gap_recovered" in done
    with pytest.raises(ElicitError, match=r"needs table\(s\) \['passk'\]"):
        render("pass_at_k", results, tmp_path / "figs")


def test_unknown_figure_is_named() -> None:
    with pytest.raises(ElicitError, match="Unknown figure 'nope'"):
        render("nope", ".", ".")


def test_thresholds_come_from_report_json(results: Path) -> None:
    assert read_thresholds(results) == THRESHOLDS


def test_missing_report_json_names_the_file(tmp_path: Path) -> None:
    root = write_results(tmp_path / "r", thresholds=None)
    with pytest.raises(ElicitError, match=r"report\.json' is missing"):
        render("gap_recovered", root, tmp_path / "figs")
    # figures that do not draw thresholds still render without it
    assert render("verdict_summary", root, tmp_path / "figs")[0].exists()


def test_report_json_without_thresholds_is_a_clear_error(results: Path) -> None:
    (results / "report.json").write_text(json.dumps({"schema": 1}))
    with pytest.raises(ElicitError, match="no readable 'thresholds'"):
        read_thresholds(results)


def test_importing_the_plots_never_picks_a_backend() -> None:
    code = (
        "import matplotlib, sys\n"
        "import probes.plots.render, probes.plots.style\n"
        "print(matplotlib.rcParams._get_backend_or_none())\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "None"
