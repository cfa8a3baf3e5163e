#!/bin/bash
# control set: the country 1 % recipe (finest 2°, >= 750 steps) at 1/5 %, and more steps at 0.25° for 20 %
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/haze/data; O=/work/main/runs/final5
run() { name=$1; shift; echo "== $name $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods sup_grid --seeds 0 --split val --no-baselines --out $O/$name "$@" 2>&1 | grep -v "^\s*$" | tail -1; echo "== done $name $(date +%T)"; }
run hv_r2_750 --ratios 0.01,0.05 --set location_encoder.position.gridcell.min_radius=2.0 --set finetune.min_steps=750
run hv_r025_4k --ratios 0.2 --set location_encoder.position.gridcell.min_radius=0.25 --set finetune.min_steps=4000
