"""The control label with the place memory: mean ± std over seeds from haze_memory.csv
(location with memory / network alone / fused), and the memory's paired gain."""
import csv
import os
import statistics as st
from collections import defaultdict

here = os.path.dirname(os.path.abspath(__file__))
rows = list(csv.DictReader(open(os.path.join(here, "haze_memory.csv"))))
groups = defaultdict(list)
for r in rows:
    groups[(r["method"], float(r["ratio"]))].append(r)


def ms(v):
    return f"{st.mean(v):.2f} ± {st.stdev(v):.2f}"


print("| method | ratio | location (memory) | network alone | memory gain (paired) | fused | fused before |")
print("|---|---|---|---|---|---|---|")
for (m, ratio), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    col = lambda c: [float(r[c]) for r in rs]  # noqa: E731
    gain = [a - b for a, b in zip(col("location_top1"), col("location_network_top1"))]
    print(f"| {m} | {ratio:g} | {ms(col('location_top1'))} | {ms(col('location_network_top1'))} "
          f"| {ms(gain)} | {ms(col('fused_top1'))} | {ms(col('fused_before_top1'))} |")

print("\nCSP (multiply) over each method with the memory, paired by seed (location / fused):")
for ratio in sorted({k[1] for k in groups}):
    ref = {r["seed"]: r for r in groups[("csp_multiply", ratio)]}
    for m in ("sup_grid", "mse", "nce", "csp"):
        other = {r["seed"]: r for r in groups[(m, ratio)]}
        d = {c: [float(ref[s][c]) - float(other[s][c]) for s in ref] for c in ("location_top1", "fused_top1")}
        print(f"  {ratio:g} over {m}: {ms(d['location_top1'])} / {ms(d['fused_top1'])}")
