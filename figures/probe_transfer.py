"""Figure `probe_transfer`: AUROC of the base's linear probe on each variant over the variant's own probe, per layer.

Reads saved result tables only (never runs a model):

    python figures/probe_transfer.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("probe_transfer", results, out):
        print(path)
