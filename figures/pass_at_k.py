"""Figure `pass_at_k`: pass@k curves of base vs tuned variants, with the crossover k (Yue et al. 2025).

Reads saved result tables only (never runs a model):

    python figures/pass_at_k.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for path in render("pass_at_k", results, out):
        print(path)
