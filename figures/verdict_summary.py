"""Figure `verdict_summary`: Base vs variant accuracy per variant, coloured by the battery's verdict.

Reads saved result tables only (never runs a model):

    python figures/verdict_summary.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("verdict_summary", results, out):
        print(path)
