"""Figure `weight_geometry`: Weight geometry: relative update norm, stable rank and principal overlap per layer and matrix.

Reads saved result tables only (never runs a model):

    python figures/weight_geometry.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("weight_geometry", results, out):
        print(path)
