"""Countries with the place memory: test top-1 % per method and ratio, mean ± std over seeds, for
P(y|loc) with the memory (what ships), the network alone, and fused; the baselines beside them;
then CSP (multiply) against each method, paired by seed. Reads runs/final6/*/results.csv."""
import glob
import statistics as st
from collections import defaultdict

from csp_tf.experiments.results import read_results

O = "/work/main/runs/final6"
LABELS = {"sup_wrap": "Sup. Only (wrap)", "sup_grid": "Sup. Only (grid)", "mse": "MSE",
          "nce": "CSP-NCE-BL", "csp": "CSP-MC-BLD (reference τ)",
          "csp_multiply": "CSP-MC-BLD (logits cos·τ1)"}
cells = defaultdict(dict)  # (method, ratio) -> seed -> row
base = {}
for path in sorted(glob.glob(f"{O}/*/results.csv")):
    for r in read_results(path):
        key = (r["method"], float(r["ratio"]))
        if r["method"] in LABELS:
            cells[key][int(r["seed"])] = r
        else:
            base[key] = r
ratios = sorted({k[1] for k in cells})


def ms(values):
    values = [v for v in values if v == v]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1)"
    return f"{st.mean(values):.2f} ± {st.stdev(values):.2f}"


def mean(values):
    values = [v for v in values if v == v]
    return f"{st.mean(values):.2f}" if values else "–"


print("#### Location only: with the memory ± std (network alone); n seeds\n")
print("| method | " + " | ".join(f"{r * 100:g} %" for r in ratios) + " |")
print("|---|" + "---|" * len(ratios))
for m, label in LABELS.items():
    parts = []
    for r in ratios:
        rows_ = list(cells[(m, r)].values())
        if not rows_:
            parts.append("–")
            continue
        loc = ms([float(x["location_top1"]) for x in rows_]).replace(" (1)", "")
        net = mean([float(x["location_network_top1"]) for x in rows_])
        parts.append(f"{loc} ({net}; {len(rows_)})")
    print(f"| {label} | " + " | ".join(parts) + " |")
for b in ("knn_sphere", "lr_sincos"):
    print(f"| *{b}* | " + " | ".join(
        f"*{float(base[(b, r)]['top1']):.2f}*" if (b, r) in base else "–" for r in ratios) + " |")

for column, title in (("location_top1", "P(y|loc) with the place memory (shipped)"),
                      ("location_network_top1", "the network alone (no memory)"),
                      ("fused_top1", "fused, with the memory")):
    print(f"\n#### {title}\n")
    print("| method | " + " | ".join(f"{r * 100:g} %" for r in ratios) + " |")
    print("|---|" + "---|" * len(ratios))
    for m, label in LABELS.items():
        print(f"| {label} | " + " | ".join(
            ms([float(row[column]) for row in cells[(m, r)].values()]) for r in ratios) + " |")
    for b, col in (("knn_sphere", "top1"), ("lr_sincos", "top1"), ("lr_image_x_knn", "top1")):
        if column != "fused_top1" and b == "lr_image_x_knn":
            continue
        if column == "fused_top1" and b != "lr_image_x_knn":
            continue
        print(f"| *{b}* | " + " | ".join(
            f"*{float(base[(b, r)][col]):.2f}*" if (b, r) in base else "–" for r in ratios) + " |")

print("\n#### n seeds; memory over the network, location-only (paired, points)\n")
for (m, r), by_seed in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    gains = [float(x["location_top1"]) - float(x["location_network_top1"]) for x in by_seed.values()]
    knn = float(base[("knn_sphere", r)]["top1"]) if ("knn_sphere", r) in base else float("nan")
    loc = [float(x["location_top1"]) for x in by_seed.values()]
    print(f"{r:g} {m}: n={len(gains)} memory gain {ms(gains)}; vs kNN {ms([v - knn for v in loc])}")

print("\n#### CSP (multiply) against each method, paired by seed (location / fused)\n")
for r in ratios:
    ref = cells.get(("csp_multiply", r), {})
    for m in LABELS:
        if m == "csp_multiply" or (m, r) not in cells:
            continue
        seeds = sorted(set(ref) & set(cells[(m, r)]))
        if not seeds:
            continue
        d = {c: [float(ref[s][c]) - float(cells[(m, r)][s][c]) for s in seeds]
             for c in ("location_top1", "fused_top1")}
        print(f"{r:g} vs {m}: n={len(seeds)} location {ms(d['location_top1'])} / fused {ms(d['fused_top1'])}")
