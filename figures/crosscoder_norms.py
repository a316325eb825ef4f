"""Figure `crosscoder_norms`: Crosscoder relative decoder norm histograms per variant (Lindsey et al. 2024; Minder et al. 2025).

Reads saved result tables only (never runs a model):

    python figures/crosscoder_norms.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("crosscoder_norms", results, out):
        print(path)
