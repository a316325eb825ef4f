"""Figure `gap_recovered`: Gap recovered per variant by steering the base and by forcing the format, with 95% CIs (Venhoff et al. 2025).

Reads saved result tables only (never runs a model):

    python figures/gap_recovered.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("gap_recovered", results, out):
        print(path)
