"""Figure `information_gain`: Information gain per reasoning step for sft vs sft_answers vs dpo (Wu et al. 2025).

Reads saved result tables only (never runs a model):

    python figures/information_gain.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("information_gain", results, out):
        print(path)
