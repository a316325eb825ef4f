"""Figure `steering_sweep`: Accuracy of the steered base vs alpha per layer, with the norm-matched random direction (docs/design.md: random controls are mandatory).

Reads saved result tables only (never runs a model):

    python figures/steering_sweep.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("steering_sweep", results, out):
        print(path)
