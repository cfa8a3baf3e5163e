"""The control-set table: mean ± std over seeds, location-only and fused, with the baselines."""
import statistics as st
from csp_tf.experiments.results import read_results, paired_gain
O = "/work/main/runs/final5"
rows = [r for r in read_results(f"{O}/h_seed0/results.csv") if float(r["ratio"]) < 0.2]
for d in ("h_seed1", "h_seed2", "hb_seed0", "hb_seed1", "hb_seed2"):
    try:
        rows += read_results(f"{O}/{d}/results.csv")
    except FileNotFoundError:
        pass
ratios = sorted({float(r["ratio"]) for r in rows})
names = [("img_only", "Img. Only"), ("sup_grid", "Sup. Only (grid)"), ("mse", "MSE"), ("nce", "CSP-NCE-BL"),
         ("csp", "CSP-MC-BLD (reference τ)"), ("csp_multiply", "CSP-MC-BLD (logits cos·τ1)"),
         ("knn_sphere", "*kNN on the sphere*"), ("lr_sincos", "*LR on sin/cos(lon, lat)*"),
         ("lr_image", "*LR on standardised image features*"), ("lr_image_x_knn", "*LR(image) × kNN*")]
def cell(m, ratio, col):
    v = [float(r[col]) for r in rows if r["method"] == m and float(r["ratio"]) == ratio and r[col] not in ("", None)]
    v = [x for x in v if x == x]
    if not v: return "–"
    return f"{st.mean(v):.2f}" + (f" ± {st.stdev(v):.2f}" if len(v) > 1 else "") + (f" (n={len(v)})" if len(v) not in (1, 3) else "")
print("| Method | " + " | ".join(f"{r*100:g} % fused | {r*100:g} % location" for r in ratios) + " |")
print("|---|" + "---|---|" * len(ratios))
for m, label in names:
    print(f"| {label} | " + " | ".join(f"{cell(m, r, 'top1')} | {cell(m, r, 'location_top1')}" for r in ratios) + " |")
print()
for m in ("csp_multiply", "csp", "mse"):
    for ref in ("sup_grid", "mse", "nce", "csp"):
        if ref == m: continue
        loc, fus = paired_gain(rows, m, ref, "location_top1"), paired_gain(rows, m, ref, "top1")
        print(f"{m} vs {ref}: " + " | ".join(f"{r*100:g}%: loc {loc[r][1]:+.2f} ± {loc[r][2]:.2f}, fused {fus[r][1]:+.2f} ± {fus[r][2]:.2f} (n={loc[r][3]})" for r in sorted(loc)))

print()
print("| CSP (logits cos·τ1) over | " + " | ".join(f"{r*100:g} %" for r in ratios) + " |")
print("|---|" + "---|" * len(ratios))
def fmt(g):
    t = f"{g[1]:+.2f} ± {g[2]:.2f}"
    return f"**{t}**" if abs(g[1]) > g[2] else t
for ref, label in (("sup_grid", "Sup. Only (grid)"), ("mse", "MSE"), ("nce", "CSP-NCE-BL"), ("csp", "CSP-MC-BLD (reference τ)")):
    loc, fus = paired_gain(rows, "csp_multiply", ref, "location_top1"), paired_gain(rows, "csp_multiply", ref, "top1")
    print(f"| {label} | " + " | ".join(f"{fmt(loc[r])} / {fmt(fus[r])}" if r in loc else "–" for r in ratios) + " |")
