"""Figure `sae_transfer`: Base-SAE transfer: FVU and CE-loss recovered on each variant's activations (Kissane et al. 2024).

Reads saved result tables only (never runs a model):

    python figures/sae_transfer.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("sae_transfer", results, out):
        print(path)
