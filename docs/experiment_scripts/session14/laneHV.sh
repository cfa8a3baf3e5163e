#!/bin/bash
# control set (haze month): choose the finest scale on val, Sup. Only (grid), seed 0, 5 % (as `places` was chosen on country 5 %)
while pgrep -f "h_seed0" >/dev/null; do sleep 10; done
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/haze/data; O=/work/main/runs/final5
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_grid --seeds 0 --split val --out $O/$name "$@" 2>&1 | grep -v "^\s*$" | tail -1; echo "== done $name $(date +%T)"; }
run hv_r1 --ratios 0.01,0.05,0.2
for r in 0.25 0.1; do run hv_rmin$r --ratios 0.01,0.05,0.2 --no-baselines --set location_encoder.position.gridcell.min_radius=$r; done
