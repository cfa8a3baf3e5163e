"""Positive control (altitude band): test top-1 % per method and ratio, mean ± std over seeds,
P(y|loc) with the memory (network alone in brackets), the baselines beside them, then each
pre-training against Sup. Only and CSP (multiply) against each method, paired by seed.

    python alt_table.py 'runs/final7/a_seed*'       # a glob of experiment dirs
"""
import glob
import statistics as st
import sys
from collections import defaultdict

from csp_tf.experiments.results import read_results

LABELS = {"sup_grid": "Sup. Only (grid)", "mse": "MSE", "nce": "CSP-NCE-BL",
          "csp": "CSP-MC-BLD (reference τ)", "csp_multiply": "CSP-MC-BLD (logits cos·τ1)"}
cells = defaultdict(dict)  # (method, ratio) -> seed -> row
base = {}
for d in sorted(glob.glob(sys.argv[1])):
    for r in read_results(f"{d}/results.csv"):
        key = (r["method"], float(r["ratio"]))
        (cells[key].__setitem__(int(r["seed"]), r) if r["method"] in LABELS or r["method"] == "img_only"
         else base.__setitem__(key, r))
ratios = sorted({k[1] for k in cells})


def ms(values):
    values = [v for v in values if v == v]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{st.mean(values):.2f} ± {st.stdev(values):.2f}"


def col(m, r, c):
    return [float(x[c]) for x in cells[(m, r)].values() if x.get(c) not in (None, "")]


print("| method | " + " | ".join(f"{r * 100:g} % location (network alone)" for r in ratios) + " |")
print("|---|" + "---|" * len(ratios))
for m, label in LABELS.items():
    print(f"| {label} | " + " | ".join(
        f"{ms(col(m, r, 'location_top1'))} ({ms(col(m, r, 'location_network_top1'))})" for r in ratios) + " |")
for b, label in (("knn_sphere", "kNN on the sphere"), ("lr_sincos", "LR on sin/cos(lon, lat)")):
    print(f"| *{label}* | " + " | ".join(
        f"*{float(base[(b, r)]['top1']):.2f}*" if (b, r) in base else "–" for r in ratios) + " |")
print("| Img. Only (probe) / *LR on image features* | " + " | ".join(
    f"{ms(col('img_only', r, 'top1'))} / *{float(base[('lr_image', r)]['top1']):.2f}*"
    if ('lr_image', r) in base else ms(col('img_only', r, 'top1')) for r in ratios) + " |")
print("| fused (every method) | " + " | ".join(
    ", ".join(sorted({f"{v:.2f}" for m in LABELS for v in col(m, r, 'fused_top1')})) for r in ratios) + " |")
n = {len(cells[k]) for k in cells}
print(f"\nseeds per cell: {sorted(n)}\n")


def paired(a, b, r, c="location_top1"):
    sa, sb = cells[(a, r)], cells[(b, r)]
    d = [float(sa[s][c]) - float(sb[s][c]) for s in sorted(set(sa) & set(sb))]
    if len(d) < 2:
        return "–"
    mean, sd = st.mean(d), st.stdev(d)
    text = f"{mean:+.2f} ± {sd:.2f}"
    return f"**{text}**" if abs(mean) > sd else text


print("| location-only, paired by seed (points; bold: |mean| > std) | " + " | ".join(
    f"{r * 100:g} %" for r in ratios) + " |")
print("|---|" + "---|" * len(ratios))
for m in ("mse", "nce", "csp", "csp_multiply"):
    print(f"| {LABELS[m]} − Sup. Only | " + " | ".join(paired(m, "sup_grid", r) for r in ratios) + " |")
for m in ("mse", "nce", "csp"):
    print(f"| CSP (multiply) − {LABELS[m]} | " + " | ".join(paired("csp_multiply", m, r) for r in ratios) + " |")
print("| network alone: CSP (multiply) − Sup. Only | " + " | ".join(
    paired("csp_multiply", "sup_grid", r, "location_network_top1") for r in ratios) + " |")
