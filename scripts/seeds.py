"""The organism across seeds: each seed's verdict table, and the calibration of every battery test.

    python scripts/seeds.py --seeds 0 1 2 3 --train 0 1 --out elicit-seeds   # runs `elicit run` per seed
    python scripts/seeds.py --seeds 0 1 2 3 --train 0 1 --out elicit-seeds --no-run   # reports only

For each seed ``s`` the report is ``OUT/seed{s}/report.json`` (written by ``elicit run --seed s``
unless ``--no-run``). The script writes

- ``OUT/seeds.md``: per seed and variant, the verdict, the forced-format and steering gap recovered
  above chance, the best null's, the paired steered-minus-null difference with its interval, n and
  the share of random draws that recover the gap; then, per variant, the same numbers as the mean
  over seeds with the range (min-max) over seeds;
- ``docs/calibration.md`` (``--calibration``): for every battery test, one statistic per (seed,
  variant) of the organism's known controls (select: sft, dpo, rl, dpo_conf, sft_long, new_format;
  create: create, create_far), its distribution on each side, the AUROC of select vs create with a
  bootstrap interval over (seed, variant) items, the cut that best separates the controls of the
  ``--train`` seeds, and that cut's error rate on the held-out seeds;
- ``steering/battery/discrimination.json`` (``--discrimination``): the same AUROCs as the table
  ``elicit report`` writes into ``report.json`` / ``report.md`` (every test labelled as deciding,
  discriminating or descriptive).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: the organism's controls with a known answer
SELECT = ("sft", "dpo", "rl", "dpo_conf", "sft_long", "new_format")
CREATE = ("create", "create_far")
NO_GAIN = ("sft_answers", "unrelated")
#: half of its gain is in the base: the expected verdict is `inconclusive` (partial recovery)
PARTIAL = ("partial_create",)

#: verdict-record statistics (one value per variant) and what they are
VERDICT_STATS = {
    "forced_grc": "forced format: gap recovered above chance",
    "steer_grc": "steering: gap recovered above chance",
    "diff_vs_random": "steering minus the best null direction (accuracy, paired)",
    "max_cos_decision": "direction: max cosine of the shift with the base direction at `=`",
    "max_cos_computation": "direction: max cosine on the scratchpad",
    "rep_share": "representation verdict: computation-probe share at the tuned model's best layer",
}
#: the battery test each verdict-record statistic belongs to
STAT_TEST = {
    "forced_grc": "behavioural:forced_format",
    "steer_grc": "behavioural:steering",
    "diff_vs_random": "behavioural:steering",
    "max_cos_decision": "direction",
    "max_cos_computation": "direction",
    "rep_share": "computation_probe",
}


def run_seed(seed: int, out: Path) -> None:
    """``elicit run --seed SEED --out OUT/seedSEED`` in a fresh interpreter."""
    cmd = [
        sys.executable,
        "-m",
        "steering.cli",
        "run",
        "--seed",
        str(seed),
        "--out",
        str(out / f"seed{seed}"),
    ]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def load(out: Path, seeds: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdict records, test rows) of every seed's report.json, with a ``seed`` column."""
    verdicts, tests = [], []
    for s in seeds:
        path = out / f"seed{s}" / "report.json"
        if not path.exists():
            raise SystemExit(
                f"{path} is missing: run `elicit run --seed {s} --out {path.parent}` (or drop --no-run)."
            )
        rep = json.loads(path.read_text())
        for v, rec in rep["variants"].items():
            verdicts.append({"seed": s, "variant": v, **rec})
        tests += [{"seed": s, **t} for t in rep["tests"]]
    return pd.DataFrame(verdicts), pd.DataFrame(tests)


def _f(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _no_gap(v: pd.DataFrame) -> pd.Series:
    return v.reason.astype(str).str.startswith("no gap to explain")


def seeds_table(v: pd.DataFrame) -> str:
    """Markdown: every seed's verdicts, then each variant over seeds (mean, min-max). A variant with
    no gap to explain shows no gap-recovered numbers (their denominator is about 0)."""
    v = v.copy()
    cols = [
        "forced_grc",
        "steer_grc",
        "random_grc",
        "diff_vs_random",
        "diff_vs_random_lo",
        "diff_vs_random_hi",
    ]
    v[cols] = v[cols].astype(float)
    v.loc[_no_gap(v), cols + ["random_recover_share"]] = np.nan
    lines = [
        "| seed | variant | verdict | forced GR | steering GR | best null GR | steered − null [95% CI] | "
        "draws recovering | n test | n random | representation (share) | combined |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in v.sort_values(["seed", "variant"]).to_dict("records"):
        rep = f"{r.get('representation', '–')} ({_f(r.get('rep_share', np.nan))})"
        lines.append(
            f"| {r['seed']} | {r['variant']} | **{r['verdict']}** | {_f(r['forced_grc'])} | {_f(r['steer_grc'])} | "
            f"{_f(r['random_grc'])} | {_f(r['diff_vs_random'])} [{_f(r['diff_vs_random_lo'])}, "
            f"{_f(r['diff_vs_random_hi'])}] | {_f(r['random_recover_share'])} | {r['n_test']} | {r['n_random']} | "
            f"{rep} | {r.get('combined', '–')} |"
        )
    lines += [
        "",
        "| variant | verdicts over seeds | forced GR, mean (min–max) | steering GR | best null GR | steered − null | "
        "seeds with the interval above 0 | representation over seeds | combined over seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in v.groupby("variant", sort=False):
        counts = g.verdict.value_counts()
        verdicts = ", ".join(f"{k} ×{n}" for k, n in counts.items())

        def span(col: str, g: pd.DataFrame = g) -> str:
            x = g[col].astype(float)
            return "–" if x.isna().all() else f"{x.mean():.2f} ({x.min():.2f}–{x.max():.2f})"

        above = int((g.diff_vs_random_lo.astype(float) > 0).sum())

        def counts_of(col: str, g: pd.DataFrame = g) -> str:
            if col not in g:
                return "–"
            return ", ".join(f"{k} ×{n}" for k, n in g[col].value_counts().items())

        lines.append(
            f"| {name} | {verdicts} | {span('forced_grc')} | {span('steer_grc')} | {span('random_grc')} | "
            f"{span('diff_vs_random')} | {above} of {len(g)} | {counts_of('representation')} | {counts_of('combined')} |"
        )
    return "\n".join(lines) + "\n"


def statistics(v: pd.DataFrame, t: pd.DataFrame) -> pd.DataFrame:
    """One value per (test, seed, variant): verdict statistics, and each other test's mean effect."""
    rows = []
    for col, what in VERDICT_STATS.items():
        for r in v.to_dict("records"):
            if col not in r:
                continue
            rows.append(
                {"test": col, "what": what, "seed": r["seed"], "variant": r["variant"], "value": r[col]}
            )
    other = t[~t.test.str.startswith("behavioural")]
    for (test, seed, variant), g in other.groupby(["test", "seed", "variant"]):
        rows.append(
            {
                "test": test,
                "what": f"{test}: mean effect over its rows",
                "seed": seed,
                "variant": variant,
                "value": float(g.effect.astype(float).mean()),
            }
        )
    return pd.DataFrame(rows)


def _auroc(sel: np.ndarray, cre: np.ndarray) -> float:
    """P(select value > create value) + ½ P(tie): the Mann-Whitney form of the AUROC."""
    if len(sel) == 0 or len(cre) == 0:
        return float("nan")
    d = sel[:, None] - cre[None, :]
    return float((d > 0).mean() + 0.5 * (d == 0).mean())


def _best_cut(sel: np.ndarray, cre: np.ndarray) -> tuple[float, float, int]:
    """(cut, training error rate, sign): the midpoint cut minimising errors; sign +1 means select > cut.

    The direction is the one the training values' AUROC points to (select above when it is at
    least 0.5): where no cut beats putting everything on one side, the errors tie in both
    directions and would otherwise pick one arbitrarily."""
    values = np.unique(np.r_[sel, cre])
    cands = (
        np.r_[values[0] - 1, (values[:-1] + values[1:]) / 2, values[-1] + 1]
        if len(values)
        else np.array([0.0])
    )
    best = (float("inf"), 0.0, 1)
    for sign in (1,) if _auroc(sel, cre) >= 0.5 else (-1,):
        for c in cands:
            err = (np.sum(sign * (sel - c) <= 0) + np.sum(sign * (cre - c) > 0)) / (len(sel) + len(cre))
            if err < best[0]:
                best = (float(err), float(c), sign)
    return best[1], best[0], best[2]


def calibration(stats: pd.DataFrame, train: Sequence[int], seed: int = 0) -> pd.DataFrame:
    """Per test: the controls' distributions, AUROC [95% bootstrap], the training cut and its held-out error."""
    rng = np.random.default_rng(seed)
    out = []
    for test, g in stats.groupby("test", sort=False):
        g = g.dropna(subset=["value"])
        sel = g[g.variant.isin(SELECT)]
        cre = g[g.variant.isin(CREATE)]
        s, c = sel.value.to_numpy(float), cre.value.to_numpy(float)
        tr_s, tr_c = (
            sel[sel.seed.isin(train)].value.to_numpy(float),
            cre[cre.seed.isin(train)].value.to_numpy(float),
        )
        ho_s, ho_c = (
            sel[~sel.seed.isin(train)].value.to_numpy(float),
            cre[~cre.seed.isin(train)].value.to_numpy(float),
        )
        cut, tr_err, sign = _best_cut(tr_s, tr_c) if len(tr_s) and len(tr_c) else (np.nan, np.nan, 1)
        # the AUROC in the direction the training seeds chose (select above or below the cut)
        auc = _auroc(sign * s, sign * c)
        boots = [
            _auroc(sign * rng.choice(s, len(s)), sign * rng.choice(c, len(c)))
            for _ in range(2000)
            if len(s) and len(c)
        ]
        lo, hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
        n_ho = len(ho_s) + len(ho_c)
        ho_err = (
            (np.sum(sign * (ho_s - cut) <= 0) + np.sum(sign * (ho_c - cut) > 0)) / n_ho if n_ho else np.nan
        )
        out.append(
            {
                "test": test,
                "what": g.what.iloc[0] if len(g) else "",
                "n_select": len(s),
                "n_create": len(c),
                "select": f"{np.median(s):.2f} ({s.min():.2f}–{s.max():.2f})" if len(s) else "–",
                "create": f"{np.median(c):.2f} ({c.min():.2f}–{c.max():.2f})" if len(c) else "–",
                "auroc": auc,
                "auroc_lo": float(lo),
                "auroc_hi": float(hi),
                "cut": cut,
                "direction": "select above" if sign > 0 else "select below",
                "train_error": tr_err,
                "heldout_error": float(ho_err),
                "discriminates": bool(lo > 0.5) if not np.isnan(lo) else False,
            }
        )
    return pd.DataFrame(out)


def calibration_md(cal: pd.DataFrame, seeds: Sequence[int], train: Sequence[int]) -> str:
    held = [s for s in seeds if s not in train]
    lines = [
        "# Calibration of the battery on the organism's controls",
        "",
        "Written by `python scripts/seeds.py` from `elicit run` on organism seeds "
        f"{', '.join(map(str, seeds))}; cut points fit on seeds {', '.join(map(str, train))} and checked on "
        f"{', '.join(map(str, held)) or 'none'}. Select controls: {', '.join(SELECT)}; create controls: "
        f"{', '.join(CREATE)}. One value per (seed, variant). AUROC = P(a select control's value > a create "
        "control's), or below it where the training seeds put select below the cut, with a 95% bootstrap interval over those values; a test whose interval does not lie above "
        "0.5 does not discriminate on the organism and is descriptive. Caveats: the variants of one seed share "
        "that seed's base, so the items are not independent and the intervals are optimistic; the statistics "
        "of the non-behavioural tests are each test's mean effect over its rows (layers, positions), a "
        "summary chosen for the table, not a verdict rule. The verdict's own cut points "
        "(`steering.battery.verdict.THRESHOLDS`) are 0.5 (select) and 0.35 (create) on the gap-recovered "
        "statistics; the cut fitted here is what the controls alone would choose.",
        "",
        "| test | statistic | n select / create | select: median (range) | create: median (range) | AUROC [95% CI] | "
        "cut (train seeds) | train error | held-out error | discriminates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in cal.to_dict("records"):
        lines.append(
            f"| `{r['test']}` | {r['what']} | {r['n_select']} / {r['n_create']} | {r['select']} | {r['create']} | "
            f"{_f(r['auroc'])} [{_f(r['auroc_lo'])}, {_f(r['auroc_hi'])}] | {_f(r['cut'])} ({r['direction']}) | "
            f"{_f(r['train_error'])} | {_f(r['heldout_error'])} | {'yes' if r['discriminates'] else 'descriptive'} |"
        )
    return "\n".join(lines) + "\n"


def discrimination_json(cal: pd.DataFrame, seeds: Sequence[int], train: Sequence[int]) -> dict:
    """The table ``steering.battery.discrimination`` reads: per statistic, its test id, AUROC with
    interval, whether it discriminates, n, and the seeds."""
    stats = {}
    for r in cal.to_dict("records"):
        stats[r["test"]] = {
            "test": STAT_TEST.get(r["test"], r["test"]),
            "what": r["what"],
            **{k: (None if pd.isna(r[k]) else float(r[k])) for k in ("auroc", "auroc_lo", "auroc_hi")},
            "discriminates": bool(r["discriminates"]),
            "n_select": int(r["n_select"]),
            "n_create": int(r["n_create"]),
        }
    return {
        "format": 1,
        "written_by": "python scripts/seeds.py --discrimination",
        "seeds": list(seeds),
        "train": list(train),
        "select": list(SELECT),
        "create": list(CREATE),
        "statistics": stats,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--train", type=int, nargs="*", default=None, help="seeds the cut points are fit on")
    ap.add_argument("--out", type=Path, default=Path("elicit-seeds"))
    ap.add_argument("--run", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--calibration", type=Path, default=None, help="write the calibration table here")
    ap.add_argument(
        "--discrimination",
        type=Path,
        default=None,
        help="write the discrimination table the report reads here (steering/battery/discrimination.json)",
    )
    args = ap.parse_args(argv)
    if args.run:
        for s in args.seeds:
            if not (args.out / f"seed{s}" / "report.json").exists():
                run_seed(s, args.out)
    v, t = load(args.out, args.seeds)
    (args.out / "seeds.md").write_text(seeds_table(v))
    print(seeds_table(v))
    train = args.train if args.train is not None else args.seeds[: max(1, len(args.seeds) // 2)]
    cal = calibration(statistics(v, t), train)
    cal.to_csv(args.out / "calibration.csv", index=False)
    md = calibration_md(cal, args.seeds, train)
    if args.calibration is not None:
        args.calibration.write_text(md)
    if args.discrimination is not None:
        args.discrimination.write_text(
            json.dumps(discrimination_json(cal, args.seeds, train), indent=1) + "\n"
        )
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
