#!/bin/bash
# location-only / fused top-1 of every result row under runs/final5
cd /work/main/runs/final5
for f in */results.csv; do
  python3 - "$f" <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    if r["method"] in ("knn_sphere",) or not r["method"].startswith(("lr_", "img")):
        print(f"{sys.argv[1].split('/')[0]:28s} {r['method']:14s} r={r['ratio']:5s} s={r['seed']} {r['split']:4s} loc={r['location_top1'][:6]:7s} fused={r['fused_top1'][:6]:7s} ft_s={r['finetune_s'][:5]} pt_s={r['pretrain_s'][:5]}")
PY
done
