"""Regenerate every figure whose tables exist (same as `elicit figures RESULTS --out OUT`).

python figures/make_all.py [RESULTS_DIR] [OUT_DIR]     # defaults: elicit-out, figures/gallery
"""

import sys

from probes.plots.render import render_all

if __name__ == "__main__":
    results = sys.argv[1] if len(sys.argv) > 1 else "elicit-out"
    out = sys.argv[2] if len(sys.argv) > 2 else "figures/gallery"
    for name, paths in render_all(results, out).items():
        print(name, *paths)
