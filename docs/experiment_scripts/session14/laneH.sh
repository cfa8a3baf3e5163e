#!/bin/bash
# control set: places labelled by the month of peak haze; the `places` preset unchanged, every method, test split
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/haze/data; O=/work/main/runs/final5
M=img_only,sup_grid,mse,nce,csp,csp_multiply
for s in 0 1 2; do
  echo "== haze seed $s $(date +%T)"
  csp-tf experiment --data-root $D --preset places --methods $M --ratios 0.01,0.05,0.2 --seeds $s --out $O/h_seed$s 2>&1 | grep -v "^\s*$" | grep "^\[\|experiment:"
  echo "== done haze seed $s $(date +%T)"
done
