#!/bin/bash
cd /work/wt/exp14 && source .venv/bin/activate && export PYTHONPATH=/work/wt/exp14
D=/work/main/runs/haze/data; O=/work/main/runs/final5
M=img_only,sup_grid,csp_multiply,mse,nce,csp
B="--set location_encoder.position.gridcell.min_radius=0.25 --set finetune.min_steps=4000"
ex() { echo "== $1 $(date +%T)"; csp-tf experiment --data-root $D --preset places --methods $M --out $O/$1 "${@:2}" 2>&1 | grep "^\[\|experiment:"; }
ex h_seed2 --ratios 0.01,0.05 --seeds 2 --no-baselines
ex hb_seed2 --ratios 0.2 --seeds 2 --no-baselines $B
echo "== z done $(date +%T)"
